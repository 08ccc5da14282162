"""Field checks of the policy models: regexes, finite numbers, counts, and values written one or many.

Each check runs before pydantic's own validation (a ``BeforeValidator``) so its message can
say what the policy author must write, e.g. ``must be a finite number, got 'lots'``.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from layerguard.guard.rings.tool_gate.rules import PROVENANCES
from layerguard.guard.rings.tool_gate.spec_errors import fail
from layerguard.guard.rings.tool_gate.values import kind

PROVENANCE_HINT = "provenances: " + ", ".join(PROVENANCES)
REGEX_HINT = "write a Python regex in single quotes; escape literal dots and brackets with a backslash"


def _regex(value: Any) -> Any:
    if not isinstance(value, str):
        raise fail(f"a regex must be a string, got {kind(value)}", "quote the regex")
    try:
        re.compile(value)
    except Exception as e:  # re.error, and OverflowError/RecursionError for pathological patterns
        raise fail(f"invalid regex {value!r}: {e}", REGEX_HINT) from None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> Any:
    if not _is_number(value) or not math.isfinite(value):
        raise fail(f"must be a finite number, got {value!r}", "write a number, e.g. 1000")
    return value


def _count(value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise fail(f"must be a non-negative integer, got {value!r}", "write a whole number, e.g. 256")
    return value


def _positive(value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise fail(f"must be a positive integer, got {value!r}", "e.g. 8")
    return value


# A regex (checked to compile); a regex in a list; a finite number; a count; a positive integer.
Regex = Annotated[str | None, BeforeValidator(_regex)]
RegexItem = Annotated[str, BeforeValidator(_regex)]
Number = Annotated[int | float | None, BeforeValidator(_finite)]
Count = Annotated[int | None, BeforeValidator(_count)]
Positive = Annotated[int, BeforeValidator(_positive)]


def one_or_more(what: str, hint: str, *, unique: bool = False) -> BeforeValidator:
    """A value written alone or as a non-empty list (without repeats if ``unique``), validated as a list."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not value:
            raise fail(f"must be {what} or a non-empty list of them, got {value!r}", hint)
        repeated = next((v for i, v in enumerate(value) if v in value[:i]), None) if unique else None
        if repeated is not None:
            raise fail(f"lists {repeated!r} more than once", "list each value once")
        return value

    return BeforeValidator(check)


def a_list(what: str, hint: str, *, non_empty: bool = False, none_is_empty: bool = False) -> BeforeValidator:
    """A list (``what`` names it in the message); optionally non-empty, or ``null`` meaning empty."""

    def check(value: Any) -> Any:
        if value is None and none_is_empty:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            raise fail(f"must be {what}, got {'an empty list' if value == [] else kind(value)}", hint)
        return value

    return BeforeValidator(check)


def conditions() -> BeforeValidator:
    """A rule's ``when``: nothing, one condition or a list of them, always validated as a list."""

    def check(value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list):
            return value
        raise fail(
            f"must be a condition or a list of conditions, got {kind(value)}",
            "e.g. when: {arg: path, matches: '^/workspace/'}",
        )

    return BeforeValidator(check)


def bool_or_schema() -> BeforeValidator:
    """``additionalProperties``: a boolean needs no further check (None), a schema is validated."""

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            return None
        if value is None:
            raise fail("must be true, false or a schema", "e.g. additionalProperties: false")
        return value

    return BeforeValidator(check)


def scalar(hint: str) -> BeforeValidator:
    """A string, number, boolean or null (not a list or a mapping)."""

    def check(value: Any) -> Any:
        if isinstance(value, dict | list):
            raise fail(f"must be a string or a scalar, got {kind(value)}", hint)
        return value

    return BeforeValidator(check)


def argument_name(hint: str) -> BeforeValidator:
    """An argument name or dotted path (``null`` meaning none)."""

    def check(value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not value):
            raise fail(f"must be an argument name, got {value!r}", hint)
        return value

    return BeforeValidator(check)


def tool_map() -> BeforeValidator:
    """The ``tools`` mapping: tool names (non-empty strings) to tool entries; ``null`` means none."""

    def check(value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(f"must be a mapping, got {kind(value)}", "map each tool name to {schema, default, rules}")
        for name in value:
            if not isinstance(name, str):
                raise fail(f"keys must be strings, got {kind(name)}", "quote the tool name", str(name))
            if not name:
                raise fail("a tool name is empty", "use the name the model calls the tool by")
        return value

    return BeforeValidator(check)
