r"""The tool_gate ring: a deterministic policy gate over the tool calls a model proposes.

Model text *proposes*; typed actions and a deterministic gate *authorise*. No model takes
part in the decision: a call is checked against a YAML policy (argument schema, ordered
rules, a default) and a global provenance rule, and the same exchange always yields the
same decision.

Policy format (see ``examples/tool_policy.yaml``)::

    unknown_tools: block            # block | escalate: calls to tools the policy does not list
    provenance_rule:                # optional; these are the defaults
      decision: escalate            # escalate | block
      untrusted: [tool, retrieved]
      min_copy_chars: 8
      min_verbatim_chars: 4
      injection_heuristic: true
      injection_decision: escalate  # escalate | block
      injection_applies_to: all     # all | sensitive
    tools:
      send_email:
        sensitive: true
        schema: {type: object, properties: {to: {type: string}}, required: [to]}
        default: allow              # allow | block | escalate (allow when omitted)
        intents: ['e-?mail', 'send']  # optional; regexes telling that the user asked for this
        rules:                      # first match wins
          - when: {arg: to, not_matches: '(?i)@example\.com$'}
            decision: block
            reason: recipient outside the allowed domain

A rule's ``when`` is one condition or a list of conditions that must all hold (an empty
or missing ``when`` always holds). A condition is either

* ``arg`` (a top-level argument name, or a dotted path into nested objects) plus exactly one
  operator: ``matches`` / ``not_matches`` (regex, ``re.search``), ``equals``, ``in`` /
  ``not_in`` (a list), ``gt`` / ``lt`` (a number), ``contains`` (substring, or list element);
* or ``arguments_from`` (a provenance or a list of them: ``user``, ``system``, ``assistant``,
  ``tool``, ``retrieved``), optionally with ``arg``: some argument value (that argument's, if
  given) was copied from content that arrived in a message with that provenance.

Condition semantics, chosen so that an allow-list cannot be widened by the model:

* A condition on an argument that is absent is false (negated operators included); make
  arguments required in the schema when a rule depends on them.
* For a list value, ``matches``, ``in``, ``gt`` and ``lt`` need *every* element to satisfy
  them (an empty list satisfies none); ``not_matches`` and ``not_in`` are their exact
  negations (some element fails); ``contains`` holds when some element equals the literal or,
  for strings, contains it; ``equals`` compares the whole value.
* ``gt`` / ``lt`` read numbers and numeric strings; anything else (or NaN) makes them false.
* ``equals`` / ``in`` use JSON equality (``true`` is not ``1``); string comparisons are exact,
  use a ``(?i)`` regex for case-insensitive checks.

Copy detection (``arguments_from`` and the provenance rule) compares NFKC-normalised,
case-folded, whitespace-collapsed text: a value counts as copied when it appears whole in the
source content (if at least ``min_verbatim_chars`` long) or shares a substring of at least
``min_copy_chars`` with it. Text that the user or system also wrote does not count when the
source asked about is untrusted (tool, retrieved, assistant): what the user said, the user
authorised.

Decision per call, in order:

1. A tool the policy does not list gets ``unknown_tools``.
2. Arguments failing the tool's schema are blocked (the error names the argument and the check).
3. The first rule whose ``when`` holds decides; if none does, the tool's ``default``.
4. The provenance rule can only make the decision more severe:

   * a ``sensitive`` tool whose arguments were copied from untrusted content (a message with
     role ``tool`` or a provenance in ``untrusted``) gets at least ``decision``: content from a
     tool result can never authorise an action;
   * heuristic (deterministic regexes, not a classifier): when a message from untrusted content
     arrived after the last user message and contains instruction-like text ("ignore previous
     instructions", "you must now", "send ... to"...), a call whose tool the last user message
     did not mention (no ``intents`` regex found; by default the words of the tool's name) gets
     at least ``injection_decision``. It misses paraphrased injections and can fire on pages
     that merely say "send feedback to"; it is a floor, never the only line of defence.

The ring's decision is the most severe over the calls (block > escalate > rewrite > allow);
its score is 1.0 for block, 0.7 for escalate, 0.0 for allow. Verdict explanations and details
name arguments and sources, never the copied values (they may be secrets).

The arguments schema is checked by a built-in validator of a JSON-schema subset (``type``,
``properties``, ``required``, ``additionalProperties``, ``enum``, ``const``, ``pattern``,
``minLength``, ``maxLength``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``items``, ``minItems``, ``maxItems``), the same in every environment.
Other keywords are rejected when the policy loads rather than silently ignored, and every
schema must declare a ``type`` (or an ``enum`` / ``const``).
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from layerguard.errors import InvalidInputError
from layerguard.guard.types import SEVERITY, Decision, Exchange, Message, RingVerdict

GateDecision = Literal["allow", "block", "escalate"]
FloorDecision = Literal["block", "escalate"]

GATE_DECISIONS: tuple[GateDecision, ...] = ("allow", "block", "escalate")
FLOOR_DECISIONS: tuple[FloorDecision, ...] = ("block", "escalate")
PROVENANCES = ("user", "system", "assistant", "tool", "retrieved")
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

_SCHEMA_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "items",
        "minItems",
        "maxItems",
    }
)
_SCHEMA_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment", "$schema"})
_ZERO_WIDTH = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_MISSING: Any = object()
_MAX_SCHEMA_ERRORS = 5


# ---------------------------------------------------------------------------- errors


def _where(source: str, tool: str | None, path: str) -> str:
    tool_part = f"tool {tool!r}, " if tool is not None else ""
    return f"invalid tool policy {source}: {tool_part}field {path}"


def _bad(source: str, tool: str | None, path: str, problem: str, hint: str) -> InvalidInputError:
    return InvalidInputError(f"{_where(source, tool, path)}: {problem}", hint=hint)


# ---------------------------------------------------------------------------- policy model


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


def _name_intents(name: str) -> tuple[re.Pattern[str], ...]:
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


@dataclass(frozen=True)
class ToolPolicy:
    """A tool policy: per-tool schemas and rules, the unknown-tool decision, the provenance rule.

    Build one with :meth:`from_yaml` or :meth:`from_dict`; both validate everything up front
    and raise :class:`~layerguard.errors.InvalidInputError` naming the file, tool and field.
    """

    tools: Mapping[str, ToolSpec] = field(default_factory=dict)
    unknown_tools: FloorDecision = "block"
    provenance_rule: ProvenanceRule = field(default_factory=ProvenanceRule)
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | Path) -> ToolPolicy:
        """Load and validate a policy file.

        Args:
            path: A YAML file in the format described in this module's docstring.

        Returns:
            The validated policy.

        Raises:
            InvalidInputError: The file is missing, is not YAML, or fails validation.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInputError(
                f"tool policy file {p} does not exist",
                hint="pass the path of a YAML tool policy, e.g. examples/tool_policy.yaml",
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError(
                f"tool policy file {p} cannot be read: {e}", hint="check the path and that it is UTF-8 text"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise InvalidInputError(
                f"invalid tool policy {p}: not valid YAML{where}: {problem}",
                hint="check indentation and quoting; put regexes in single quotes",
            ) from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> ToolPolicy:
        """Validate a parsed policy (e.g. from YAML or JSON).

        Args:
            data: The policy mapping.
            source: Name used in error messages (the file path).

        Returns:
            The validated policy.

        Raises:
            InvalidInputError: A field is missing, has the wrong type or an invalid value.
        """
        return _PolicyParser(source).policy(data)


# ---------------------------------------------------------------------------- policy parser


class _PolicyParser:
    """Turns a raw mapping into a :class:`ToolPolicy`, with errors naming file, tool and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def bad(self, tool: str | None, path: str, problem: str, hint: str) -> InvalidInputError:
        return _bad(self.source, tool, path, problem, hint)

    def mapping(self, value: Any, tool: str | None, path: str, hint: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.bad(tool, path, f"must be a mapping, got {_kind(value)}", hint)
        for k in value:
            if not isinstance(k, str):
                raise self.bad(tool, f"{path}.{k}", f"keys must be strings, got {_kind(k)}", hint)
        return value

    def no_extra(self, value: Mapping[str, Any], allowed: Sequence[str], tool: str | None, path: str) -> None:
        extra = [k for k in value if k not in allowed]
        if extra:
            raise self.bad(
                tool,
                f"{path}.{extra[0]}" if path else extra[0],
                "unknown key",
                f"allowed keys here: {', '.join(allowed)}",
            )

    def choice(self, value: Any, options: Sequence[str], tool: str | None, path: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise self.bad(
                tool, path, f"{value!r} is not one of {', '.join(options)}", f"use one of: {', '.join(options)}"
            )
        return value

    def regex(self, value: Any, tool: str | None, path: str, flags: int = 0) -> re.Pattern[str]:
        if not isinstance(value, str):
            raise self.bad(tool, path, f"a regex must be a string, got {_kind(value)}", "quote the regex")
        try:
            return re.compile(value, flags)
        except re.error as e:
            raise self.bad(
                tool,
                path,
                f"invalid regex {value!r}: {e}",
                "write a Python regex in single quotes; escape literal dots and brackets with a backslash",
            ) from None

    def boolean(self, value: Any, tool: str | None, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.bad(tool, path, f"must be true or false, got {value!r}", "write true or false")
        return value

    def positive_int(self, value: Any, tool: str | None, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.bad(tool, path, f"must be a positive integer, got {value!r}", "e.g. 8")
        return value

    def provenances(self, value: Any, tool: str | None, path: str) -> frozenset[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.bad(tool, path, f"must be a provenance or a non-empty list of them, got {value!r}", _PROV_HINT)
        for i, v in enumerate(items):
            self.choice(v, PROVENANCES, tool, f"{path}[{i}]" if not isinstance(value, str) else path)
        return frozenset(items)

    # -- top level

    def policy(self, data: Any) -> ToolPolicy:
        top = self.mapping(data, None, "<top level>", "a policy is a mapping with a 'tools:' key")
        self.no_extra(top, ("tools", "unknown_tools", "provenance_rule", "version", "description"), None, "")
        if "tools" not in top:
            raise self.bad(None, "tools", "is required", "add 'tools:' mapping each tool name to its schema and rules")
        raw_tools = top["tools"] if top["tools"] is not None else {}
        tools_map = self.mapping(raw_tools, None, "tools", "map each tool name to {schema, default, rules}")
        tools = {name: self.tool(name, spec) for name, spec in tools_map.items()}
        unknown = cast(
            FloorDecision, self.choice(top.get("unknown_tools", "block"), FLOOR_DECISIONS, None, "unknown_tools")
        )
        pr = self.provenance_rule(top.get("provenance_rule"))
        return ToolPolicy(tools=tools, unknown_tools=unknown, provenance_rule=pr, source=self.source)

    def provenance_rule(self, raw: Any) -> ProvenanceRule:
        if raw is None:
            return ProvenanceRule()
        path = "provenance_rule"
        d = self.mapping(raw, None, path, "a mapping, e.g. {decision: escalate}")
        keys = (
            "enabled",
            "decision",
            "untrusted",
            "min_copy_chars",
            "min_verbatim_chars",
            "injection_heuristic",
            "injection_decision",
            "injection_applies_to",
            "injection_patterns",
        )
        self.no_extra(d, keys, None, path)
        base = ProvenanceRule()
        patterns = base.injection_patterns
        if "injection_patterns" in d:
            pats = d["injection_patterns"]
            if not isinstance(pats, list):
                raise self.bad(None, f"{path}.injection_patterns", "must be a list of regexes", "e.g. ['you must now']")
            patterns = tuple(
                self.regex(p, None, f"{path}.injection_patterns[{i}]", re.IGNORECASE) for i, p in enumerate(pats)
            )
        return ProvenanceRule(
            enabled=self.boolean(d.get("enabled", True), None, f"{path}.enabled"),
            decision=cast(
                FloorDecision, self.choice(d.get("decision", "escalate"), FLOOR_DECISIONS, None, f"{path}.decision")
            ),
            untrusted=self.provenances(d.get("untrusted", ["tool", "retrieved"]), None, f"{path}.untrusted"),
            min_copy_chars=self.positive_int(d.get("min_copy_chars", 8), None, f"{path}.min_copy_chars"),
            min_verbatim_chars=self.positive_int(d.get("min_verbatim_chars", 4), None, f"{path}.min_verbatim_chars"),
            injection_heuristic=self.boolean(d.get("injection_heuristic", True), None, f"{path}.injection_heuristic"),
            injection_decision=cast(
                FloorDecision,
                self.choice(
                    d.get("injection_decision", "escalate"), FLOOR_DECISIONS, None, f"{path}.injection_decision"
                ),
            ),
            injection_applies_to=cast(
                Literal["all", "sensitive"],
                self.choice(
                    d.get("injection_applies_to", "all"), ("all", "sensitive"), None, f"{path}.injection_applies_to"
                ),
            ),
            injection_patterns=patterns,
        )

    # -- tools

    def tool(self, name: str, raw: Any) -> ToolSpec:
        path = f"tools.{name}"
        if not name:
            raise self.bad(None, "tools", "a tool name is empty", "use the name the model calls the tool by")
        d = self.mapping(raw, name, path, "a tool is a mapping with schema, default and rules")
        self.no_extra(d, ("schema", "default", "rules", "sensitive", "intents", "description"), name, path)
        if "schema" not in d:
            raise self.bad(
                name,
                f"{path}.schema",
                "is required",
                "give the JSON schema of the arguments, e.g. {type: object, properties: {...}}",
            )
        schema = self.schema(d["schema"], name, f"{path}.schema", top=True)
        default = cast(GateDecision, self.choice(d.get("default", "allow"), GATE_DECISIONS, name, f"{path}.default"))
        raw_rules = d.get("rules") or []
        if not isinstance(raw_rules, list):
            raise self.bad(
                name, f"{path}.rules", f"must be a list, got {_kind(raw_rules)}", "write rules as '- when: ...'"
            )
        rules = tuple(self.rule(r, name, f"{path}.rules[{i}]", i) for i, r in enumerate(raw_rules))
        sensitive = self.boolean(d.get("sensitive", False), name, f"{path}.sensitive")
        if "intents" in d:
            raw_intents = d["intents"]
            if not isinstance(raw_intents, list) or not raw_intents:
                raise self.bad(
                    name, f"{path}.intents", "must be a non-empty list of regexes", "e.g. ['e-?mail', 'send']"
                )
            intents = tuple(
                self.regex(p, name, f"{path}.intents[{i}]", re.IGNORECASE) for i, p in enumerate(raw_intents)
            )
        else:
            intents = _name_intents(name)
        return ToolSpec(name=name, schema=schema, default=default, rules=rules, sensitive=sensitive, intents=intents)

    def rule(self, raw: Any, tool: str, path: str, index: int) -> Rule:
        d = self.mapping(raw, tool, path, "a rule is {when: ..., decision: ..., reason: ...}")
        self.no_extra(d, ("when", "decision", "reason"), tool, path)
        if "decision" not in d:
            raise self.bad(tool, f"{path}.decision", "is required", f"use one of: {', '.join(GATE_DECISIONS)}")
        decision = cast(GateDecision, self.choice(d["decision"], GATE_DECISIONS, tool, f"{path}.decision"))
        reason = d.get("reason", f"rule {index}")
        if not isinstance(reason, str):
            raise self.bad(tool, f"{path}.reason", f"must be a string, got {_kind(reason)}", "quote the reason")
        raw_when = d.get("when")
        if raw_when is None:
            conds: list[Any] = []
        elif isinstance(raw_when, dict):
            conds = [raw_when]
        elif isinstance(raw_when, list):
            conds = raw_when
        else:
            raise self.bad(
                tool,
                f"{path}.when",
                f"must be a condition or a list of conditions, got {_kind(raw_when)}",
                "e.g. when: {arg: path, matches: '^/workspace/'}",
            )
        many = isinstance(raw_when, list)
        when = tuple(
            self.condition(c, tool, f"{path}.when[{i}]" if many else f"{path}.when") for i, c in enumerate(conds)
        )
        return Rule(when=when, decision=decision, reason=reason or f"rule {index}")

    def condition(self, raw: Any, tool: str, path: str) -> Condition:
        hint = "a condition is {arg: NAME, OPERATOR: VALUE} or {arguments_from: tool}; operators: " + ", ".join(
            OPERATORS
        )
        d = self.mapping(raw, tool, path, hint)
        self.no_extra(d, ("arg", "arguments_from", *OPERATORS), tool, path)
        arg = d.get("arg")
        if arg is not None and (not isinstance(arg, str) or not arg):
            raise self.bad(tool, f"{path}.arg", f"must be an argument name, got {arg!r}", hint)
        ops = [k for k in OPERATORS if k in d]
        if "arguments_from" in d:
            if ops:
                raise self.bad(
                    tool, f"{path}.{ops[0]}", "cannot be combined with arguments_from", "write two conditions in a list"
                )
            sources = self.provenances(d["arguments_from"], tool, f"{path}.arguments_from")
            return Condition(op="arguments_from", arg=arg, value=sorted(sources), sources=sources)
        if len(ops) != 1:
            problem = "has no operator" if not ops else f"has several operators ({', '.join(ops)})"
            raise self.bad(tool, path, problem, hint)
        op = ops[0]
        if arg is None:
            raise self.bad(tool, f"{path}.arg", f"is required with {op}", hint)
        value = d[op]
        vpath = f"{path}.{op}"
        if op in ("matches", "not_matches"):
            return Condition(op=op, arg=arg, value=value, pattern=self.regex(value, tool, vpath))
        if op in ("in", "not_in"):
            if not isinstance(value, list):
                raise self.bad(tool, vpath, f"must be a list, got {_kind(value)}", "e.g. in: [USD, EUR]")
            return Condition(op=op, arg=arg, value=list(value))
        if op in ("gt", "lt"):
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise self.bad(tool, vpath, f"must be a finite number, got {value!r}", "e.g. gt: 1000")
            return Condition(op=op, arg=arg, value=value)
        if op == "contains":
            if isinstance(value, dict | list):
                raise self.bad(tool, vpath, f"must be a string or a scalar, got {_kind(value)}", "e.g. contains: '|'")
            return Condition(op=op, arg=arg, value=value)
        return Condition(op=op, arg=arg, value=value)  # equals: any JSON value

    # -- schema

    def schema(self, raw: Any, tool: str, path: str, top: bool = False) -> dict[str, Any]:
        hint = "a JSON schema mapping, e.g. {type: object, properties: {path: {type: string}}, required: [path]}"
        d = self.mapping(raw, tool, path, hint)
        unknown = [k for k in d if k not in _SCHEMA_KEYWORDS and k not in _SCHEMA_ANNOTATIONS]
        if unknown:
            raise self.bad(
                tool,
                f"{path}.{unknown[0]}",
                "unsupported JSON-schema keyword",
                "supported: " + ", ".join(sorted(_SCHEMA_KEYWORDS)) + "; express other checks as rules",
            )
        if "type" in d:
            t = d["type"]
            types = [t] if isinstance(t, str) else t
            if not isinstance(types, list) or not types:
                raise self.bad(tool, f"{path}.type", f"must be a type name or a list of them, got {t!r}", hint)
            for i, ty in enumerate(types):
                self.choice(ty, _SCHEMA_TYPES, tool, f"{path}.type" if isinstance(t, str) else f"{path}.type[{i}]")
            if top and types != ["object"]:
                raise self.bad(tool, f"{path}.type", f"the arguments schema must have type object, got {t!r}", hint)
        elif top or ("enum" not in d and "const" not in d):
            raise self.bad(
                tool,
                f"{path}.type",
                "is missing",
                "every schema declares its type (object, array, string, integer, number, boolean, null) "
                "or lists its values with enum/const",
            )
        if "properties" in d:
            props = self.mapping(d["properties"], tool, f"{path}.properties", "map argument names to schemas")
            for k, sub in props.items():
                self.schema(sub, tool, f"{path}.properties.{k}")
        if "required" in d:
            req = d["required"]
            if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
                raise self.bad(tool, f"{path}.required", "must be a list of argument names", "e.g. required: [path]")
        if "additionalProperties" in d:
            ap = d["additionalProperties"]
            if not isinstance(ap, bool):
                self.schema(ap, tool, f"{path}.additionalProperties")
        if "items" in d:
            self.schema(d["items"], tool, f"{path}.items")
        if "enum" in d and (not isinstance(d["enum"], list) or not d["enum"]):
            raise self.bad(tool, f"{path}.enum", "must be a non-empty list", "e.g. enum: [USD, EUR]")
        if "pattern" in d:
            self.regex(d["pattern"], tool, f"{path}.pattern")
        for k in ("minLength", "maxLength", "minItems", "maxItems"):
            if k in d:
                v = d[k]
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise self.bad(tool, f"{path}.{k}", f"must be a non-negative integer, got {v!r}", f"e.g. {k}: 256")
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if k in d:
                v = d[k]
                if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                    raise self.bad(tool, f"{path}.{k}", f"must be a finite number, got {v!r}", f"e.g. {k}: 0")
        return d


_PROV_HINT = "provenances: " + ", ".join(PROVENANCES)


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages that must not echo the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# ---------------------------------------------------------------------------- JSON values


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: like ``==`` but booleans never equal numbers, and containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    try:
        return bool(a == b)
    except Exception:  # exotic objects in arguments: unequal
        return False


def _as_text(value: Any) -> str:
    """A value as text for regexes: strings as-is, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    except (ValueError, TypeError):
        return repr(value)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            f = float(value)
        except OverflowError:
            f = math.inf if value > 0 else -math.inf
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(f) else f


def _lookup(args: Mapping[str, Any], path: str) -> Any:
    """An argument by name or dotted path; :data:`_MISSING` when absent."""
    if path in args:
        return args[path]
    cur: Any = args
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _leaves(value: Any, path: str) -> list[tuple[str, str]]:
    """``(path, text)`` of every string or number inside a value (what could have been copied)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        p, v = stack.pop()
        if isinstance(v, str):
            out.append((p, v))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append((p, _as_text(v)))
        elif isinstance(v, Mapping):
            stack.extend((f"{p}.{k}" if p else str(k), v[k]) for k in reversed(list(v)))
        elif isinstance(v, list | tuple):
            stack.extend((f"{p}[{i}]", x) for i, x in reversed(list(enumerate(v))))
    return out


# ---------------------------------------------------------------------------- schema validation


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "arguments") -> list[str]:
    """Check a value against a (validated) schema of the supported JSON-schema subset.

    Args:
        value: The instance, e.g. a tool call's arguments.
        schema: A schema accepted by :meth:`ToolPolicy.from_dict`.
        path: Name of the value in messages.

    Returns:
        Error messages in a deterministic order (empty when the value conforms). They name the
        argument and the failed check, never the offending value.
    """
    errors: list[str] = []
    _validate(value, schema, path, errors)
    return errors


def _type_ok(value: Any, t: str) -> bool:
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list | tuple)
    if t == "object":
        return isinstance(value, Mapping)
    if isinstance(value, bool):
        return False
    if t == "integer":
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if t == "number":
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    return False


def _validate(value: Any, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "type" in schema:
        t = schema["type"]
        types = [t] if isinstance(t, str) else list(t)
        if not any(_type_ok(value, ty) for ty in types):
            errors.append(f"{path}: expected {' or '.join(types)}, got {_kind(value)}")
            return
    if "const" in schema and not json_equal(value, schema["const"]):
        errors.append(f"{path}: must equal {schema['const']!r}")
    if "enum" in schema and not any(json_equal(value, e) for e in schema["enum"]):
        errors.append(f"{path}: not one of {schema['enum']!r}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than minLength {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than maxLength {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{path}: does not match pattern {schema['pattern']!r}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        for key, fails in (
            ("minimum", lambda v, b: v < b),
            ("maximum", lambda v, b: v > b),
            ("exclusiveMinimum", lambda v, b: v <= b),
            ("exclusiveMaximum", lambda v, b: v >= b),
        ):
            if key in schema and (math.isnan(value) or fails(value, schema[key])):
                errors.append(f"{path}: violates {key} {schema[key]}")
    elif isinstance(value, list | tuple):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: fewer than minItems {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than maxItems {schema['maxItems']}")
        if "items" in schema:
            for i, item in enumerate(value):
                _validate(item, schema["items"], f"{path}[{i}]", errors)
    elif isinstance(value, Mapping):
        props: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name}: required argument is missing")
        for name, sub in props.items():
            if name in value:
                _validate(value[name], sub, f"{path}.{name}", errors)
        extra = sorted((k for k in value if k not in props), key=str)
        ap = schema.get("additionalProperties", True)
        if ap is False and extra:
            errors.append(f"{path}: unexpected argument(s) {', '.join(map(str, extra))}")
        elif isinstance(ap, Mapping):
            for k in extra:
                _validate(value[k], ap, f"{path}.{k}", errors)


# ---------------------------------------------------------------------------- provenance


def _quote(text: str, words: int = 4) -> str:
    """The first words of matched text for an explanation; words that could be secrets are masked."""
    parts = text.split()
    shown = ["***" if len(w) > 16 or any(ch.isdigit() for ch in w) else w for w in parts[:words]]
    return " ".join(shown) + (" ..." if len(parts) > words else "")


def normalize_text(text: str) -> str:
    """NFKC, zero-width characters removed, whitespace collapsed (case kept)."""
    return " ".join(_ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).split())


def _fold(text: str) -> str:
    return normalize_text(text).casefold()


class _ExchangeIndex:
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
            self._folded = [_fold(m.content) for m in self.exchange.messages]
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
            v = _fold(raw)
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
                        found = _quote(hit.group(0))
                        break
            self._injection = (found,)
        return self._injection[0]


# ---------------------------------------------------------------------------- the ring


@dataclass
class CallDecision:
    """The gate's decision on one tool call.

    Attributes:
        index: Position of the call in the exchange.
        id: The call's id.
        name: The tool name.
        decision: allow, block or escalate.
        reason: Why, in words.
        stage: What decided: ``unknown_tool``, ``schema``, ``rule``, ``default`` or ``error``.
        rule: Index of the matching rule (stage ``rule``).
        flags: Provenance findings: ``copied_from_untrusted``, ``injection_heuristic``.
        copied_arg: The argument found copied from untrusted content (not its value).
        raised_by: Which provenance findings raised the decision.
    """

    index: int
    id: str
    name: str
    decision: GateDecision
    reason: str
    stage: str
    rule: int | None = None
    flags: list[str] = field(default_factory=list)
    copied_arg: str | None = None
    raised_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for verdict details."""
        return {
            "index": self.index,
            "id": self.id,
            "name": self.name,
            "decision": self.decision,
            "reason": self.reason,
            "stage": self.stage,
            "rule": self.rule,
            "flags": list(self.flags),
            "copied_arg": self.copied_arg,
            "raised_by": list(self.raised_by),
        }


def _more_severe(a: GateDecision, b: GateDecision) -> GateDecision:
    return a if SEVERITY[a] >= SEVERITY[b] else b


class ToolGateRing:
    """Deterministic policy gate over proposed tool calls (no model involved).

    Args:
        policy: The tool policy (see :class:`ToolPolicy`).
    """

    name = "tool_gate"
    needs_activations = False

    def __init__(self, policy: ToolPolicy) -> None:
        self.policy = policy

    @classmethod
    def from_yaml(cls, path: str | Path) -> ToolGateRing:
        """A ring over the policy in a YAML file."""
        return cls(ToolPolicy.from_yaml(path))

    def decide(self, exchange: Exchange) -> list[CallDecision]:
        """The decision on every tool call of an exchange, in order."""
        index = _ExchangeIndex(exchange, self.policy.provenance_rule)
        out = []
        for i, call in enumerate(exchange.tool_calls):
            try:
                out.append(self._decide_call(i, call.id, call.name, call.arguments, index))
            except Exception as e:  # check must not raise; an unexpected failure fails closed
                out.append(
                    CallDecision(
                        i, call.id, call.name, "block", f"could not evaluate the call ({type(e).__name__})", "error"
                    )
                )
        return out

    def check(self, exchange: Exchange) -> RingVerdict:
        """Judge every proposed tool call; the most severe call decision is the ring's.

        Args:
            exchange: The conversation and the tool calls the model proposes.

        Returns:
            Score 1.0 for block, 0.7 for escalate, 0.0 for allow; ``details["calls"]`` holds
            every call's decision, reason, stage and provenance flags.
        """
        t0 = time.perf_counter()
        if not exchange.tool_calls:
            return RingVerdict(
                ring=self.name,
                score=0.0,
                decision="allow",
                latency_ms=(time.perf_counter() - t0) * 1000,
                explanation="no tool calls",
                details={"calls": []},
            )
        calls = self.decide(exchange)
        decision: Decision = "allow"
        for c in calls:
            if SEVERITY[c.decision] > SEVERITY[decision]:
                decision = c.decision
        provenance = any(c.raised_by for c in calls if c.decision == decision)
        category = None if decision == "allow" else ("prompt_injection" if provenance else "tool_policy")
        explanation = "; ".join(f"{c.name}#{c.id or c.index}: {c.decision} ({c.reason})" for c in calls)
        return RingVerdict(
            ring=self.name,
            score=SCORES[decision],
            decision=decision,
            category=category,
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=explanation,
            details={"calls": [c.to_dict() for c in calls], "policy": self.policy.source},
        )

    # -- one call

    def _decide_call(
        self, i: int, call_id: str, name: str, args: dict[str, Any], index: _ExchangeIndex
    ) -> CallDecision:
        policy = self.policy
        spec = policy.tools.get(name)
        if spec is None:
            return CallDecision(
                i,
                call_id,
                name,
                policy.unknown_tools,
                f"unknown tool {name!r} (not in the policy)",
                "unknown_tool",
            )
        errors = schema_errors(args, spec.schema)
        if errors:
            shown = "; ".join(errors[:_MAX_SCHEMA_ERRORS])
            more = f" (+{len(errors) - _MAX_SCHEMA_ERRORS} more)" if len(errors) > _MAX_SCHEMA_ERRORS else ""
            return CallDecision(i, call_id, name, "block", f"arguments fail the schema: {shown}{more}", "schema")
        decided: CallDecision | None = None
        for r, rule in enumerate(spec.rules):
            if all(self._holds(c, args, index) for c in rule.when):
                decided = CallDecision(i, call_id, name, rule.decision, rule.reason, "rule", rule=r)
                break
        if decided is None:
            decided = CallDecision(
                i, call_id, name, spec.default, f"no rule matched: default {spec.default}", "default"
            )
        self._provenance(decided, spec, args, index)
        return decided

    def _holds(self, cond: Condition, args: Mapping[str, Any], index: _ExchangeIndex) -> bool:
        if cond.op == "arguments_from":
            if cond.arg is None:
                leaves = _leaves(args, "")
            else:
                value = _lookup(args, cond.arg)
                if value is _MISSING:
                    return False
                leaves = _leaves(value, cond.arg)
            return index.copied(leaves, cond.sources) is not None
        assert cond.arg is not None  # guaranteed by the parser
        value = _lookup(args, cond.arg)
        if value is _MISSING:
            return False
        return evaluate_operator(cond, value)

    def _provenance(self, d: CallDecision, spec: ToolSpec, args: Mapping[str, Any], index: _ExchangeIndex) -> None:
        pr = self.policy.provenance_rule
        if not pr.enabled:
            return
        notes: list[str] = []
        if spec.sensitive:
            copied = index.copied(_leaves(args, ""), pr.untrusted | {"tool"})
            if copied is not None:
                d.flags.append("copied_from_untrusted")
                d.copied_arg = copied
                if SEVERITY[pr.decision] > SEVERITY[d.decision]:
                    d.raised_by.append("copied_from_untrusted")
                    d.decision = pr.decision
                notes.append(
                    f"argument {copied!r} was copied from a tool result or retrieved content and {spec.name} is "
                    f"sensitive: at least {pr.decision}"
                )
        if pr.injection_heuristic and (pr.injection_applies_to == "all" or spec.sensitive):
            found = index.injection()
            if found is not None and not any(p.search(index.last_user) for p in spec.intents):
                d.flags.append("injection_heuristic")
                if SEVERITY[pr.injection_decision] > SEVERITY[d.decision]:
                    d.raised_by.append("injection_heuristic")
                    d.decision = pr.injection_decision
                notes.append(
                    f"a tool result after the last user message contains instruction-like text ({found!r}) and the "
                    f"user did not ask for {spec.name}: at least {pr.injection_decision}"
                )
        if notes:
            d.reason = "; ".join([d.reason, *notes])


def evaluate_operator(cond: Condition, value: Any) -> bool:
    """Whether an argument value satisfies an operator condition (see the module docstring).

    Args:
        cond: A condition whose ``op`` is one of :data:`OPERATORS`.
        value: The argument's value (present).

    Returns:
        The condition's truth value.
    """
    op = cond.op
    if op == "equals":
        return json_equal(value, cond.value)
    if op == "contains":
        if isinstance(value, list | tuple):
            return any(
                json_equal(v, cond.value) or (isinstance(v, str) and isinstance(cond.value, str) and cond.value in v)
                for v in value
            )
        return _as_text(cond.value) in _as_text(value)
    items = list(value) if isinstance(value, list | tuple) else [value]
    if op in ("matches", "not_matches"):
        assert cond.pattern is not None
        pattern = cond.pattern
        ok = bool(items) and all(pattern.search(_as_text(v)) is not None for v in items)
        return ok if op == "matches" else not ok
    if op in ("in", "not_in"):
        ok = bool(items) and all(any(json_equal(v, c) for c in cond.value) for v in items)
        return ok if op == "in" else not ok
    if op in ("gt", "lt"):
        nums = [_as_number(v) for v in items]
        if not nums or any(n is None for n in nums):
            return False
        bound = float(cond.value)
        return all((n is not None) and (n > bound if op == "gt" else n < bound) for n in nums)
    raise ValueError(f"unknown operator {op!r}")
