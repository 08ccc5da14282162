"""The policy file's shape as pydantic models, compiled into the rule objects the gate runs.

Every model is strict (no coercion: ``"yes"`` is not a boolean, ``"8"`` not a number) and
rejects unknown keys, so a misspelt operator or schema keyword fails when the policy loads
instead of silently loosening it. :func:`parse_policy` turns the first validation error
into an :class:`~layerguard.errors.InvalidInputError` naming the file, the tool and the
field (see :mod:`layerguard.guard.rings.tool_gate.spec_errors`).

A tool's ``schema`` is a JSON schema over this keyword subset, each one enforced by
``jsonschema`` at call time: ``type``, ``properties``, ``required``,
``additionalProperties``, ``enum``, ``const``, ``pattern``, ``minLength``, ``maxLength``,
``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``items``,
``minItems``, ``maxItems`` (plus the annotations ``description``, ``title``, ``default``,
``examples``, ``$comment``, ``$schema``). Other keywords (``format``, ``oneOf``, ``$ref``...)
are rejected: express such checks as rules. Every schema declares a ``type`` (or lists its
values with ``enum`` / ``const``); the arguments schema has type ``object``.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, ClassVar, Literal

from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from layerguard.errors import InvalidInputError
from layerguard.guard.rings.tool_gate.arguments import ArgumentsValidator
from layerguard.guard.rings.tool_gate.checks import (
    PROVENANCE_HINT,
    Count,
    Number,
    Positive,
    Regex,
    RegexItem,
    a_list,
    argument_name,
    bool_or_schema,
    conditions,
    one_or_more,
    scalar,
    tool_map,
)
from layerguard.guard.rings.tool_gate.rules import (
    DEFAULT_INJECTION_PATTERNS,
    OPERATORS,
    Condition,
    FloorDecision,
    GateDecision,
    Provenance,
    ProvenanceRule,
    Rule,
    ToolSpec,
    name_intents,
)
from layerguard.guard.rings.tool_gate.spec_errors import fail, policy_error, where
from layerguard.guard.rings.tool_gate.values import kind

SchemaType = Literal["object", "array", "string", "integer", "number", "boolean", "null"]
_CONDITION_HINT = "a condition is {arg: NAME, OPERATOR: VALUE} or {arguments_from: tool}; operators: " + ", ".join(
    OPERATORS
)
_SCHEMA_HINT = "a JSON schema mapping, e.g. {type: object, properties: {path: {type: string}}, required: [path]}"


class _Entry(BaseModel):
    """A mapping in the policy file: strict, string keys, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    HINT: ClassVar[str] = "see examples/tool_policy.yaml"
    UNKNOWN: ClassVar[str] = "unknown key"
    UNKNOWN_HINT: ClassVar[str | None] = None  # None: list the allowed keys

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise fail(f"must be a mapping, got {kind(data)}", cls.HINT)
        allowed = [f.alias or name for name, f in cls.model_fields.items()]
        for key in data:
            if not isinstance(key, str):
                raise fail(f"keys must be strings, got {kind(key)}", cls.HINT, str(key))
            if key not in allowed:
                raise fail(cls.UNKNOWN, cls.UNKNOWN_HINT or f"allowed keys here: {', '.join(allowed)}", key)
        return data


class ArgumentSchema(_Entry):
    """One JSON schema of the supported subset; validated here, enforced by ``jsonschema``."""

    HINT: ClassVar[str] = _SCHEMA_HINT
    UNKNOWN: ClassVar[str] = "unsupported JSON-schema keyword"
    UNKNOWN_HINT: ClassVar[str | None] = (
        "supported: additionalProperties, const, enum, exclusiveMaximum, exclusiveMinimum, items, maxItems, "
        "maxLength, maximum, minItems, minLength, minimum, pattern, properties, required, type; "
        "express other checks as rules"
    )

    type: Annotated[list[SchemaType], one_or_more("a type name", _SCHEMA_HINT, unique=True)] = Field(
        default_factory=list
    )
    properties: dict[str, ArgumentSchema] = Field(default_factory=dict)
    required: Annotated[list[str], a_list("a list of argument names", "e.g. required: [path]")] = Field(
        default_factory=list
    )
    additional_properties: Annotated[ArgumentSchema | None, bool_or_schema()] = Field(
        None, alias="additionalProperties"
    )
    items: ArgumentSchema | None = None
    enum: Annotated[list[Any] | None, a_list("a non-empty list", "e.g. enum: [USD, EUR]", non_empty=True)] = None
    const: Any = None
    pattern: Regex = None
    min_length: Count = Field(None, alias="minLength")
    max_length: Count = Field(None, alias="maxLength")
    min_items: Count = Field(None, alias="minItems")
    max_items: Count = Field(None, alias="maxItems")
    minimum: Number = None
    maximum: Number = None
    exclusive_minimum: Number = Field(None, alias="exclusiveMinimum")
    exclusive_maximum: Number = Field(None, alias="exclusiveMaximum")
    description: Any = None
    title: Any = None
    default: Any = None
    examples: Any = None
    comment: Any = Field(None, alias="$comment")
    dialect: Any = Field(None, alias="$schema")

    @model_validator(mode="after")
    def _typed(self) -> ArgumentSchema:
        if "type" not in self.model_fields_set and not {"enum", "const"} & self.model_fields_set:
            raise fail(
                "is missing",
                "every schema declares its type (object, array, string, integer, number, boolean, null) "
                "or lists its values with enum/const",
                "type",
            )
        return self


