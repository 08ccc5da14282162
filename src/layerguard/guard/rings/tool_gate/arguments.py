"""Checks on a tool call's arguments: the policy's JSON schema (via ``jsonschema``) and rule operators.

Schemas are validated with :mod:`jsonschema` (Draft 2020-12) over the keyword subset the
policy accepts (see :mod:`layerguard.guard.rings.tool_gate.spec`), with JSON's types as a
tool call's arguments carry them: a ``number`` or ``integer`` is finite (NaN and infinity
are neither), ``2.0`` is an integer, a boolean is never a number, and an ``array`` may be a
list or a tuple. Error messages name the argument and the failed check, never the value:
arguments may hold secrets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from layerguard.guard.rings.tool_gate.rules import Condition
from layerguard.guard.rings.tool_gate.values import as_number, as_text, json_equal, kind


def _is_integer(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def _is_number(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


_TYPES = Draft202012Validator.TYPE_CHECKER.redefine_many(
    {
        "integer": _is_integer,
        "number": _is_number,
        "array": lambda _checker, value: isinstance(value, list | tuple),
        "object": lambda _checker, value: isinstance(value, Mapping),
    }
)
ArgumentsValidator: type[Validator] = validators.extend(Draft202012Validator, type_checker=_TYPES)

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# the order in which the checks on one value are reported
_RANK = {
    keyword: rank
    for rank, keyword in enumerate(
        ("type", "const", "enum", "minLength", "maxLength", "pattern", *_BOUNDS, "minItems", "maxItems", "items")
        + ("required", "properties", "additionalProperties")
    )
}
_SIZE_WORDS = {
    "minLength": "shorter than",
    "maxLength": "longer than",
    "minItems": "fewer than",
    "maxItems": "more than",
}


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "arguments") -> list[str]:
    """Check a value against a (validated) schema of the supported JSON-schema subset.

    Args:
        value: The instance, e.g. a tool call's arguments.
        schema: A schema accepted by :meth:`ToolPolicy.from_dict`.
        path: Name of the value in messages.

    Returns:
        Error messages in the schema's order (empty when the value conforms). They name
        the argument and the failed check, never the offending value. Once a value has the
        wrong type, no other check on it or inside it is reported.
    """
    errors = sorted(ArgumentsValidator(schema).iter_errors(value), key=lambda e: _order(e, schema))
    wrong_type = [tuple(e.absolute_path) for e in errors if e.validator == "type"]
    out: list[str] = []
    required_done: set[tuple[Any, ...]] = set()
    for e in errors:
        at = tuple(e.absolute_path)
        if e.validator != "type" and any(at[: len(t)] == t for t in wrong_type):
            continue
        if e.validator == "required":
            if at in required_done:
                continue
            required_done.add(at)
        out.extend(_messages(e, path + _render(at)))
    return out


def _order(e: ValidationError, root: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    """Sort key: per level, checks in :data:`_RANK` order, properties in schema order, items by index.

    Reporting order therefore follows the schema as written, not jsonschema's traversal (which
    visits extra arguments in hash order).
    """
    key: list[tuple[int, int, str]] = []
    node: Any = root
    steps, at = list(e.absolute_schema_path), list(e.absolute_path)
    j = i = 0
    while j < len(steps):
        keyword = str(steps[j])
        rank = _RANK.get(keyword, len(_RANK))
        below = j + 1 < len(steps)
        if keyword == "properties" and below and isinstance(node, Mapping):
            names = list(node.get("properties", {}))
            name = steps[j + 1]
            key.append((rank, names.index(name) if name in names else len(names), ""))
            node, j, i = node.get("properties", {}).get(name), j + 2, i + 1
        elif keyword in ("items", "additionalProperties") and below and isinstance(node, Mapping) and i < len(at):
            index = at[i] if isinstance(at[i], int) else 0
            key.append((rank, index, "" if isinstance(at[i], int) else str(at[i])))
            node, j, i = node.get(keyword), j + 1, i + 1
        else:
            key.append((rank, 0, ""))
            j += 1
    return key


def _render(parts: Sequence[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _messages(e: ValidationError, where: str) -> list[str]:
    """Messages for one jsonschema error, worded without the instance's value."""
    keyword, bound, instance = e.validator, e.validator_value, e.instance
    if keyword == "type":
        types = [bound] if isinstance(bound, str) else list(bound)
        return [f"{where}: expected {' or '.join(types)}, got {kind(instance)}"]
    if keyword == "required":
        return [f"{where}.{name}: required argument is missing" for name in bound if name not in instance]
    if keyword == "additionalProperties":
        props = e.schema.get("properties", {}) if isinstance(e.schema, Mapping) else {}
        extra = sorted((k for k in instance if k not in props), key=str)
        return [f"{where}: unexpected argument(s) {', '.join(map(str, extra))}"]
    if keyword == "const":
        return [f"{where}: must equal {bound!r}"]
    if keyword == "enum":
        return [f"{where}: not one of {bound!r}"]
    if keyword == "pattern":
        return [f"{where}: does not match pattern {bound!r}"]
    if keyword in _SIZE_WORDS:
        return [f"{where}: {_SIZE_WORDS[str(keyword)]} {keyword} {bound}"]
    if keyword in _BOUNDS:
        return [f"{where}: violates {keyword} {bound}"]
    return [f"{where}: fails {keyword}"]


def evaluate_operator(cond: Condition, value: Any) -> bool:
    """Whether an argument value satisfies an operator condition (see the package docstring).

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
        return as_text(cond.value) in as_text(value)
    items = list(value) if isinstance(value, list | tuple) else [value]
    if op in ("matches", "not_matches"):
        assert cond.pattern is not None
        pattern = cond.pattern
        ok = bool(items) and all(pattern.search(as_text(v)) is not None for v in items)
        return ok if op == "matches" else not ok
    if op in ("in", "not_in"):
        ok = bool(items) and all(any(json_equal(v, c) for c in cond.value) for v in items)
        return ok if op == "in" else not ok
    if op in ("gt", "lt"):
        nums = [as_number(v) for v in items]
        if not nums or any(n is None for n in nums):
            return False
        bound = float(cond.value)
        return all((n is not None) and (n > bound if op == "gt" else n < bound) for n in nums)
    raise ValueError(f"unknown operator {op!r}")
