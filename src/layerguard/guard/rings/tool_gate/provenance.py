"""Where argument values came from: copy detection against the conversation and the injection heuristic."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from layerguard.guard.rings.tool_gate.rules import TRUSTED_SOURCES, ProvenanceRule
from layerguard.guard.types import Exchange, Message

_ZERO_WIDTH = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")


def quote(text: str, words: int = 4) -> str:
    """The first words of matched text for an explanation; words that could be secrets are masked."""
    parts = text.split()
    shown = ["***" if len(w) > 16 or any(ch.isdigit() for ch in w) else w for w in parts[:words]]
    return " ".join(shown) + (" ..." if len(parts) > words else "")


def normalize_text(text: str) -> str:
    """NFKC, zero-width characters removed, whitespace collapsed (case kept)."""
    return " ".join(_ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).split())


def fold(text: str) -> str:
    """:func:`normalize_text`, case-folded: the form copy detection compares."""
    return normalize_text(text).casefold()


class ExchangeIndex:
    """Per-exchange, lazily computed views of the conversation used by every call's checks."""

    def __init__(self, exchange: Exchange, rule: ProvenanceRule) -> None:
        self.exchange = exchange
        self.rule = rule
        self._folded: list[str] | None = None
        self._texts: dict[frozenset[str], str] = {}
        self._trusted: str | None = None
        self._last_user: str | None = None
        self._injection: tuple[str | None] | None = None

    @property
    def folded(self) -> list[str]:
        if self._folded is None:
            self._folded = [fold(m.content) for m in self.exchange.messages]
        return self._folded

    @staticmethod
    def _from(m: Message, sources: frozenset[str]) -> bool:
        return m.source in sources or (m.role == "tool" and "tool" in sources)

    def text_from(self, sources: frozenset[str]) -> str:
        """Folded content of the messages with one of these provenances, NUL-separated."""
        if sources not in self._texts:
            parts = [t for m, t in zip(self.exchange.messages, self.folded, strict=True) if self._from(m, sources)]
            self._texts[sources] = "\x00".join(parts)
        return self._texts[sources]

    @property
    def trusted(self) -> str:
        """Folded content the user or system wrote."""
        if self._trusted is None:
            parts = [
                t
                for m, t in zip(self.exchange.messages, self.folded, strict=True)
                if m.role in TRUSTED_SOURCES and m.source in TRUSTED_SOURCES
            ]
            self._trusted = "\x00".join(parts)
        return self._trusted

    @property
    def last_user(self) -> str:
        if self._last_user is None:
            self._last_user = normalize_text(self.exchange.last_user)
        return self._last_user

    def copied(self, leaves: Sequence[tuple[str, str]], sources: frozenset[str]) -> str | None:
        """The path of the first argument value copied from content with these provenances, if any."""
        text = self.text_from(sources)
        if not text or not leaves:
            return None
        trusted = self.trusted if not (sources & TRUSTED_SOURCES) else ""
        k, k_whole = self.rule.min_copy_chars, self.rule.min_verbatim_chars
        grams: dict[str, str] = {}
        for path, raw in leaves:
            v = fold(raw)
            if len(v) >= k_whole and v in text and not (trusted and v in trusted):
                return path
            for i in range(len(v) - k + 1):
                grams.setdefault(v[i : i + k], path)
        if not grams:
            return None
        for i in range(len(text) - k + 1):
            g = text[i : i + k]
            if g in grams and "\x00" not in g and not (trusted and g in trusted):
                return grams[g]
        return None

    def injection(self) -> str | None:
        """Instruction-like text in untrusted content after the last user message (first match), if any."""
        if self._injection is None:
            found: str | None = None
            msgs = self.exchange.messages
            last = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
            for m in msgs[last + 1 :]:
                if found is not None:
                    break
                if m.role != "tool" and m.source not in self.rule.untrusted:
                    continue
                text = normalize_text(m.content)
                for p in self.rule.injection_patterns:
                    hit = p.search(text)
                    if hit:
                        found = quote(hit.group(0))
                        break
            self._injection = (found,)
        return self._injection[0]
