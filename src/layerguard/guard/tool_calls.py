"""Tool calls written as text by a model: Qwen-format ``<tool_call>`` blocks (or a bare JSON call).

A model offered tools answers a call as ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``;
small models often write the JSON alone, which counts when it names an offered tool.
:func:`split_tool_calls` parses such blocks out of a finished text, :class:`ToolCallFilter` holds
them back while text is streamed, and :func:`openai_tool_call` renders a parsed call in OpenAI's
``tool_calls`` format. Nothing here knows about HTTP.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection
from typing import Any

from layerguard.guard.types import ToolCall

TOOL_OPEN = "<tool_call>"
_TOOL_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"\A```(?:json)?[ \t]*\n(.*?)\n?```\Z", re.DOTALL)


class ToolCallFilter:
    """Streams text while holding back anything from ``<tool_call>`` on.

    ``feed`` returns the text that is safe to send now; ``finish`` returns what is still held
    back and the captured tool-call text.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._captured: str | None = None

    def feed(self, text: str) -> str:
        """Add generated text; return the part that can be sent now."""
        if self._captured is not None:
            self._captured += text
            return ""
        buf = self._pending + text
        i = buf.find(TOOL_OPEN)
        if i >= 0:
            self._captured, self._pending = buf[i:], ""
            return buf[:i]
        keep = 0
        for k in range(min(len(TOOL_OPEN) - 1, len(buf)), 0, -1):
            if TOOL_OPEN.startswith(buf[-k:]):
                keep = k
                break
        self._pending = buf[len(buf) - keep :]
        return buf[: len(buf) - keep]

    def finish(self) -> tuple[str, str]:
        """``(held-back plain text, captured tool-call text)``."""
        return self._pending, self._captured or ""


def _parse_call(body: str) -> ToolCall | None:
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    return _call_of(obj)


def _call_of(obj: Any) -> ToolCall | None:
    """The call a parsed JSON value describes, or None when it is not a well-formed call."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None
    return ToolCall(id="call_" + secrets.token_hex(12), name=obj["name"], arguments=args)


def split_tool_calls(text: str, names: Collection[str] = ()) -> tuple[str, list[ToolCall]]:
    """Split Qwen-format ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks from text.

    With ``names`` (the tools offered), a message with no such block whose whole text is a
    call to one of them, as a bare JSON object or list of objects, or one fenced ```json
    block, is a call too: small models often write calls that way. Text that merely contains
    JSON, or names a tool that was not offered, stays text.

    Returns:
        The text outside well-formed blocks (malformed blocks stay in it) and the calls.
    """
    calls: list[ToolCall] = []
    rest: list[str] = []
    pos = 0
    for m in _TOOL_RE.finditer(text):
        rest.append(text[pos : m.start()])
        pos = m.end()
        call = _parse_call(m.group(1).strip())
        if call is None:
            rest.append(m.group(0))
        else:
            calls.append(call)
    rest.append(text[pos:])
    content = "".join(rest)
    if not calls and names:
        bare = _bare_calls(text, names)
        if bare:
            return "", bare
    return (content.strip() if calls else content), calls


def _bare_calls(text: str, names: Collection[str]) -> list[ToolCall]:
    """The calls of a message that is nothing but a JSON call (or list of calls) to offered tools."""
    body = text.strip()
    fenced = _FENCE_RE.match(body)
    body = fenced.group(1).strip() if fenced else body
    if not body.startswith(("{", "[")):
        return []
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return []
    items = obj if isinstance(obj, list) else [obj]
    if not items or not all(isinstance(i, dict) and i.get("name") in names for i in items):
        return []
    calls = [_call_of(i) for i in items]
    return [c for c in calls if c is not None] if None not in calls else []


def openai_tool_call(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    """A call in OpenAI's ``tool_calls`` format."""
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
    }
    if index is not None:
        out["index"] = index
    return out
