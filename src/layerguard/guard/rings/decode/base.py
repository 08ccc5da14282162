"""Shared pieces of the decoders: the ``Decoding`` value, never-raise wrapper, segments, byte checks."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ParamSpec

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


def never_raise(fn: Callable[_P, list[Decoding]]) -> Callable[_P, list[Decoding]]:
    """Wrap a decoder so that any exception yields no candidates instead of propagating."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> list[Decoding]:
        try:
            return fn(*args, **kwargs)
        except Exception:  # a decoder must never take the guard down
            return []

    return wrapper


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """``x`` limited to ``[lo, hi]``; NaN becomes ``lo``."""
    if x != x:  # NaN
        return lo
    return max(lo, min(hi, x))


def drop_superseded(decodings: list[Decoding]) -> list[Decoding]:
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


def dedupe(decodings: Iterable[Decoding]) -> list[Decoding]:
    """Keep one decoding per text (the most confident), in first-seen order."""
    best: dict[str, Decoding] = {}
    for d in decodings:
        old = best.get(d.text)
        if old is None or d.confidence > old.confidence:
            best[d.text] = d
    return list(best.values())


_QUOTED_RE = re.compile(r"\"([^\"\n]{8,})\"|“([^”\n]{8,})”|`([^`\n]{8,})`|'([^'\n]{12,})'")
_SEGMENT_MAX_CHARS = 20_000
_MAX_SEGMENTS = 48


def segments(text: str) -> list[str]:
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


def bytes_to_text(data: bytes) -> str | None:
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
