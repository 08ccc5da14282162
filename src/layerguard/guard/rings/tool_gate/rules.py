"""The compiled form of a tool policy: decisions, provenances, operators and the rule objects the gate runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

GateDecision = Literal["allow", "block", "escalate"]
FloorDecision = Literal["block", "escalate"]
Provenance = Literal["user", "system", "assistant", "tool", "retrieved"]

GATE_DECISIONS: tuple[GateDecision, ...] = get_args(GateDecision)
FLOOR_DECISIONS: tuple[FloorDecision, ...] = get_args(FloorDecision)
PROVENANCES: tuple[Provenance, ...] = get_args(Provenance)
TRUSTED_SOURCES = frozenset({"user", "system"})
OPERATORS = ("matches", "not_matches", "equals", "in", "not_in", "gt", "lt", "contains")
SCORES: dict[str, float] = {"allow": 0.0, "rewrite": 0.3, "escalate": 0.7, "block": 1.0}


# Instruction-like text in a tool result (a heuristic; matched case-insensitively on
# NFKC-normalised, whitespace-collapsed text).
DEFAULT_INJECTION_PATTERNS: tuple[str, ...] = (
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|"
    r"original|system|your)\b[^.\n]{0,20}?\b(?:instructions?|prompts?|messages?|directions?|rules?|guidelines?)",
    r"\byou\s+(?:must|should|have\s+to|need\s+to|are\s+(?:now\s+)?required\s+to)\s+now\b",
    r"\b(?:now|instead)\s*,?\s+you\s+(?:must|should|will|need\s+to)\b",
    r"\bnew\s+(?:instructions?|task|orders?)\s*:",
    r"\b(?:send|forward|e-?mail|mail|transfer|wire|upload|post|leak|exfiltrate)\b[^\n]{0,120}?\bto\b",
    r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|alert|notify|mention\s+(?:this\s+)?to)\s+the\s+user\b",
    r"\b(?:assistant|ai|agent|model)\s*:\s*(?:ignore|you\s+must|please\s+(?:send|run|delete|transfer))",
)


@dataclass(frozen=True)
class Condition:
    """One test in a rule's ``when``.

    Attributes:
        op: An operator from :data:`OPERATORS`, or ``"arguments_from"``.
        arg: The argument name or dotted path (required for operators, optional for
            ``arguments_from``).
        value: The operator's literal (regex source, list, number...).
        pattern: The compiled regex for ``matches`` / ``not_matches``.
        sources: The provenances of an ``arguments_from`` condition.
    """

    op: str
    arg: str | None = None
    value: Any = None
    pattern: re.Pattern[str] | None = None
    sources: frozenset[str] = frozenset()

    def describe(self) -> str:
        """A short human-readable form, e.g. ``to not_matches '@corp$'``."""
        if self.op == "arguments_from":
            target = f"{self.arg} " if self.arg else ""
            return f"{target}arguments_from {sorted(self.sources)}"
        return f"{self.arg} {self.op} {self.value!r}"


@dataclass(frozen=True)
class Rule:
    """An ordered policy rule: when every condition holds, ``decision`` applies."""

    when: tuple[Condition, ...]
    decision: GateDecision
    reason: str


@dataclass(frozen=True)
class ToolSpec:
    """What the policy says about one tool.

    Attributes:
        name: The tool name as the model calls it.
        schema: JSON schema (subset) of the arguments object.
        default: Decision when no rule matches.
        rules: Ordered rules; the first that matches wins.
        sensitive: Whether the provenance rule guards this tool (sending, paying, deleting...).
        intents: Regexes (case-insensitive) telling that the last user message asked for this
            tool's action; by default the words of the tool's name.
    """

    name: str
    schema: dict[str, Any]
    default: GateDecision = "allow"
    rules: tuple[Rule, ...] = ()
    sensitive: bool = False
    intents: tuple[re.Pattern[str], ...] = ()


def name_intents(name: str) -> tuple[re.Pattern[str], ...]:
    """Default intents of a tool: its name and the words of its name (3+ letters), case-insensitive."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", name) if len(w) >= 3]
    return tuple(re.compile(r"\b" + re.escape(w), re.IGNORECASE) for w in dict.fromkeys([name, *words]) if w)


@dataclass(frozen=True)
class ProvenanceRule:
    """The global rule: content from a tool result can never authorise an action.

    Attributes:
        enabled: Whether the rule applies at all.
        decision: Floor for a sensitive tool whose arguments were copied from untrusted content.
        untrusted: Provenances whose content is untrusted (messages with role ``tool`` always are).
        min_copy_chars: Shared substring length that counts as copying.
        min_verbatim_chars: Shortest value that counts as copied when it appears whole.
        injection_heuristic: Whether the instruction-like-text heuristic applies.
        injection_decision: Floor when the heuristic fires.
        injection_applies_to: ``all`` tools, or only ``sensitive`` ones.
        injection_patterns: Regexes (case-insensitive) of instruction-like text.
    """

    enabled: bool = True
    decision: FloorDecision = "escalate"
    untrusted: frozenset[str] = frozenset({"tool", "retrieved"})
    min_copy_chars: int = 8
    min_verbatim_chars: int = 4
    injection_heuristic: bool = True
    injection_decision: FloorDecision = "escalate"
    injection_applies_to: Literal["all", "sensitive"] = "all"
    injection_patterns: tuple[re.Pattern[str], ...] = tuple(
        re.compile(p, re.IGNORECASE) for p in DEFAULT_INJECTION_PATTERNS
    )
