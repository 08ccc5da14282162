"""Policy validation errors: pydantic's first error as a message naming the file, the tool and the field.

A location is rendered as the policy author wrote it (``tools.send_email.rules[0].when.gt``):
it is walked along the raw data, so where a validator wrapped a single value into a list
(one condition for ``when``, one provenance for ``arguments_from``) the synthetic index is
left out.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from layerguard.errors import InvalidInputError
from layerguard.guard.rings.tool_gate.values import kind

POLICY_ERROR = "tool_policy"
GENERIC_HINT = "see examples/tool_policy.yaml for the policy format"
# hints for a required key that is missing, by key
MISSING_HINTS = {
    "tools": "add 'tools:' mapping each tool name to its schema and rules",
    "schema": "give the JSON schema of the arguments, e.g. {type: object, properties: {...}}",
    "decision": "use one of: allow, block, escalate",
}


def fail(problem: str, hint: str, field: str | None = None) -> PydanticCustomError:
    """A validation error that :func:`policy_error` reports as written.

    Args:
        problem: What is wrong, e.g. ``"has no operator"``.
        hint: How to fix it.
        field: A key below the failing value that the message should name (e.g. ``"type"``
            when a schema lacks its type), if any.

    Returns:
        The error to raise from a pydantic validator.
    """
    return PydanticCustomError(POLICY_ERROR, "{problem}", {"problem": problem, "hint": hint, "field": field or ""})


def where(source: str, tool: str | None, path: str) -> str:
    """The start of every policy error: ``invalid tool policy FILE: tool 'NAME', field PATH``."""
    tool_part = f"tool {tool!r}, " if tool is not None else ""
    return f"invalid tool policy {source}: {tool_part}field {path}"


def policy_error(error: ValidationError, raw: Any, source: str) -> InvalidInputError:
    """The first error of a failed validation of ``raw`` as an :class:`InvalidInputError`.

    Args:
        error: Pydantic's validation error.
        raw: The data that was validated (to render locations as written).
        source: The file (or ``<dict>``) for the message.

    Returns:
        The error to raise, with a hint.
    """
    details = error.errors(include_url=False)[0]
    loc = details["loc"]
    path = render_path(loc, raw)
    ctx = details.get("ctx") or {}
    if details["type"] == POLICY_ERROR and ctx.get("field"):
        path = f"{path}.{ctx['field']}" if path else str(ctx["field"])
    tool = loc[1] if len(loc) > 1 and loc[0] == "tools" and isinstance(loc[1], str) else None
    problem, hint = describe(details)
    return InvalidInputError(f"{where(source, tool, path or '<top level>')}: {problem}", hint=hint)


def render_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """``loc`` as a dotted path with ``[i]`` indices, following the raw data."""
    out = ""
    node = raw
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed
            continue
        if isinstance(node, dict) and part in node:
            out = f"{out}.{part}" if out else str(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out += f"[{part}]"
            node = node[part]
        elif isinstance(part, int):
            continue  # a single value that a validator wrapped into a list: no index was written
        else:
            out = f"{out}.{part}" if out else str(part)  # a key that is missing from the data
            node = None
    return out


def _shown(value: Any) -> str:
    """A scalar's repr, or a container's JSON type (containers may be large)."""
    return repr(value) if value is None or isinstance(value, str | int | float | bool) else kind(value)


def describe(details: ErrorDetails) -> tuple[str, str]:
    """The problem and the hint for one pydantic error."""
    kind_of_error = details["type"]
    ctx = details.get("ctx") or {}
    value = details.get("input")
    if kind_of_error == POLICY_ERROR:
        return str(ctx["problem"]), str(ctx["hint"])
    if details["loc"] and details["loc"][-1] == "[key]":
        return f"keys must be strings, got {kind(value)}", "quote the key"
    if kind_of_error == "missing":
        last = next((p for p in reversed(details["loc"]) if isinstance(p, str)), "")
        return "is required", MISSING_HINTS.get(last, GENERIC_HINT)
    if kind_of_error == "literal_error":  # pydantic writes "'a', 'b' or 'c'"
        options = ", ".join(o.strip("'") for o in str(ctx.get("expected", "")).replace(" or ", ", ").split(", "))
        return f"{_shown(value)} is not one of {options}", f"use one of: {options}"
    if kind_of_error == "bool_type":
        return f"must be true or false, got {_shown(value)}", "write true or false"
    if kind_of_error == "string_type":
        return f"must be a string, got {kind(value)}", "quote the value"
    if kind_of_error == "list_type":
        return f"must be a list, got {kind(value)}", "write a list, e.g. [a, b]"
    if kind_of_error in ("dict_type", "model_type"):
        return f"must be a mapping, got {kind(value)}", GENERIC_HINT
    return f"{details['msg']}, got {_shown(value)}", GENERIC_HINT
