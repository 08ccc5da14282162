"""OpenAI-format response bodies: completions, server-sent-event chunks and token usage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from layerguard.guard.types import Message
from layerguard.service.schemas import ChatRequest, dumps

DONE = b"data: [DONE]\n\n"


def token_usage(reported: dict[str, int], messages: list[Message], text: str) -> dict[str, int]:
    """Token usage: the backend's, else an estimate (4 characters a token)."""
    prompt = reported.get("prompt_tokens")
    completion = reported.get("completion_tokens")
    if prompt is None:
        prompt = sum(len(m.content) for m in messages) // 4 + len(messages)
    if completion is None:
        completion = (len(text) + 3) // 4
    return {
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "total_tokens": int(prompt + completion),
    }


def audit_detail(ext: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a response's ``layerguard`` extension kept in its audit row."""
    keys = ("tool_calls", "halted_by", "monitor_score", "escalation_override", "escalation_id")
    d = {k: ext[k] for k in keys if k in ext}
    return d or None


def completion_body(
    request_id: str,
    model: str,
    text: str,
    tool_calls: list[dict[str, Any]],
    finish: str,
    usage: dict[str, int],
    ext: dict[str, Any],
) -> dict[str, Any]:
    """A ``chat.completion`` object (content is ``null`` when only tool calls are returned)."""
    message: dict[str, Any] = {"role": "assistant", "content": text if (text or not tool_calls) else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
        "layerguard": ext,
    }


class SseWriter:
    """The ``chat.completion.chunk`` events of one streamed completion.

    Args:
        request_id: The request id (the completion id is ``chatcmpl-<request_id>``).
        model: The model name echoed in every chunk.
    """

    def __init__(self, request_id: str, model: str) -> None:
        self.base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model}  # fmt: skip

    def event(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        """A chunk with one choice carrying ``delta`` (and ``extra`` top-level fields)."""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return data({**self.base, "choices": [choice], **extra})

    def usage(self, usage: dict[str, int]) -> bytes:
        """The final usage chunk (no choices) sent when ``stream_options.include_usage`` is set."""
        return data({**self.base, "choices": [], "usage": usage})


def data(obj: Any) -> bytes:
    """One SSE ``data:`` event holding ``obj`` as JSON."""
    return f"data: {dumps(obj)}\n\n".encode()


def wants_usage(req: ChatRequest) -> bool:
    """Whether a streamed request asked for a usage chunk."""
    return req.stream_options is not None and req.stream_options.include_usage


def sse_single(
    request_id: str, req: ChatRequest, text: str, finish: str, usage: dict[str, int], ext: dict[str, Any]
) -> Iterator[bytes]:
    """A whole (declined) answer as an SSE stream."""
    sse = SseWriter(request_id, req.model)
    yield sse.event({"role": "assistant", "content": ""})
    yield sse.event({"content": text})
    yield sse.event({}, finish, layerguard=ext)
    if wants_usage(req):
        yield sse.usage(usage)
    yield DONE
