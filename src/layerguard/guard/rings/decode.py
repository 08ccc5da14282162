r"""Decode ring: find obfuscated text and decode it so later rings see the plaintext.

Any encoding that defeats pattern matching also defeats a text policy: a classifier
that never saw base64 cannot judge ``RXhwbGFpbiBob3cgdG8gcGljayBhIGxvY2s=``. This ring
looks for the common obfuscations, decodes them and appends the plaintexts to
``Exchange.derived_texts`` so the rings that follow (a classifier, the latent guard)
judge both the raw and the decoded text. It never blocks by itself: its score measures
how much obfuscation it found.

Every decoder is a pure function ``text -> list[Decoding]`` that never raises. Each
candidate carries a confidence in [0, 1]; decoders are tuned so that ordinary prose,
code, URLs, UUIDs, hex digests and numbers yield nothing above 0.6:

- ``decode_base64``: standard and urlsafe runs of >= 16 characters, padded or not,
  wrapped over lines or not; only decodings that are printable UTF-8 text survive.
- ``decode_hex``: runs of hex pairs (plain, space/colon separated, ``\x41`` or
  ``0x41`` escaped) and ``%41`` percent-escapes.
- ``decode_caesar``: ROT13 and every Caesar shift, chosen by an English score.
- ``decode_reversed``: text written backwards.
- ``decode_leetspeak``: ``3xpl41n h0w`` -> ``explain how``.
- ``decode_unicode``: zero-width and other invisible characters, Unicode tag
  characters and variation selectors (both smuggling channels: they are decoded to
  text), NFKC compatibility forms, Cyrillic/Greek homoglyphs and combining marks.
- ``decode_morse``: dots and dashes, letters separated by spaces, words by ``/``.
- ``find_cipher_keys`` / ``decode_with_keys``: a substitution key stated in the
  conversation (``a=z b=y``, two alphabets, Atbash or a Caesar shift named) applied to
  the other messages.

``decode_text`` runs them all and recurses on the results (decoded text may itself be
encoded), bounded in depth and in total output size.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import math
import re
import time
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec

from layerguard.errors import InvalidInputError
from layerguard.guard.types import Exchange, RingVerdict

__all__ = [
    "CipherKey",
    "DecodeRing",
    "Decoding",
    "decode_base64",
    "decode_caesar",
    "decode_hex",
    "decode_leetspeak",
    "decode_morse",
    "decode_reversed",
    "decode_text",
    "decode_unicode",
    "decode_with_keys",
    "english_score",
    "find_cipher_keys",
]

_P = ParamSpec("_P")


@dataclass(frozen=True)
class Decoding:
    """One candidate plaintext found in a text.

    Attributes:
        encoding: What was undone, e.g. ``"base64"``, ``"rot13"``, ``"zero-width+homoglyph"``;
            nested decodings are chained with ``>`` (``"base64>rot13"``).
        text: The decoded plaintext.
        confidence: How sure the decoder is that ``text`` is a real decoding, in [0, 1].
    """

    encoding: str
    text: str
    confidence: float


def _never_raise(fn: Callable[_P, list[Decoding]]) -> Callable[_P, list[Decoding]]:
    """Wrap a decoder so that any exception yields no candidates instead of propagating."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> list[Decoding]:
        try:
            return fn(*args, **kwargs)
        except Exception:  # a decoder must never take the guard down
            return []

    return wrapper


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    if x != x:  # NaN
        return lo
    return max(lo, min(hi, x))


def _drop_superseded(decodings: list[Decoding]) -> list[Decoding]:
    """Drop a decoding when a cleaner one of the same kind is part of it.

    Decoding a whole message and the part after its colon with the same key gives the
    plaintext twice, once behind a garbled prefix; the part wins when it is at least as
    confident.
    """
    return [
        b
        for b in decodings
        if not any(
            a is not b and a.encoding == b.encoding and a.text in b.text and a.confidence >= b.confidence
            for a in decodings
        )
    ]


