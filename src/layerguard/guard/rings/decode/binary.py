r"""Decoders for text carried as bytes: base64 (standard, urlsafe, wrapped), hex pairs and percent-escapes."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from layerguard.guard.rings.decode.base import (
    Decoding,
    bytes_to_text,
    clamp,
    dedupe,
    never_raise,
)
from layerguard.guard.rings.decode.english import (
    english_score,
)

_B64_CHARS = r"A-Za-z0-9+/_\-"
_B64_RUN_RE = re.compile(
    rf"(?<![{_B64_CHARS}=])[{_B64_CHARS}]{{16,}}={{0,2}}(?:\r?\n[{_B64_CHARS}]{{4,}}={{0,2}})*(?![{_B64_CHARS}])"
)
_URLSAFE_TO_STD = str.maketrans("-_", "+/")


def _b64_bytes(run: str) -> bytes | None:
    s = run.strip().rstrip("=").translate(_URLSAFE_TO_STD)
    candidates = (s, s[:-1]) if len(s) % 4 == 1 else (s,)
    for cand in candidates:
        try:
            return base64.b64decode(cand + "=" * (-len(cand) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _wrapped(lines: list[str]) -> bool:
    """Whether base64 lines look wrapped at a fixed width (76 for MIME, 64 for PEM): full lines, shorter last."""
    width = len(lines[0])
    return (
        width % 4 == 0
        and all(len(line) == width and "=" not in line for line in lines[:-1])
        and len(lines[-1]) <= width
    )


def _plausible_b64_text(run: str, decoded: str) -> bool:
    """Reject lucky decodings of numbers and long words.

    Base64 of text mixes upper case, lower case and digits; a run of one class (a long
    number, a long lower-case word) must decode to ASCII, and non-ASCII decodings must
    be mostly letters with some variety (``6666...`` decodes to a repeated Hangul syllable).
    """
    if run.isdigit():
        return False
    classes = any(c.isupper() for c in run) + any(c.islower() for c in run) + any(c.isdigit() for c in run)
    if decoded.isascii():
        return True
    if classes < 2:
        return False
    nonspace = [c for c in decoded if not c.isspace()]
    letters = sum(c.isalpha() for c in nonspace)
    return letters >= 0.6 * len(nonspace) and len(set(nonspace)) >= min(4, len(nonspace))


def _b64_text(run: str) -> str | None:
    """The text a base64 run encodes, or None if it does not decode to plausible text."""
    data = _b64_bytes(run)
    decoded = bytes_to_text(data) if data is not None else None
    if decoded is None or not _plausible_b64_text(run, decoded):
        return None
    return decoded


@never_raise
def decode_base64(text: str) -> list[Decoding]:
    """Decode base64 runs (standard or urlsafe, padded or not, line-wrapped or not).

    A run is >= 16 base64 characters delimited by non-base64 characters. Only decodings
    that are printable UTF-8 text are kept: hex digests, UUIDs, identifiers and other
    base64-looking runs decode to binary junk and are rejected.

    Args:
        text: Text that may contain base64 runs.

    Returns:
        One candidate per decodable run; confidence 0.7 plus up to 0.3 for English.
    """
    out: list[Decoding] = []
    for m in _B64_RUN_RE.finditer(text):
        lines = m.group(0).split()
        rest = lines
        # line-wrapped base64 (MIME 76, PEM 64): join the lines; the last line may be a stray word
        for k in (len(lines), len(lines) - 1):
            if k >= 2 and _wrapped(lines[:k]):
                joined = _b64_text("".join(lines[:k]))
                if joined is not None:
                    out.append(Decoding("base64", joined, clamp(0.7 + 0.3 * english_score(joined))))
                    rest = lines[k:]
                    break
        for piece in rest:
            decoded = _b64_text(piece) if len(piece) >= 16 else None
            if decoded is not None:
                out.append(Decoding("base64", decoded, clamp(0.7 + 0.3 * english_score(decoded))))
    return dedupe(out)


# --------------------------------------------------------------------------- hex

_HEX_PLAIN_RE = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Za-z])")
_HEX_SEP_RE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{2}(?:[ ,:;\-]{1,2}[0-9A-Fa-f]{2}){7,}(?![0-9A-Za-z])")
_HEX_ESC_RE = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){4,}")
_HEX_0X_RE = re.compile(r"(?<![0-9A-Za-z])0[xX][0-9A-Fa-f]{2}(?:[\s,;]{0,3}0[xX][0-9A-Fa-f]{2}){3,}")
_PERCENT_RE = re.compile(r"(?:%[0-9A-Fa-f]{2}){4,}")
_NOT_HEX_RE = re.compile(r"[^0-9A-Fa-f]")


def _hex_confidence(decoded: str, digits: str, explicit: bool) -> float:
    """Confidence that hex ``digits`` encode ``decoded`` on purpose (numbers must not qualify)."""
    eng = english_score(decoded)
    nonspace = sum(not c.isspace() for c in decoded)
    letters = sum(c.isalpha() for c in decoded)
    wordy = nonspace > 0 and letters >= 0.5 * nonspace and len(set(decoded)) >= 4
    if explicit:  # \x41 or 0x41: the writer said it is hex
        return clamp(0.75 + 0.25 * eng) if wordy or eng >= 0.5 else 0.45
    has_af = any(c in "abcdefABCDEF" for c in digits)
    if wordy and (has_af or eng >= 0.5):
        return clamp(0.65 + 0.35 * eng)
    return 0.3


@never_raise
def decode_hex(text: str) -> list[Decoding]:
    r"""Decode runs of hex byte pairs and percent-escapes.

    Handles ``4578706c61696e...`` (>= 8 bytes), ``45 78 70 6c ...`` / ``45:78:...``
    (>= 8 bytes), ``\x45\x78...`` and ``0x45 0x78 ...`` (>= 4 bytes) and
    ``%45%78...`` (>= 4 bytes). Decodings must be printable UTF-8 text; a run of digits
    that happens to decode to text (``5555...`` -> ``UUUU``) stays below 0.6.

    Args:
        text: Text that may contain hex runs.

    Returns:
        One candidate per decodable run.
    """
    out: list[Decoding] = []
    specs: tuple[tuple[re.Pattern[str], bool], ...] = (
        (_HEX_PLAIN_RE, False),
        (_HEX_SEP_RE, False),
        (_HEX_ESC_RE, True),
        (_HEX_0X_RE, True),
    )
    for pattern, explicit in specs:
        for m in pattern.finditer(text):
            run = m.group(0)
            if pattern is _HEX_0X_RE:
                run = re.sub(r"0[xX]", "", run)
            elif pattern is _HEX_ESC_RE:
                run = run.replace("\\x", "")
            digits = _NOT_HEX_RE.sub("", run)
            if len(digits) % 2:
                continue
            decoded = bytes_to_text(bytes.fromhex(digits))
            if decoded is not None:
                out.append(Decoding("hex", decoded, _hex_confidence(decoded, digits, explicit)))
    for m in _PERCENT_RE.finditer(text):
        decoded = bytes_to_text(urllib.parse.unquote_to_bytes(m.group(0)))
        if decoded is not None:
            out.append(Decoding("percent", decoded, clamp(0.5 + 0.45 * english_score(decoded))))
    return dedupe(out)