class ConditionEntry(_Entry):
    """One condition of a rule's ``when``: an argument and one operator, or ``arguments_from``."""

    HINT: ClassVar[str] = _CONDITION_HINT

    arg: Annotated[str | None, argument_name(_CONDITION_HINT)] = None
    arguments_from: Annotated[list[Provenance] | None, one_or_more("a provenance", PROVENANCE_HINT)] = None
    matches: Regex = None
    not_matches: Regex = None
    equals: Any = None
    in_: Annotated[list[Any] | None, a_list("a list", "e.g. in: [USD, EUR]")] = Field(None, alias="in")
    not_in: Annotated[list[Any] | None, a_list("a list", "e.g. not_in: [USD, EUR]")] = None
    gt: Number = None
    lt: Number = None
    contains: Annotated[Any, scalar("e.g. contains: '|'")] = None

    def operators(self) -> list[str]:
        """The operators this condition sets, in :data:`OPERATORS` order."""
        return [op for op in OPERATORS if ("in_" if op == "in" else op) in self.model_fields_set]

    @model_validator(mode="after")
    def _one_operator(self) -> ConditionEntry:
        ops = self.operators()
        if "arguments_from" in self.model_fields_set:
            if ops:
                raise fail("cannot be combined with arguments_from", "write two conditions in a list", ops[0])
            return self
        if len(ops) != 1:
            problem = "has no operator" if not ops else f"has several operators ({', '.join(ops)})"
            raise fail(problem, _CONDITION_HINT)
        if self.arg is None:
            raise fail(f"is required with {ops[0]}", _CONDITION_HINT, "arg")
        return self

    def compile(self) -> Condition:
        """The runtime condition (regexes compiled)."""
        if self.arguments_from is not None:
            sources = frozenset(self.arguments_from)
            return Condition(op="arguments_from", arg=self.arg, value=sorted(sources), sources=sources)
        op = self.operators()[0]
        value = getattr(self, "in_" if op == "in" else op)
        pattern = re.compile(value) if op in ("matches", "not_matches") else None
        return Condition(op=op, arg=self.arg, value=value, pattern=pattern)


class RuleEntry(_Entry):
    """An ordered rule: ``when`` (one condition, a list of them, or nothing), ``decision``, ``reason``."""

    HINT: ClassVar[str] = "a rule is {when: ..., decision: ..., reason: ...}"

    when: Annotated[list[ConditionEntry], conditions()] = Field(default_factory=list)
    decision: GateDecision
    reason: str = ""

    def compile(self, index: int) -> Rule:
        """The runtime rule; an empty or missing reason becomes ``rule <index>``."""
        return Rule(
            when=tuple(cond.compile() for cond in self.when),
            decision=self.decision,
            reason=self.reason or f"rule {index}",
        )