def _dedupe(decodings: Iterable[Decoding]) -> list[Decoding]:
    """Keep one decoding per text (the most confident), in first-seen order."""
    best: dict[str, Decoding] = {}
    for d in decodings:
        old = best.get(d.text)
        if old is None or d.confidence > old.confidence:
            best[d.text] = d
    return list(best.values())


# --------------------------------------------------------------------------- English model

# Frequent English words plus the vocabulary of typical harmful requests: a decoding
# that reads as a request must score as English even when it is short.
_VOCAB_TEXT = """
a i am an and are as at be been but by can could did do does doing done for from had has have having he her here
him his how if in into is it its just me my no not now of on once one only or our out over own same she should so
some such than that the their them then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours about above after again against all also
any because before being below between both down during each few further more most nor off other
let lets like make made get got give gave take took tell told show find write explain describe list need want
know think say said see use using used way ways step steps detailed detail instructions instruction guide help
please thanks thank hello hi yes ok okay sure well good bad new old first last next many much every even back
again still never always something someone anyone everyone nothing anything everything people person man woman
time day year work home house world life hand part place case thing things fact group problem question answer
number point end word words name names line lines story write writing text message email letter note
go going goes went come came look looking call called try trying tried keep kept start stop run running turn
put set seem leave left right wrong long short high low big small great little large own able sure real
easy hard best better worse worst simple quick quickly fast slow safe safely without within around across
must might may shall cannot can't don't won't isn't doesn't didn't wasn't weren't aren't couldn't shouldn't
don won isn doesn didn wasn weren aren couldn shouldn wouldn haven hasn ll ve re
create build making building produce prepare cook mix get obtain buy sell steal hide hidden secret secretly
lock locks pick picking door doors key keys safe car cars bike phone computer account accounts password
passwords bank card credit money cash fake fraud scam scams phishing identity data private personal address
kill killing murder hurt harm harmful attack attacks weapon weapons gun guns knife knives bomb bombs pipe
explosive explosives explode blow fire burn poison poisons poisonous toxic gas nerve agent drug drugs meth
methamphetamine cocaine heroin fentanyl pills dose lethal overdose chemical chemicals synthesize synthesis
recipe ingredients lab virus malware ransomware exploit exploits hack hacking hacker code keylogger botnet
bypass jailbreak ignore ignoring previous prior above rules rule policy policies system prompt prompts
instructions restrictions unfiltered pretend roleplay act mode developer admin root shell command commands
illegal illegally legal law police crime criminal avoid detection evade untraceable anonymous launder
child children kid kids school people public government building city water food blood body dead death die
follow following below above reply respond response output print repeat translate decode encode
hello world test testing example sentence secret message cipher
"""
VOCAB: frozenset[str] = frozenset(_VOCAB_TEXT.split())

# English letter frequencies (percent), a..z.
_ENGLISH_FREQ: tuple[float, ...] = (
    8.167, 1.492, 2.782, 4.253, 12.702, 2.228, 2.015, 6.094, 6.966, 0.153, 0.772, 4.025, 2.406,
    6.749, 7.507, 1.929, 0.095, 5.987, 6.327, 9.056, 2.758, 0.978, 2.360, 0.150, 1.974, 0.074,
)  # fmt: skip
_FREQ_NORM = math.sqrt(sum(f * f for f in _ENGLISH_FREQ))
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_WORD_RE = re.compile(r"[a-z]+")


def _letter_counts(lower: str) -> list[int]:
    counts = Counter(lower)
    return [counts.get(ch, 0) for ch in _LOWER]


def _freq_cosine(counts: Sequence[int]) -> float:
    norm = math.sqrt(sum(c * c for c in counts))
    if norm == 0:
        return 0.0
    return sum(c * f for c, f in zip(counts, _ENGLISH_FREQ, strict=True)) / (norm * _FREQ_NORM)


def _english_parts(text: str) -> tuple[float, float]:
    """English score and the fraction of (2+ letter) words found in the vocabulary."""
    lower = text.lower()
    words = [w for w in _WORD_RE.findall(lower) if len(w) > 1]
    ratio = sum(w in VOCAB for w in words) / len(words) if words else 0.0
    word_part = min(1.0, ratio / 0.5) * min(1.0, len(words) / 3)
    counts = _letter_counts(lower)
    n_letters = sum(counts)
    freq_part = _clamp((_freq_cosine(counts) - 0.72) / 0.2) * min(1.0, n_letters / 12)
    return _clamp(0.7 * word_part + 0.3 * freq_part), ratio


