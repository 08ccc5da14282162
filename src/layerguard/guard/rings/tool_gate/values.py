"""JSON values in tool-call arguments: equality, text and number views, lookup by path, leaves."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# what :func:`lookup` returns for an absent argument (``None`` is a value)
MISSING: Any = object()


def kind(value: Any) -> str:
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


def as_text(value: Any) -> str:
    """A value as text for regexes: strings as-is, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    except (ValueError, TypeError):
        return repr(value)


def as_number(value: Any) -> float | None:
    """A value as a number: numbers and numeric strings; None for anything else, NaN included."""
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


def lookup(args: Mapping[str, Any], path: str) -> Any:
    """An argument by name or dotted path; :data:`MISSING` when absent."""
    if path in args:
        return args[path]
    cur: Any = args
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return MISSING
    return cur


def leaves(value: Any, path: str) -> list[tuple[str, str]]:
    """``(path, text)`` of every string or number inside a value (what could have been copied)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        p, v = stack.pop()
        if isinstance(v, str):
            out.append((p, v))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append((p, as_text(v)))
        elif isinstance(v, Mapping):
            stack.extend((f"{p}.{k}" if p else str(k), v[k]) for k in reversed(list(v)))
        elif isinstance(v, list | tuple):
            stack.extend((f"{p}[{i}]", x) for i, x in reversed(list(enumerate(v))))
    return out
