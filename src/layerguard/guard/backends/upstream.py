"""A backend that forwards to any OpenAI-compatible ``/chat/completions`` URL.

Hidden states are not available (``text_only = True``): the guard is loaded with
``text_only=True`` and its latent rings are listed as unavailable in every verdict.
Tool calls the upstream returns in OpenAI's structured form are turned back into Qwen-format
``<tool_call>{...}</tool_call>`` text, so the service parses and gates them like a local
model's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from layerguard.errors import LayerguardError
from layerguard.guard.backend import Chunk, FinishReason, GenerationParams
from layerguard.guard.types import Exchange


class UpstreamError(LayerguardError):
    """The upstream answered with an error, or not at all."""


def _safe_url(url: str) -> str:
    """The URL without user:password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class UpstreamBackend:
    """Forward chat requests to an OpenAI-compatible server.

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:8001/v1`` (``/chat/completions`` is appended).
        model: Model name sent upstream; also the name clients use unless ``served_name`` is given.
        api_key: Bearer key for the upstream (None: no Authorization header).
        served_name: Model name clients pass to this service.
        timeout_s: Read timeout of one upstream response (connect timeout: 10 s).
        transport: Optional httpx transport (tests).
    """

    text_only = True

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        served_name: str | None = None,
        timeout_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamError(f"upstream URL {url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8001/v1")
        self.url = url.rstrip("/")
        self.upstream_model = model
        self.model_name = served_name or model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            transport=transport,
        )

    def info(self) -> dict[str, Any]:
        """Where requests go."""
        return {"backend": "upstream", "url": _safe_url(self.url), "model": self.upstream_model, "text_only": True}

    def ready(self) -> bool:
        """True when the upstream answers ``GET /models`` without a server error."""
        try:
            r = self._client.get(f"{self.url}/models", timeout=3.0)
            return r.status_code < 500
        except httpx.HTTPError:
            return False

    def prepare(self, exchange: Exchange) -> None:
        """Nothing to do: an upstream exposes no hidden states."""

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _payload(self, exchange: Exchange, params: GenerationParams) -> dict[str, Any]:
        messages = []
        for m in exchange.messages:
            msg: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.name:
                msg["name"] = m.name
            if m.tool_call_id:
                msg["tool_call_id"] = m.tool_call_id
            extra = m.model_extra or {}
            if extra.get("tool_calls"):
                msg["tool_calls"] = extra["tool_calls"]
                if not m.content:
                    msg["content"] = None
            messages.append(msg)
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = params.stop
        tools = exchange.tools
        if tools:
            body["tools"] = tools
            if exchange.tool_choice is not None:
                body["tool_choice"] = exchange.tool_choice
        return body

    def stream(self, exchange: Exchange, params: GenerationParams) -> Iterator[Chunk]:
        """Stream the upstream's answer as chunks; its tool calls come last, as ``<tool_call>`` text.

        Raises:
            UpstreamError: connection failure, an error status, or an error event in the stream.
        """
        calls: dict[int, dict[str, Any]] = {}
        finish: FinishReason = "stop"
        usage: dict[str, int] = {}
        try:
            with self._client.stream("POST", f"{self.url}/chat/completions", json=self._payload(exchange, params)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise UpstreamError(f"upstream {_safe_url(self.url)} answered {r.status_code}: {_err(r.text)}")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        obj = json.loads(data)
                    except json.JSONDecodeError:
                        raise UpstreamError(f"upstream sent a malformed event: {data[:200]!r}") from None
                    if "error" in obj:
                        raise UpstreamError(f"upstream error: {_err(json.dumps(obj))}")
                    if isinstance(obj.get("usage"), dict):
                        usage = {k: int(v) for k, v in obj["usage"].items() if isinstance(v, int)}
                    for choice in obj.get("choices") or []:
                        delta = choice.get("delta") or {}
                        for tc in delta.get("tool_calls") or []:
                            slot = calls.setdefault(int(tc.get("index", 0)), {"name": "", "arguments": ""})
                            fn = tc.get("function") or {}
                            slot["name"] += fn.get("name") or ""
                            slot["arguments"] += fn.get("arguments") or ""
                        if delta.get("content"):
                            yield Chunk(str(delta["content"]))
                        fr = choice.get("finish_reason")
                        if fr in ("length", "content_filter"):
                            finish = fr
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream {_safe_url(self.url)} failed: {type(exc).__name__}: {exc}") from None
        for i in sorted(calls):
            c = calls[i]
            try:
                args: Any = json.loads(c["arguments"]) if c["arguments"].strip() else {}
            except json.JSONDecodeError:
                args = c["arguments"]
            yield Chunk("<tool_call>" + json.dumps({"name": c["name"], "arguments": args}) + "</tool_call>")
        yield Chunk("", finish_reason=finish, usage=usage)


def _err(text: str) -> str:
    try:
        obj = json.loads(text)
        msg = obj.get("error", {}).get("message") if isinstance(obj, dict) else None
        if msg:
            return str(msg)[:300]
    except (json.JSONDecodeError, AttributeError):
        pass
    return text[:300]