def english_score(text: str) -> float:
    """How much ``text`` looks like English, in [0, 1].

    A blend of the fraction of common English words (70%) and the cosine similarity of
    its letter frequencies with English (30%). Ordinary sentences score above 0.6,
    Caesar-shifted or random text below 0.3.

    Args:
        text: Any text.

    Returns:
        The score; 0 for text without letters.
    """
    try:
        return _english_parts(text)[0]
    except Exception:
        return 0.0


def _vocab_hits(text: str) -> int:
    """Number of distinct vocabulary words (2+ letters) in ``text``."""
    return len({w for w in _WORD_RE.findall(text.lower()) if len(w) > 1 and w in VOCAB})


_CODE_CHARS = frozenset("=_{}[]()<>;\\/|$#*&^%~`@+")


def _prose_like(segment: str) -> bool:
    """Whether ``segment`` is shaped like prose (a shift or a reversal keeps that shape); code is not."""
    if not segment:
        return False
    n_code = sum(c in _CODE_CHARS for c in segment)
    n_letters = sum(c.isalpha() for c in segment)
    return n_code <= 0.03 * len(segment) and n_letters >= 0.6 * len(segment)


def _clearly_english(candidate: str, raw_score: float, min_margin: float = 0.3) -> tuple[bool, float]:
    """Whether ``candidate`` reads as English and clearly beats the raw text; returns a confidence.

    Needs three distinct common words, a vocabulary ratio of 0.4 and a margin over the
    raw text: a line of code shifted into ``the = his(the)`` does not qualify.
    """
    score, ratio = _english_parts(candidate)
    margin = score - raw_score
    if score < 0.55 or ratio < 0.4 or margin < min_margin or _vocab_hits(candidate) < 3:
        return False, 0.0
    return True, _clamp(score * (0.5 + margin))


_QUOTED_RE = re.compile(r"\"([^\"\n]{8,})\"|“([^”\n]{8,})”|`([^`\n]{8,})`|'([^'\n]{12,})'")
_SEGMENT_MAX_CHARS = 20_000
_MAX_SEGMENTS = 48


def _segments(text: str) -> list[str]:
    """Pieces of ``text`` worth decoding as a whole: the text, its lines, what follows a colon, quotes."""
    head = text[:_SEGMENT_MAX_CHARS]
    cands: list[str] = [head]
    lines = head.splitlines()
    if len(lines) > 1:
        cands.extend(lines[:_MAX_SEGMENTS])
    for line in lines[:_MAX_SEGMENTS]:
        if ":" in line:
            cands.append(line.split(":", 1)[1])
            cands.append(line.rsplit(":", 1)[1])
    for m in itertools.islice(_QUOTED_RE.finditer(head), _MAX_SEGMENTS):
        cands.append(next(g for g in m.groups() if g is not None))
    out: list[str] = []
    seen: set[str] = set()
    for c in cands:
        c = c.strip()
        if c in seen or sum(ch.isalpha() for ch in c[:64]) < 8:
            continue
        seen.add(c)
        out.append(c)
        if len(out) >= _MAX_SEGMENTS:
            break
    return out