class ToolEntry(_Entry):
    """What the policy says about one tool: its arguments schema, rules, default, sensitivity, intents."""

    HINT: ClassVar[str] = "a tool is a mapping with schema, default and rules"

    arguments_schema: ArgumentSchema = Field(alias="schema")
    default: GateDecision = "allow"
    rules: Annotated[list[RuleEntry], a_list("a list", "write rules as '- when: ...'", none_is_empty=True)] = Field(
        default_factory=list
    )
    sensitive: bool = False
    intents: Annotated[
        list[RegexItem] | None, a_list("a non-empty list of regexes", "e.g. ['e-?mail', 'send']", non_empty=True)
    ] = None
    description: Any = None

    @field_validator("arguments_schema", mode="after")
    @classmethod
    def _object(cls, schema: ArgumentSchema) -> ArgumentSchema:
        if "type" not in schema.model_fields_set:
            raise fail("is missing", "the arguments schema declares type: object", "type")
        if schema.type != ["object"]:
            shown = schema.type[0] if len(schema.type) == 1 else schema.type
            raise fail(f"the arguments schema must have type object, got {shown!r}", _SCHEMA_HINT, "type")
        return schema

    def compile(self, name: str, raw_schema: dict[str, Any]) -> ToolSpec:
        """The runtime spec of tool ``name``; ``raw_schema`` is the validated schema as written."""
        intents = tuple(re.compile(p, re.IGNORECASE) for p in self.intents) if self.intents else name_intents(name)
        return ToolSpec(
            name=name,
            schema=copy.deepcopy(raw_schema),
            default=self.default,
            rules=tuple(r.compile(i) for i, r in enumerate(self.rules)),
            sensitive=self.sensitive,
            intents=intents,
        )


def _default_untrusted() -> list[Provenance]:
    return ["tool", "retrieved"]


class ProvenanceEntry(_Entry):
    """The ``provenance_rule`` mapping (every key optional; see :class:`ProvenanceRule`)."""

    HINT: ClassVar[str] = "a mapping, e.g. {decision: escalate}"

    enabled: bool = True
    decision: FloorDecision = "escalate"
    untrusted: Annotated[list[Provenance], one_or_more("a provenance", PROVENANCE_HINT)] = Field(
        default_factory=_default_untrusted
    )
    min_copy_chars: Positive = 8
    min_verbatim_chars: Positive = 4
    injection_heuristic: bool = True
    injection_decision: FloorDecision = "escalate"
    injection_applies_to: Literal["all", "sensitive"] = "all"
    injection_patterns: Annotated[list[RegexItem] | None, a_list("a list of regexes", "e.g. ['you must now']")] = None

    def compile(self) -> ProvenanceRule:
        """The runtime provenance rule (patterns compiled case-insensitively)."""
        patterns = self.injection_patterns if self.injection_patterns is not None else DEFAULT_INJECTION_PATTERNS
        return ProvenanceRule(
            enabled=self.enabled,
            decision=self.decision,
            untrusted=frozenset(self.untrusted),
            min_copy_chars=self.min_copy_chars,
            min_verbatim_chars=self.min_verbatim_chars,
            injection_heuristic=self.injection_heuristic,
            injection_decision=self.injection_decision,
            injection_applies_to=self.injection_applies_to,
            injection_patterns=tuple(re.compile(p, re.IGNORECASE) for p in patterns),
        )


class PolicyEntry(_Entry):
    """The whole policy file."""

    HINT: ClassVar[str] = "a policy is a mapping with a 'tools:' key"

    tools: Annotated[dict[str, ToolEntry], tool_map()]
    unknown_tools: FloorDecision = "block"
    provenance_rule: ProvenanceEntry | None = None
    version: Any = None
    description: Any = None


def parse_policy(data: Any, source: str) -> tuple[dict[str, ToolSpec], FloorDecision, ProvenanceRule]:
    """Validate a parsed policy and compile it.

    Args:
        data: The policy mapping (e.g. from YAML).
        source: Name used in error messages (the file path).

    Returns:
        The tools by name, the unknown-tool decision and the provenance rule.

    Raises:
        InvalidInputError: The first problem found, naming the file, the tool and the field.
    """
    try:
        entry = PolicyEntry.model_validate(data)
    except ValidationError as e:
        raise policy_error(e, data, source) from None
    tools: dict[str, ToolSpec] = {}
    for name, tool in entry.tools.items():
        raw_schema = data["tools"][name]["schema"]
        try:
            ArgumentsValidator.check_schema(raw_schema)
        except SchemaError as e:  # the subset above should never get here; jsonschema is the judge
            path = ".".join(map(str, [f"tools.{name}.schema", *e.absolute_path]))
            raise InvalidInputError(f"{where(source, name, path)}: {e.message}", hint=_SCHEMA_HINT) from None
        tools[name] = tool.compile(name, raw_schema)
    provenance = entry.provenance_rule.compile() if entry.provenance_rule is not None else ProvenanceRule()
    return tools, entry.unknown_tools, provenance
