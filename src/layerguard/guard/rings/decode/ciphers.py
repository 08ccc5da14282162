"""Decoders for letter-level ciphers: Caesar shifts and ROT13, reversed text, leetspeak, Morse code."""

from __future__ import annotations

import itertools
import re

from layerguard.guard.rings.decode.base import (
    Decoding,
    clamp,
    dedupe,
    drop_superseded,
    never_raise,
    segments,
)
from layerguard.guard.rings.decode.english import (
    LOWER,
    UPPER,
    VOCAB,
    clearly_english,
    english_parts,
    english_score,
    freq_cosine,
    letter_counts,
    prose_like,
)


def _shift_table(k: int) -> dict[int, int]:
    """Translation table shifting letters forward by ``k`` (decoding a cipher that shifted by ``26 - k``)."""
    return str.maketrans(LOWER + UPPER, LOWER[k:] + LOWER[:k] + UPPER[k:] + UPPER[:k])


_SHIFT_TABLES: tuple[dict[int, int], ...] = tuple(_shift_table(k) for k in range(26))


@never_raise
def decode_caesar(text: str) -> list[Decoding]:
    """Undo ROT13 and other Caesar shifts.

    For each segment (the text, its lines, the part after a colon, quoted strings) with
    >= 12 letters that is not already English, the three shifts whose letter
    frequencies best match English (plus ROT13) are tried; the best is emitted only if
    it reads as English and beats the raw segment by a clear margin.

    Args:
        text: Text that may contain shifted letters.

    Returns:
        Candidates named ``rot13`` or ``caesar+N`` (N = the shift the writer applied).
    """
    out: list[Decoding] = []
    for seg in segments(text):
        if not prose_like(seg):
            continue
        raw_score, _ = english_parts(seg)
        if raw_score >= 0.6:
            continue
        counts = letter_counts(seg.lower())
        if sum(counts) < 12:
            continue

        def shifted_cosine(k: int, counts: list[int] = counts) -> float:
            return freq_cosine([counts[(j - k) % 26] for j in range(26)])

        ranked = sorted(range(1, 26), key=shifted_cosine, reverse=True)
        best: tuple[float, int, str] | None = None
        for k in {*ranked[:3], 13}:
            decoded = seg.translate(_SHIFT_TABLES[k])
            ok, conf = clearly_english(decoded, raw_score)
            if ok and (best is None or conf > best[0]):
                best = (conf, k, decoded)
        if best is not None:
            conf, k, decoded = best
            name = "rot13" if k == 13 else f"caesar+{(26 - k) % 26}"
            out.append(Decoding(name, decoded, conf))
    return drop_superseded(dedupe(out))


@never_raise
def decode_reversed(text: str) -> list[Decoding]:
    """Undo text written backwards (``!kcol a kcip ot woh nialpxE``).

    Args:
        text: Text that may contain reversed segments.

    Returns:
        A candidate per segment whose reversal reads clearly more like English.
    """
    out: list[Decoding] = []
    for seg in segments(text):
        if not prose_like(seg):
            continue
        raw_score, _ = english_parts(seg)
        if raw_score >= 0.6:
            continue
        decoded = seg[::-1]
        ok, conf = clearly_english(decoded, raw_score)
        if ok:
            out.append(Decoding("reversed", decoded, conf))
    return drop_superseded(dedupe(out))


# First option = default; ambiguous symbols list every reading.
_LEET_MAP: dict[str, str] = {
    "4": "a", "@": "a", "8": "b", "3": "e", "€": "e", "6": "g", "9": "g", "0": "o",
    "5": "s", "$": "s", "7": "t", "+": "t", "1": "il", "!": "il", "|": "li",
}  # fmt: skip
_LEET_TOKEN_RE = re.compile(r"[A-Za-z0-9@$€!|+]+")
_MAX_LEET_VARIANTS = 64


_CAMEL_RE = re.compile(r"[a-z][A-Z]")


def _leet_token(tok: str) -> tuple[str, bool, bool]:
    """Normalise one token: (replacement, is it leetspeak, is it a fixed vocabulary word).

    A token is leetspeak when a substitute sits between letters (``h0w``, ``3xpl41n``).
    Digits only at the end or start (``sam3``, ``x86``, ``1st``, ``100k``) and camelCase
    identifiers (``LayoutLMv3Model``) are names and numbers; they are only replaced
    when that yields a common word.
    """
    core = tok.rstrip("!+")  # sentence punctuation, C++
    tail = tok[len(core) :]
    positions = [i for i, c in enumerate(core) if c in _LEET_MAP]
    if not positions:
        return tok, False, False
    letters = [i for i, c in enumerate(core) if c.isalpha()]
    mixed = bool(letters) and not _CAMEL_RE.search(core) and any(letters[0] < i < letters[-1] for i in positions)
    options = [_LEET_MAP[core[i]] for i in positions]
    chosen: str | None = None
    for n, combo in enumerate(itertools.product(*options)):
        if n >= _MAX_LEET_VARIANTS:
            break
        chars = list(core)
        for i, letter in zip(positions, combo, strict=True):
            chars[i] = letter
        variant = "".join(chars)
        if variant.lower() in VOCAB:
            chosen = variant
            break
    if chosen is None:
        if not mixed:  # a plain number stays a number
            return tok, False, False
        chars = list(core)
        for i, opts in zip(positions, options, strict=True):
            chars[i] = opts[0]
        return "".join(chars) + tail, True, False
    fixed = mixed and len(chosen) >= 3 and core.lower() not in VOCAB
    if not mixed and _CAMEL_RE.search(core):
        return tok, False, False
    return chosen + tail, mixed, fixed