def _bytes_to_text(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 and (almost) all printable, else None."""
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    if text.isprintable():
        return text
    printable = sum(1 for c in text if c.isprintable() or c in "\t\n\r")
    return text if printable >= 0.95 * len(text) else None


# --------------------------------------------------------------------------- base64

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
    decoded = _bytes_to_text(data) if data is not None else None
    if decoded is None or not _plausible_b64_text(run, decoded):
        return None
    return decoded


@_never_raise
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
                    out.append(Decoding("base64", joined, _clamp(0.7 + 0.3 * english_score(joined))))
                    rest = lines[k:]
                    break
        for piece in rest:
            decoded = _b64_text(piece) if len(piece) >= 16 else None
            if decoded is not None:
                out.append(Decoding("base64", decoded, _clamp(0.7 + 0.3 * english_score(decoded))))
    return _dedupe(out)


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
        return _clamp(0.75 + 0.25 * eng) if wordy or eng >= 0.5 else 0.45
    has_af = any(c in "abcdefABCDEF" for c in digits)
    if wordy and (has_af or eng >= 0.5):
        return _clamp(0.65 + 0.35 * eng)
    return 0.3


@_never_raise
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
            decoded = _bytes_to_text(bytes.fromhex(digits))
            if decoded is not None:
                out.append(Decoding("hex", decoded, _hex_confidence(decoded, digits, explicit)))
    for m in _PERCENT_RE.finditer(text):
        decoded = _bytes_to_text(urllib.parse.unquote_to_bytes(m.group(0)))
        if decoded is not None:
            out.append(Decoding("percent", decoded, _clamp(0.5 + 0.45 * english_score(decoded))))
    return _dedupe(out)


# --------------------------------------------------------------------------- Caesar / ROT13


def _shift_table(k: int) -> dict[int, int]:
    """Translation table shifting letters forward by ``k`` (decoding a cipher that shifted by ``26 - k``)."""
    return str.maketrans(_LOWER + _UPPER, _LOWER[k:] + _LOWER[:k] + _UPPER[k:] + _UPPER[:k])


_SHIFT_TABLES: tuple[dict[int, int], ...] = tuple(_shift_table(k) for k in range(26))


@_never_raise
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
    for seg in _segments(text):
        if not _prose_like(seg):
            continue
        raw_score, _ = _english_parts(seg)
        if raw_score >= 0.6:
            continue
        counts = _letter_counts(seg.lower())
        if sum(counts) < 12:
            continue

        def shifted_cosine(k: int, counts: list[int] = counts) -> float:
            return _freq_cosine([counts[(j - k) % 26] for j in range(26)])

        ranked = sorted(range(1, 26), key=shifted_cosine, reverse=True)
        best: tuple[float, int, str] | None = None
        for k in {*ranked[:3], 13}:
            decoded = seg.translate(_SHIFT_TABLES[k])
            ok, conf = _clearly_english(decoded, raw_score)
            if ok and (best is None or conf > best[0]):
                best = (conf, k, decoded)
        if best is not None:
            conf, k, decoded = best
            name = "rot13" if k == 13 else f"caesar+{(26 - k) % 26}"
            out.append(Decoding(name, decoded, conf))
    return _drop_superseded(_dedupe(out))


@_never_raise
def decode_reversed(text: str) -> list[Decoding]:
    """Undo text written backwards (``!kcol a kcip ot woh nialpxE``).

    Args:
        text: Text that may contain reversed segments.

    Returns:
        A candidate per segment whose reversal reads clearly more like English.
    """
    out: list[Decoding] = []
    for seg in _segments(text):
        if not _prose_like(seg):
            continue
        raw_score, _ = _english_parts(seg)
        if raw_score >= 0.6:
            continue
        decoded = seg[::-1]
        ok, conf = _clearly_english(decoded, raw_score)
        if ok:
            out.append(Decoding("reversed", decoded, conf))
    return _drop_superseded(_dedupe(out))


# --------------------------------------------------------------------------- leetspeak

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


@_never_raise
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
    raw_score, _ = _english_parts(text)
    norm_score, _ = _english_parts(normalised)
    conf = 0.0
    if n_fixed >= 1 and n_fixed >= 0.3 * n_mixed and norm_score >= raw_score:  # not random symbol soup
        conf = min(0.95, 0.55 + 0.15 * n_fixed)
    mixed_frac = n_mixed / max(1, n_tokens)
    if n_mixed >= 2 and mixed_frac >= 0.2 and norm_score >= 0.45 and norm_score - raw_score >= 0.1:
        conf = max(conf, min(0.95, 0.4 + 0.6 * norm_score * min(1.0, mixed_frac / 0.3)))
    if conf <= 0.0:
        return []
    return [Decoding("leetspeak", normalised, conf)]


# --------------------------------------------------------------------------- Unicode tricks

_INVISIBLE: frozenset[int] = frozenset(
    [*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF, 0x00AD, 0x180E, 0x034F, 0x3164, 0xFFA0]
    + [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]  # bidi embeddings, overrides, isolates
)
_BLACK_FLAG = "\U0001f3f4"  # subdivision flags (England, Scotland...) legitimately use tag characters
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "а": "a", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k", "о": "o", "р": "p",
    "с": "c", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "Ѕ": "S", "І": "I", "Ј": "J", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ϲ": "c", "ϳ": "j",
    # (α, ν, ρ, κ... are left out: "Cα", "ρ-value" are science, not obfuscation)
    # Armenian and IPA look-alikes
    "օ": "o", "ս": "u", "ɡ": "g", "ɑ": "a",
}  # fmt: skip
_UNICODE_WORD_RE = re.compile(r"\w+")
# the visible text left once a hidden payload is cut out is named after the cut
_STRIPPED_NAMES = {"unicode-tags": "tags-stripped", "variation-selectors": "selectors-stripped"}


def _is_variation_selector(cp: int) -> bool:
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def _extract_hidden(text: str) -> tuple[str, list[str], list[str]]:
    """Split off tag-character and variation-selector payloads.

    Returns:
        The text without them, the ASCII messages spelled in tag characters and the
        texts encoded one byte per variation selector (runs of >= 4 only; a lone
        U+FE0F after an emoji is presentation, not payload).
    """
    visible: list[str] = []
    tag_msgs: list[str] = []
    vs_msgs: list[str] = []
    tag_run: list[str] = []
    vs_run: list[int] = []
    run_after = ""

    def flush() -> None:
        if tag_run:
            msg = "".join(tag_run)
            is_flag = run_after == _BLACK_FLAG and len(msg) <= 7 and msg.isalnum()
            if not is_flag and msg.strip():
                tag_msgs.append(msg)
            tag_run.clear()
        if vs_run:
            if len(vs_run) >= 4:
                data = bytes(b - 0xFE00 if b <= 0xFE0F else b - 0xE0100 + 16 for b in vs_run)
                decoded = _bytes_to_text(data)
                if decoded is not None:
                    vs_msgs.append(decoded)
            else:
                visible.extend(chr(b) for b in vs_run)
            vs_run.clear()

    for ch in text:
        cp = ord(ch)
        if 0xE0000 <= cp <= 0xE007F:
            if not tag_run:
                run_after = visible[-1] if visible else ""
            if 0xE0020 <= cp <= 0xE007E:
                tag_run.append(chr(cp - 0xE0000))
            continue
        if _is_variation_selector(cp):
            vs_run.append(cp)
            continue
        flush()
        visible.append(ch)
    flush()
    return "".join(visible), tag_msgs, vs_msgs


def _strip_invisible(text: str) -> tuple[str, int, int]:
    """Remove invisible characters; count those inside ASCII words and those next to ASCII text.

    Zero-width joiners inside emoji sequences or non-Latin scripts are removed from the
    output but not counted: they are how those scripts are written.
    """
    n = len(text)
    next_visible: list[str] = [""] * (n + 1)
    for i in range(n - 1, -1, -1):
        ch = text[i]
        next_visible[i] = next_visible[i + 1] if ord(ch) in _INVISIBLE else ch
    kept: list[str] = []
    in_word = near_ascii = 0
    for i, ch in enumerate(text):
        if ord(ch) not in _INVISIBLE:
            kept.append(ch)
            continue
        if i == 0 and ch == "\ufeff":  # byte-order mark
            continue
        prev = kept[-1] if kept else ""
        nxt = next_visible[i + 1]
        if prev.isascii() and nxt.isascii() and prev.isalnum() and nxt.isalnum():
            in_word += 1
        elif (prev and prev.isascii()) or (nxt and nxt.isascii()):
            near_ascii += 1
    return "".join(kept), in_word, near_ascii


def _nfkc(text: str) -> tuple[str, int]:
    """NFKC-normalise; count compatibility characters that became ASCII letters (fullwidth, math bold...)."""
    cache: dict[str, bool] = {}
    n_compat = 0
    for ch in text:
        if ch.isascii():
            continue
        hit = cache.get(ch)
        if hit is None:
            norm = unicodedata.normalize("NFKC", ch)
            hit = norm != ch and norm.isascii() and norm.isalpha()
            cache[ch] = hit
        n_compat += hit
    return unicodedata.normalize("NFKC", text), n_compat


def _strip_marks(text: str) -> tuple[str, int]:
    """Remove combining marks stacked on ASCII letters (zalgo); marks on other scripts are kept."""
    kept: list[str] = []
    base = ""
    n = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            if base.isascii() and base.isalpha():
                n += 1
                continue
            kept.append(ch)
            continue
        base = ch
        kept.append(ch)
    return "".join(kept), n


def _map_homoglyphs(text: str) -> tuple[str, int]:
    """Map Cyrillic/Greek look-alikes to Latin in words that mix them with Latin letters.

    A word made only of look-alikes is mapped too when the text is mostly Latin; genuine
    Russian or Greek words contain letters without a Latin twin and are left alone.
    """
    ascii_letters = sum(c.isascii() and c.isalpha() for c in text)
    other_letters = sum(c.isalpha() and not c.isascii() and c not in _HOMOGLYPHS for c in text)
    latin_text = ascii_letters > other_letters

    def kind(word: str) -> str:
        """``mixed`` (Latin + look-alikes), ``glyphs`` (look-alikes only) or ``other``."""
        n_ascii = n_glyph = 0
        for c in word:
            if c in _HOMOGLYPHS:
                n_glyph += 1
            elif c.isascii():
                n_ascii += c.isalpha()
            elif c.isalpha():
                return "other"  # a letter without a Latin twin: a genuine Cyrillic/Greek word
        if not n_glyph:
            return "other"
        return "mixed" if n_ascii else "glyphs"

    words = [m.group(0) for m in _UNICODE_WORD_RE.finditer(text)]
    kinds = {w: kind(w) for w in words}
    any_mixed = "mixed" in kinds.values()
    n_words = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal n_words
        word = m.group(0)
        k = kinds.get(word) or kind(word)
        # look-alike-only words: in Latin text, when long enough or next to mixed words ("а" in "pick а lock")
        if k == "mixed" or (k == "glyphs" and latin_text and (len(word) >= 2 or any_mixed)):
            n_words += 1
            return "".join(_HOMOGLYPHS.get(c, c) for c in word)
        return word

    return _UNICODE_WORD_RE.sub(replace, text), n_words


@_never_raise
def decode_unicode(text: str) -> list[Decoding]:
    """Undo Unicode obfuscation: invisible characters, tag/variation-selector smuggling, homoglyphs.

    Steps: decode Unicode tag characters (U+E0000..U+E007F, ASCII spelled invisibly)
    and runs of variation selectors (one byte each) to text; strip zero-width and bidi
    control characters (U+200B..U+200F, U+2060..U+2064, U+FEFF, ...); NFKC (fullwidth,
    mathematical and circled letters); strip combining marks stacked on Latin letters;
    map Cyrillic/Greek look-alikes to Latin in mixed-script words.

    Args:
        text: Any text.

    Returns:
        The hidden messages (``unicode-tags``, ``variation-selectors``) and the
        normalised visible text named after the tricks found (``zero-width+homoglyph``).
    """
    if text.isascii():
        return []
    out: list[Decoding] = []
    tricks: dict[str, float] = {}
    visible, tag_msgs, vs_msgs = _extract_hidden(text)
    if tag_msgs:
        tricks["unicode-tags"] = 0.95
        out.append(Decoding("unicode-tags", " ".join(tag_msgs), 0.95))
    if vs_msgs:
        tricks["variation-selectors"] = 0.95
        out.append(Decoding("variation-selectors", " ".join(vs_msgs), 0.95))
    stripped, in_word, near_ascii = _strip_invisible(visible)
    if in_word or near_ascii:
        tricks["zero-width"] = min(0.95, 0.55 + 0.15 * in_word + 0.04 * near_ascii)
    normal, n_compat = _nfkc(stripped)
    if n_compat:
        tricks["nfkc"] = min(0.95, 0.6 + 0.03 * n_compat) if n_compat >= 3 else 0.4
    normal, n_marks = _strip_marks(normal)
    if n_marks:
        tricks["combining-marks"] = min(0.95, 0.55 + 0.05 * n_marks) if n_marks >= 2 else 0.45
    normal, n_glyph_words = _map_homoglyphs(normal)
    if n_glyph_words:
        tricks["homoglyph"] = 0.9 if n_glyph_words >= 2 else 0.75
    if tricks and normal.strip() and normal != text:
        names = [_STRIPPED_NAMES.get(t, t) for t in tricks]
        out.append(Decoding("+".join(names), normal, max(tricks.values())))
    return _dedupe(out)


# --------------------------------------------------------------------------- Morse

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


@_never_raise
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
        out.append(Decoding("morse", decoded, _clamp(0.65 + 0.35 * english_score(decoded))))
    return _dedupe(out)


# --------------------------------------------------------------------------- substitution ciphers


@dataclass(frozen=True)
class CipherKey:
    """A substitution key: ``pairs`` maps plaintext letters to cipher letters (lowercase).

    Attributes:
        name: ``atbash``, ``caesar+N``, ``qwerty`` or ``key`` for a key spelled out pair by pair.
        pairs: ``(plain, cipher)`` letter pairs; letters not listed are unchanged.
    """

    name: str
    pairs: tuple[tuple[str, str], ...]

    def table(self, inverse: bool) -> dict[int, int]:
        """A ``str.translate`` table: cipher -> plain if ``inverse`` else plain -> cipher, both cases."""
        src = "".join(p for p, _ in self.pairs)
        dst = "".join(c for _, c in self.pairs)
        if inverse:
            src, dst = dst, src
        return str.maketrans(src + src.upper(), dst + dst.upper())


def _full_key(name: str, cipher_alphabet: str) -> CipherKey:
    return CipherKey(name, tuple(zip(_LOWER, cipher_alphabet, strict=True)))


_ATBASH = _LOWER[::-1]
_QWERTY = "qwertyuiopasdfghjklzxcvbnm"
_KNOWN_ALPHABETS: tuple[tuple[str, str], ...] = (
    ("atbash", _ATBASH),
    ("qwerty", _QWERTY),
    *((f"caesar+{k}", _LOWER[k:] + _LOWER[:k]) for k in range(1, 26)),
)
_ATBASH_RE = re.compile(r"\batbash\b", re.IGNORECASE)
_ROT_N_RE = re.compile(r"\brot[\s\-_]?(\d{1,2})\b", re.IGNORECASE)
_CAESAR_N_RE = re.compile(r"\b(?:caesar|shift(?:ed)?)\b\D{0,24}?\b(\d{1,2})\b", re.IGNORECASE)
_ALPHA_RUN_RE = re.compile(r"(?<![A-Za-z])(?:[A-Za-z]{26}|[A-Za-z](?:[ ,]{1,2}[A-Za-z]){25})(?![A-Za-z])")
_PAIR_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z])\s*(?:=>|->|→|⇒|=|:)\s*([A-Za-z])(?![A-Za-z0-9])")


def _pairs_key(pairs: list[tuple[str, str]]) -> CipherKey | None:
    """A key from letter pairs: a known cipher if they fit one (>= 2 pairs), else a partial key (>= 5)."""
    mapping: dict[str, str] = {}
    for plain, cipher in pairs:
        if mapping.setdefault(plain, cipher) != cipher:
            return None  # inconsistent: not a key
    if len(mapping) < 2 or len(set(mapping.values())) != len(mapping):
        return None
    for name, alphabet in _KNOWN_ALPHABETS:
        if all(alphabet[ord(p) - 97] == c for p, c in mapping.items()):
            return _full_key(name, alphabet)
    if len(mapping) >= 5:
        return CipherKey("key", tuple(sorted(mapping.items())))
    return None


def find_cipher_keys(text: str) -> list[CipherKey]:
    """Substitution keys stated in ``text``.

    Recognises ``a=z b=y c=x`` / ``a->q, b->w`` / ``a: d`` pairs (extended to the full
    key when they fit Atbash, QWERTY or a Caesar shift; otherwise >= 5 pairs are
    needed), two 26-letter alphabets (``abcdefghijklmnopqrstuvwxyz -> qwerty...``) or a
    lone permuted alphabet, and Atbash / ROT-N / Caesar shift N named explicitly.

    Args:
        text: One message.

    Returns:
        The keys found, without duplicates; empty if none (never raises).
    """
    try:
        return _find_cipher_keys(text)
    except Exception:
        return []


def _find_cipher_keys(text: str) -> list[CipherKey]:
    keys: list[CipherKey] = []
    if _ATBASH_RE.search(text):
        keys.append(_full_key("atbash", _ATBASH))
    for m in itertools.chain(_ROT_N_RE.finditer(text), _CAESAR_N_RE.finditer(text)):
        k = int(m.group(1))
        if 1 <= k <= 25:
            keys.append(_full_key(f"caesar+{k}", _LOWER[k:] + _LOWER[:k]))
    runs = [re.sub(r"[^a-z]", "", m.group(0).lower()) for m in _ALPHA_RUN_RE.finditer(text)]
    runs = [r for r in runs if len(set(r)) == 26]
    i = 0
    while i < len(runs):
        if runs[i] == _LOWER and i + 1 < len(runs) and runs[i + 1] != _LOWER:
            keys.append(_full_key("alphabet", runs[i + 1]))
            i += 2
            continue
        if runs[i] != _LOWER:
            keys.append(_full_key("alphabet", runs[i]))
        i += 1
    pairs = [(a.lower(), b.lower()) for a, b in _PAIR_RE.findall(text)]
    if len(pairs) >= 2:
        key = _pairs_key(pairs)
        if key is not None:
            keys.append(key)
    unique: dict[tuple[tuple[str, str], ...], CipherKey] = {}
    for key in keys:
        unique.setdefault(key.pairs, key)
    return list(unique.values())


@_never_raise
def decode_with_keys(text: str, keys: Sequence[CipherKey]) -> list[Decoding]:
    """Apply substitution keys (both directions) to ``text`` and keep what reads as English.

    Args:
        text: A message that may be enciphered.
        keys: Keys found in the conversation (see :func:`find_cipher_keys`).

    Returns:
        Candidates named ``cipher:<key name>``; confidence 0.6 plus up to 0.4 for English.
    """
    out: list[Decoding] = []
    if not keys:
        return out
    for seg in _segments(text):
        raw_score, _ = _english_parts(seg)
        if raw_score >= 0.6:
            continue
        for key in keys[:16]:
            for inverse in (True, False):
                decoded = seg.translate(key.table(inverse))
                if decoded == seg:
                    continue
                score, ratio = _english_parts(decoded)
                if score >= 0.45 and ratio >= 0.3 and score - raw_score >= 0.15 and _vocab_hits(decoded) >= 2:
                    out.append(Decoding(f"cipher:{key.name}", decoded, _clamp(0.6 + 0.4 * score)))
    return _drop_superseded(_dedupe(out))


@_never_raise
def _decode_inline_ciphers(text: str) -> list[Decoding]:
    return decode_with_keys(text, find_cipher_keys(text))


# --------------------------------------------------------------------------- all decoders, recursively

DECODERS: tuple[Callable[[str], list[Decoding]], ...] = (
    decode_unicode,
    decode_base64,
    decode_hex,
    decode_morse,
    decode_caesar,
    decode_reversed,
    decode_leetspeak,
    _decode_inline_ciphers,
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
                    results[d.text] = Decoding(name, d.text, _clamp(d.confidence))
                    seen.add(d.text)
                    budget -= len(d.text)
                    if d.confidence >= floor:
                        following.append((d.text, name))
        frontier = following
        if not frontier:
            break
    return list(results.values())


# --------------------------------------------------------------------------- the ring


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
    needs_activations = False

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
                decodings = _dedupe([*decodings, *decode_with_keys(text, list(dict.fromkeys(others)))])
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
            score=_clamp(score),
            decision="allow",
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=explanation,
            details=details,
        )
