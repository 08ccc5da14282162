"""Substitution ciphers whose key is stated in the conversation (pairs, alphabets, Atbash, ROT-N)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

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
    english_parts,
    vocab_hits,
)


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
    return CipherKey(name, tuple(zip(LOWER, cipher_alphabet, strict=True)))


_ATBASH = LOWER[::-1]
_QWERTY = "qwertyuiopasdfghjklzxcvbnm"
_KNOWN_ALPHABETS: tuple[tuple[str, str], ...] = (
    ("atbash", _ATBASH),
    ("qwerty", _QWERTY),
    *((f"caesar+{k}", LOWER[k:] + LOWER[:k]) for k in range(1, 26)),
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
            keys.append(_full_key(f"caesar+{k}", LOWER[k:] + LOWER[:k]))
    runs = [re.sub(r"[^a-z]", "", m.group(0).lower()) for m in _ALPHA_RUN_RE.finditer(text)]
    runs = [r for r in runs if len(set(r)) == 26]
    i = 0
    while i < len(runs):
        if runs[i] == LOWER and i + 1 < len(runs) and runs[i + 1] != LOWER:
            keys.append(_full_key("alphabet", runs[i + 1]))
            i += 2
            continue
        if runs[i] != LOWER:
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


@never_raise
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
    for seg in segments(text):
        raw_score, _ = english_parts(seg)
        if raw_score >= 0.6:
            continue
        for key in keys[:16]:
            for inverse in (True, False):
                decoded = seg.translate(key.table(inverse))
                if decoded == seg:
                    continue
                score, ratio = english_parts(decoded)
                if score >= 0.45 and ratio >= 0.3 and score - raw_score >= 0.15 and vocab_hits(decoded) >= 2:
                    out.append(Decoding(f"cipher:{key.name}", decoded, clamp(0.6 + 0.4 * score)))
    return drop_superseded(dedupe(out))


@never_raise
def decode_inline_ciphers(text: str) -> list[Decoding]:
    """Apply the substitution keys a text states to that same text."""
    return decode_with_keys(text, find_cipher_keys(text))
