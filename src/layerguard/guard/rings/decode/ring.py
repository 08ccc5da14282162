"""The decode ring: decodes every message and hands the plaintexts to the rings that follow."""

from __future__ import annotations

import time
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.guard.rings.decode.base import (
    Decoding,
    clamp,
    dedupe,
)
from layerguard.guard.rings.decode.recursive import decode_text
from layerguard.guard.rings.decode.substitution import (
    decode_with_keys,
    find_cipher_keys,
)
from layerguard.guard.types import Exchange, RingVerdict, Stage


class DecodeRing:
    """Find obfuscated text anywhere in the conversation and add its plaintext to ``derived_texts``.

    The ring never blocks (``decision`` is always ``allow``); its score is the
    confidence of the most confident decoding, a measure of obfuscation that a policy
    can combine with the harm scores of the rings that read the decoded texts.

    Args:
        max_chars: Characters scanned per exchange (newest messages first); the rest is
            skipped and ``details["truncated"]`` says so.
        min_confidence: Decodings below this confidence are ignored.
    """

    name = "decode"
    stage: Stage = "input"
    reads: tuple[str, ...] = ()

    def __init__(self, max_chars: int = 100_000, min_confidence: float = 0.6) -> None:
        if max_chars <= 0:
            raise InvalidInputError(f"max_chars must be positive, got {max_chars}", "use e.g. max_chars=100000")
        if not 0.0 <= min_confidence <= 1.0:
            raise InvalidInputError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.max_chars = max_chars
        self.min_confidence = min_confidence

    def check(self, exchange: Exchange) -> RingVerdict:
        """Decode every message, append the plaintexts to ``exchange.derived_texts``, report what was found."""
        t0 = time.perf_counter()
        try:
            return self._check(exchange, t0)
        except Exception as exc:  # the ring must not take the pipeline down
            return RingVerdict(
                ring=self.name,
                score=0.0,
                decision="allow",
                latency_ms=(time.perf_counter() - t0) * 1000,
                explanation=f"decode ring failed: {exc!r}",
                details={"encodings": [], "decoded": [], "error": repr(exc)},
            )

    def _scanned_texts(self, exchange: Exchange) -> tuple[list[str], int, int]:
        """Message contents cut to the character budget, newest messages served first."""
        contents = [m.content if isinstance(m.content, str) else "" for m in exchange.messages]
        scanned = [""] * len(contents)
        remaining = self.max_chars
        for i in range(len(contents) - 1, -1, -1):
            scanned[i] = contents[i][: max(0, remaining)]
            remaining -= len(scanned[i])
        return scanned, sum(map(len, scanned)), sum(map(len, contents))

    def _check(self, exchange: Exchange, t0: float) -> RingVerdict:
        scanned, n_scanned, n_total = self._scanned_texts(exchange)
        keys_per_message = [find_cipher_keys(t) if t else [] for t in scanned]
        found: list[tuple[int, Decoding]] = []
        for i, text in enumerate(scanned):
            if not text:
                continue
            budget = 2 * len(text) + 4096
            decodings = decode_text(text, max_output_chars=budget)
            own = set(keys_per_message[i])
            others = [k for j, ks in enumerate(keys_per_message) if j != i for k in ks if k not in own]
            if others:
                decodings = dedupe([*decodings, *decode_with_keys(text, list(dict.fromkeys(others)))])
            found.extend((i, d) for d in decodings)

        accepted = [(i, d) for i, d in found if d.confidence >= self.min_confidence]
        raw = {t.strip() for t in scanned}
        present = set(exchange.derived_texts)
        kept: list[tuple[int, Decoding]] = []
        kept_texts: set[str] = set()
        for i, d in accepted:
            if d.text.strip() in raw or d.text in kept_texts:
                continue
            kept.append((i, d))
            kept_texts.add(d.text)
            if d.text not in present:
                exchange.derived_texts.append(d.text)
                present.add(d.text)

        score = max((d.confidence for _, d in kept), default=0.0)
        encodings = [d.encoding for _, d in kept]
        truncated = n_scanned < n_total
        if kept:
            names = ", ".join(dict.fromkeys(encodings))
            explanation = f"decoded {len(kept)} obfuscated text(s): {names}"
        else:
            explanation = "no obfuscated text found"
        if truncated:
            explanation += f"; scanned only {n_scanned} of {n_total} characters"
        details: dict[str, Any] = {
            "encodings": encodings,
            "decoded": [d.text[:200] for _, d in kept],
            "confidences": [round(d.confidence, 4) for _, d in kept],
            "messages": [i for i, _ in kept],
            "below_threshold": len(found) - len(accepted),
            "truncated": truncated,
            "scanned_chars": n_scanned,
            "total_chars": n_total,
        }
        return RingVerdict(
            ring=self.name,
            score=clamp(score),
            decision="allow",
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=explanation,
            details=details,
        )
