"""The service's HTTP vocabulary: OpenAI-style errors, JSON helpers and the request schemas.

Requests are parsed strictly (:func:`parse_body`) so a client hears which field was wrong;
unknown fields of a chat request are accepted and ignored, as OpenAI does.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from layerguard.guard.backend import GenerationParams
from layerguard.guard.types import Message
from layerguard.service.config import ServiceConfig


class ApiError(Exception):
    """An error answered as OpenAI-style JSON.

    Args:
        status: HTTP status.
        message: What was wrong (naming the field or value).
        type: OpenAI error type (``invalid_request_error``, ``authentication_error`` ...).
        code: Machine-readable code.
        param: The offending request field, if any.
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(message: str, type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error object."""
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        try:
            value = obj.tolist()
            if not isinstance(value, list) or len(value) <= 64:
                return value
        except Exception:
            pass
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(obj: Any) -> str:
    """JSON text of anything the service returns (tensors and unknown objects as strings)."""
    return json.dumps(obj, default=_json_default, ensure_ascii=False, allow_nan=False)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response that tolerates non-JSON values in verdict details."""
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


class ContentPart(BaseModel):
    """A content part; ``text`` parts (and an assistant's ``refusal`` parts) are read."""

    model_config = ConfigDict(extra="allow")

    type: StrictStr
    text: StrictStr | None = None
    refusal: StrictStr | None = None


class ChatMessageIn(BaseModel):
    """A message of an OpenAI chat request."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[ContentPart] | None = None
    name: StrictStr | None = None
    tool_call_id: StrictStr | None = None
    tool_calls: list[dict[str, Any]] | None = None


class FunctionSpec(BaseModel):
    """A function offered as a tool."""

    model_config = ConfigDict(extra="allow")

    name: StrictStr = Field(min_length=1, max_length=128)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(BaseModel):
    """An entry of ``tools``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request (unknown fields are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: StrictInt | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: StrictStr | list[StrictStr] | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=1)
    tools: list[ToolSpec] | None = None
    tool_choice: Any = None
    user: StrictStr | None = None


class GuardCheckRequest(BaseModel):
    """Body of ``/v1/guard/check``: ``messages`` or ``prompt``."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessageIn] | None = Field(default=None, min_length=1)
    prompt: StrictStr | None = None
    model: StrictStr | None = None
    conversation_id: StrictStr | None = None
    user: StrictStr | None = None

    @model_validator(mode="after")
    def _one_input(self) -> GuardCheckRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' and 'prompt'")
        return self


class ResolveRequest(BaseModel):
    """Body of ``POST /v1/escalations/{id}``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject"] | None = None
    status: Literal["approved", "rejected"] | None = None
    note: StrictStr = ""

    @model_validator(mode="after")
    def _one_action(self) -> ResolveRequest:
        if (self.action is None) == (self.status is None):
            raise ValueError("give 'action' (approve or reject)")
        return self

    @property
    def new_status(self) -> Literal["approved", "rejected"]:
        if self.status is not None:
            return self.status
        return "approved" if self.action == "approve" else "rejected"


def _validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    loc = [str(x) for x in first["loc"]]
    # drop the union-branch markers pydantic appends ("str", "list[ContentPart]" ...)
    loc = [x for x in loc if not re.fullmatch(r"[a-z]+\[.*\]|str|int|float|bool|function-after\[.*\]", x)]
    param = ".".join(loc) or None
    if first["type"] == "missing":
        return ApiError(400, f"Missing required field '{param}'", code="missing_field", param=param)
    if param is None:
        return ApiError(400, f"Invalid request: {first['msg']}", code="invalid_value")
    return ApiError(400, f"Invalid value for '{param}': {first['msg']}", code="invalid_value", param=param)


def _message_text(m: ChatMessageIn, index: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    parts = []
    for j, p in enumerate(m.content):
        text = p.text if p.type == "text" else p.refusal if p.type == "refusal" else None
        if text is None:
            raise ApiError(
                400,
                f"Invalid value for 'messages.{index}.content.{j}': only text (and refusal) content parts are "
                f"supported, got type {p.type!r}",
                code="invalid_value",
                param=f"messages.{index}.content.{j}",
            )
        parts.append(text)
    return "".join(parts)


def to_messages(messages: list[ChatMessageIn]) -> list[Message]:
    """Guard messages from OpenAI messages (``developer`` counts as ``system``)."""
    out = []
    for i, m in enumerate(messages):
        role = "system" if m.role == "developer" else m.role
        extra: dict[str, Any] = {"tool_calls": m.tool_calls} if m.tool_calls else {}
        out.append(
            Message(
                role=role,
                content=_message_text(m, i),
                name=m.name,
                tool_call_id=m.tool_call_id,
                provenance="tool" if role == "tool" else None,
                **extra,
            )
        )
    return out


def parse_body(body: bytes, schema: type[BaseModel]) -> Any:
    """Decode, parse and validate a JSON request body.

    Args:
        body: The raw body.
        schema: The pydantic model to validate against (strictly).

    Returns:
        The validated ``schema`` instance.

    Raises:
        ApiError: 400 naming the problem (encoding, JSON syntax, shape or the offending field).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"Request body is not valid UTF-8 (byte {exc.start})", code="invalid_encoding") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ApiError(400, "Request body is empty: expected a JSON object", code="invalid_json")

    def bad_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(text, parse_constant=bad_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"Malformed JSON in request body: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            code="invalid_json",
        ) from None  # fmt: skip
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Malformed JSON in request body: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"Request body must be a JSON object, got {type(data).__name__}", code="invalid_json")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ApiError(400, "Malformed JSON in request body: nested too deeply", code="invalid_json") from None
    except UnicodeEncodeError:
        raise ApiError(
            400, "Request body holds an invalid Unicode escape (a lone surrogate)", code="invalid_encoding"
        ) from None
    try:
        return schema.model_validate(data, strict=True)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def generation_params(req: ChatRequest, config: ServiceConfig) -> GenerationParams:
    """Sampling parameters of a chat request (``max_tokens`` capped by ``config.max_tokens_limit``)."""
    return GenerationParams(
        max_tokens=min(
            req.max_completion_tokens or req.max_tokens or config.max_tokens_default, config.max_tokens_limit
        ),
        temperature=req.temperature if req.temperature is not None else GenerationParams.temperature,
        top_p=req.top_p if req.top_p is not None else GenerationParams.top_p,
        seed=req.seed,
        stop=[req.stop] if isinstance(req.stop, str) else list(req.stop or []),
    )
