"""A keyword filter: the simplest text ring, kept as a baseline to beat.

It flags text containing words typical of harmful requests. It is what pattern-matching
guards do, and why an encoding or a paraphrase walks straight past them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from layerguard.guard.types import Decision, Exchange, RingVerdict, Stage, role_texts

DEFAULT_TERMS = (
    "bomb",
    "explosive",
    "detonat",
    "nerve agent",
    "sarin",
    "anthrax",
    "bioweapon",
    "ricin",
    "toxin",
    "poison",
    "kill",
    "murder",
    "assassinat",
    "shoot",
    "stab",
    "kidnap",
    "torture",
    "weapon",
    "gun",
    "ghost gun",
    "untraceable",
    "meth",
    "fentanyl",
    "cocaine",
    "heroin",
    "hack",
    "malware",
    "ransomware",
    "keylogger",
    "phishing",
    "exploit",
    "ddos",
    "botnet",
    "backdoor",
    "steal",
    "launder",
    "counterfeit",
    "fraud",
    "scam",
    "blackmail",
    "extort",
    "bribe",
    "suicide",
    "self-harm",
    "cut myself",
    "overdose",
    "dox",
    "stalk",
    "home address",
    "social security number",
    "racist",
    "inferior race",
    "slur",
    "genocide",
    "rig the election",
    "voter suppression",
    "fake ballots",
    "pirate",
    "crack the license",
    "bypass drm",
    "explicit sex",
    "erotic",
    "porn",
)


class KeywordRing:
    """Flags an exchange any of whose texts contains a listed term (case-insensitive, word-start match).

    It reads every message of every role (system, developer, tool results, earlier turns,
    ``name`` fields, tool calls) and the decoded variants, and reports where each term was found.
    """

    name = "keyword"
    stage: Stage = "input"
    reads: tuple[str, ...] = ()

    def __init__(self, terms: Sequence[str] = DEFAULT_TERMS, block: bool = True) -> None:
        self.terms = tuple(terms)
        self.block = block
        self._re = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in self.terms) + ")", re.IGNORECASE)

    def matches(self, text: str) -> list[str]:
        """Terms found in a text."""
        return sorted({m.group(0).lower() for m in self._re.finditer(text[:200_000])})

    def check(self, exchange: Exchange) -> RingVerdict:
        """Score 1 when any text of the exchange (every role, decoded variants) matches, else 0."""
        t0 = time.perf_counter()
        where: dict[str, list[str]] = {}
        for source, text in role_texts(exchange):
            for term in self.matches(text):
                if source not in where.setdefault(term, []):
                    where[term].append(source)
        found = sorted(where)
        decision: Decision = "block" if found and self.block else "allow"
        sources = sorted({s for term in found for s in where[term]})
        return RingVerdict(
            ring=self.name,
            score=1.0 if found else 0.0,
            decision=decision,
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=f"matched {found} in {', '.join(sources)}" if found else "no listed term",
            details={"terms": found, "sources": {t: where[t] for t in found}},
        )
