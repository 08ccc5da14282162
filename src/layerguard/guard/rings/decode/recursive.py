"""Run every decoder, then again on what they decoded, bounded in depth and output size."""

from __future__ import annotations

from collections.abc import Callable

from layerguard.guard.rings.decode.augment import decode_augmented
from layerguard.guard.rings.decode.base import (
    Decoding,
    clamp,
)
from layerguard.guard.rings.decode.binary import decode_base64, decode_hex
from layerguard.guard.rings.decode.ciphers import decode_caesar, decode_leetspeak, decode_morse, decode_reversed
from layerguard.guard.rings.decode.substitution import (
    decode_inline_ciphers,
)
from layerguard.guard.rings.decode.unicode import decode_unicode

DECODERS: tuple[Callable[[str], list[Decoding]], ...] = (
    decode_unicode,
    decode_base64,
    decode_hex,
    decode_morse,
    decode_caesar,
    decode_reversed,
    decode_leetspeak,
    decode_inline_ciphers,
    decode_augmented,  # best-of-N draws: random case, scrambled and noised words
)


def decode_text(
    text: str,
    *,
    max_depth: int = 3,
    max_output_chars: int = 200_000,
    max_results: int = 64,
    recurse_min_confidence: float = 0.5,
) -> list[Decoding]:
    """Run every decoder on ``text`` and again on what they decode (breadth-first).

    Args:
        text: Any text.
        max_depth: Decoding layers to undo (base64 of rot13 is depth 2).
        max_output_chars: Stop once the decoded texts total this many characters.
        max_results: Stop after this many decodings.
        recurse_min_confidence: Only decodings at least this confident are decoded further.

    Returns:
        Distinct decodings (never the input itself), outer layers first. A nested
        decoding's encoding is the chain (``base64>rot13``) and its confidence is that
        of the last step.
    """
    try:
        return _decode_text(text, max_depth, max_output_chars, max_results, recurse_min_confidence)
    except Exception:
        return []


def _decode_text(text: str, max_depth: int, max_chars: int, max_results: int, floor: float) -> list[Decoding]:
    results: dict[str, Decoding] = {}
    seen = {text, text.strip()}
    budget = max_chars
    frontier: list[tuple[str, str]] = [(text, "")]
    for _depth in range(max(0, max_depth)):
        following: list[tuple[str, str]] = []
        for source, chain in frontier:
            for decoder in DECODERS:
                for d in decoder(source):
                    if d.text in seen or d.text.strip() in seen or not d.text.strip():
                        old = results.get(d.text)
                        if old is not None and d.confidence > old.confidence:
                            results[d.text] = Decoding(old.encoding, old.text, d.confidence)
                        continue
                    if len(results) >= max_results or len(d.text) > budget:
                        continue
                    name = f"{chain}>{d.encoding}" if chain else d.encoding
                    results[d.text] = Decoding(name, d.text, clamp(d.confidence))
                    seen.add(d.text)
                    budget -= len(d.text)
                    if d.confidence >= floor:
                        following.append((d.text, name))
        frontier = following
        if not frontier:
            break
    return list(results.values())
