"""How much a text reads as English: word and letter-frequency scores the decoders rank candidates by."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from layerguard.guard.rings.decode.base import (
    clamp,
)

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
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
_WORD_RE = re.compile(r"[a-z]+")


def letter_counts(lower: str) -> list[int]:
    """Counts of ``a``..``z`` in lower-case text."""
    counts = Counter(lower)
    return [counts.get(ch, 0) for ch in LOWER]


def freq_cosine(counts: Sequence[int]) -> float:
    """Cosine similarity of letter counts (``a``..``z``) with English letter frequencies."""
    norm = math.sqrt(sum(c * c for c in counts))
    if norm == 0:
        return 0.0
    return sum(c * f for c, f in zip(counts, _ENGLISH_FREQ, strict=True)) / (norm * _FREQ_NORM)


def english_parts(text: str) -> tuple[float, float]:
    """English score and the fraction of (2+ letter) words found in the vocabulary."""
    lower = text.lower()
    words = [w for w in _WORD_RE.findall(lower) if len(w) > 1]
    ratio = sum(w in VOCAB for w in words) / len(words) if words else 0.0
    word_part = min(1.0, ratio / 0.5) * min(1.0, len(words) / 3)
    counts = letter_counts(lower)
    n_letters = sum(counts)
    freq_part = clamp((freq_cosine(counts) - 0.72) / 0.2) * min(1.0, n_letters / 12)
    return clamp(0.7 * word_part + 0.3 * freq_part), ratio


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
        return english_parts(text)[0]
    except Exception:
        return 0.0


def vocab_hits(text: str) -> int:
    """Number of distinct vocabulary words (2+ letters) in ``text``."""
    return len({w for w in _WORD_RE.findall(text.lower()) if len(w) > 1 and w in VOCAB})


_CODE_CHARS = frozenset("=_{}[]()<>;\\/|$#*&^%~`@+")


def prose_like(segment: str) -> bool:
    """Whether ``segment`` is shaped like prose (a shift or a reversal keeps that shape); code is not."""
    if not segment:
        return False
    n_code = sum(c in _CODE_CHARS for c in segment)
    n_letters = sum(c.isalpha() for c in segment)
    return n_code <= 0.03 * len(segment) and n_letters >= 0.6 * len(segment)


def clearly_english(candidate: str, raw_score: float, min_margin: float = 0.3) -> tuple[bool, float]:
    """Whether ``candidate`` reads as English and clearly beats the raw text; returns a confidence.

    Needs three distinct common words, a vocabulary ratio of 0.4 and a margin over the
    raw text: a line of code shifted into ``the = his(the)`` does not qualify.
    """
    score, ratio = english_parts(candidate)
    margin = score - raw_score
    if score < 0.55 or ratio < 0.4 or margin < min_margin or vocab_hits(candidate) < 3:
        return False, 0.0
    return True, clamp(score * (0.5 + margin))