@never_raise
def decode_leetspeak(text: str) -> list[Decoding]:
    """Normalise leetspeak (4->a, 3->e, 1->i/l, 0->o, 5->s, 7->t, @->a, $->s, ...).

    Emitted only when several words mix letters with digit/symbol substitutions (or a
    substitution turns a token into a known word, ``b0mb``) and the normalised text
    reads at least as much like English as the raw text: ``utf8``, ``3rd``, ``x86`` or
    ``a1 + b2`` in code do not qualify.

    Args:
        text: Text that may contain leetspeak.

    Returns:
        At most one candidate: the normalised text.
    """
    if not any(c in _LEET_MAP for c in text):
        return []
    n_tokens = n_mixed = n_fixed = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal n_tokens, n_mixed, n_fixed
        n_tokens += 1
        new, mixed, fixed = _leet_token(m.group(0))
        n_mixed += mixed
        n_fixed += fixed
        return new

    normalised = _LEET_TOKEN_RE.sub(replace, text)
    if n_mixed == 0 or normalised == text:
        return []
    raw_score, _ = english_parts(text)
    norm_score, _ = english_parts(normalised)
    conf = 0.0
    if n_fixed >= 1 and n_fixed >= 0.3 * n_mixed and norm_score >= raw_score:  # not random symbol soup
        conf = min(0.95, 0.55 + 0.15 * n_fixed)
    mixed_frac = n_mixed / max(1, n_tokens)
    if n_mixed >= 2 and mixed_frac >= 0.2 and norm_score >= 0.45 and norm_score - raw_score >= 0.1:
        conf = max(conf, min(0.95, 0.4 + 0.6 * norm_score * min(1.0, mixed_frac / 0.3)))
    if conf <= 0.0:
        return []
    return [Decoding("leetspeak", normalised, conf)]


_MORSE: dict[str, str] = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h",
    "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p",
    "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x",
    "-.--": "y", "--..": "z", "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4",
    ".....": "5", "-....": "6", "--...": "7", "---..": "8", "----.": "9", ".-.-.-": ".", "--..--": ",",
    "..--..": "?", ".----.": "'", "-.-.--": "!", "-..-.": "/", "-.--.": "(", "-.--.-": ")", ".-...": "&",
    "---...": ":", "-.-.-.": ";", "-...-": "=", ".-.-.": "+", "-....-": "-", ".-..-.": '"', ".--.-.": "@",
}  # fmt: skip
_MORSE_RUN_RE = re.compile(r"[.\-·•∙−–—_/| \t]{7,}")
_MORSE_NORMALISE = str.maketrans({"·": ".", "•": ".", "∙": ".", "−": "-", "–": "-", "—": "-", "_": "-"})
_MORSE_WORD_SEP_RE = re.compile(r"\s*[/|]\s*|\s{3,}")


@never_raise
def decode_morse(text: str) -> list[Decoding]:
    """Decode Morse code: letters separated by spaces, words by ``/``, ``|`` or 3+ spaces.

    A run needs >= 4 codes, both dots and dashes, >= 3 distinct codes and >= 90% valid
    codes, so ellipses, markdown rules and bullet dashes are not Morse.

    Args:
        text: Text that may contain Morse code.

    Returns:
        One lowercase candidate per Morse run.
    """
    out: list[Decoding] = []
    for m in _MORSE_RUN_RE.finditer(text):
        run = m.group(0).translate(_MORSE_NORMALISE).strip(" \t/|")
        if "." not in run or "-" not in run:
            continue
        words = [w.split() for w in _MORSE_WORD_SEP_RE.split(run) if w.strip()]
        codes = [c for w in words for c in w]
        valid = [c for c in codes if c in _MORSE]
        if len(codes) < 4 or len(valid) < 0.9 * len(codes) or len(set(valid)) < 3:
            continue
        decoded = " ".join("".join(_MORSE.get(c, "?") for c in w) for w in words)
        out.append(Decoding("morse", decoded, clamp(0.65 + 0.35 * english_score(decoded))))
    return dedupe(out)
