"""Guard value types: the exchange a ring inspects and the verdict it returns.

Scores are defined once for every ring: a float in [0, 1] where higher means more
harmful. A decision is one of ``allow | block | escalate | rewrite``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

Decision = Literal["allow", "block", "escalate", "rewrite"]
DECISIONS: tuple[Decision, ...] = ("allow", "block", "escalate", "rewrite")
# Severity order used when several rings disagree: the most severe decision wins.
SEVERITY: dict[str, int] = {"allow": 0, "rewrite": 1, "escalate": 2, "block": 3}

Provenance = Literal["user", "system", "assistant", "tool", "retrieved"]


class Message(BaseModel):
    """One chat message. ``provenance`` says where its content came from (tool output, retrieval...)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    provenance: Provenance | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def source(self) -> str:
        """Where the content came from: the explicit provenance, else the role."""
        return self.provenance or self.role


class ToolCall(BaseModel):
    """A tool call proposed by the model: a name and JSON arguments."""

    id: str = ""
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Exchange(BaseModel):
    """What a ring inspects: the conversation, proposed tool calls, an optional response.

    When the backend is a local model, ``activations`` holds the residual stream of the
    forward pass that served the request (hook name -> ``[d_model]`` at ``t_inst`` etc.),
    so latent rings add no forward pass of their own.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: list[Message]
    tool_calls: list[ToolCall] = Field(default_factory=list)
    response: str | None = None
    api_key: str | None = None
    conversation_id: str | None = None
    activations: dict[str, Any] | None = None
    # texts added by earlier rings (e.g. the decode ring's plaintext of a base64 payload)
    derived_texts: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_prompt(cls, prompt: str, **kwargs: Any) -> Exchange:
        """An exchange holding one user message."""
        return cls(messages=[Message(role="user", content=prompt)], **kwargs)

    @property
    def last_user(self) -> str:
        """Content of the last user message ('' if none)."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""

    def texts(self) -> list[str]:
        """The last user message and every decoded variant of it, for text rings."""
        return [self.last_user, *self.derived_texts]


class RingVerdict(BaseModel):
    """One ring's judgement of an exchange."""

    ring: str
    score: float = Field(ge=0.0, le=1.0)
    decision: Decision = "allow"
    category: str | None = None
    category_scores: dict[str, float] = Field(default_factory=dict)
    latency_ms: float = 0.0
    explanation: str = ""
    rewrite: str | None = None  # replacement text when decision == "rewrite"
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("score")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v:  # NaN
            raise ValueError("score must be a number in [0, 1], got NaN")
        return v


class GuardVerdict(BaseModel):
    """The pipeline's combined verdict: the most severe decision, every ring's verdict."""

    decision: Decision
    score: float = Field(ge=0.0, le=1.0)
    category: str | None = None
    rings: list[RingVerdict]
    stopped_at: str | None = None  # the ring that stopped the pipeline early, if any
    unavailable: list[str] = Field(default_factory=list)  # rings that could not run on this backend
    latency_ms: float = 0.0
    rewrite: str | None = None

    @property
    def ring_scores(self) -> dict[str, float]:
        """Ring name -> score."""
        return {v.ring: v.score for v in self.rings}


@runtime_checkable
class Ring(Protocol):
    """A guard ring: one method, ``check``.

    Attributes:
        name: Stable name used in configs, verdicts and reports.
        needs_activations: True for rings that read the served model's hidden states
            (unavailable with an upstream text-only backend).
    """

    name: str
    needs_activations: bool

    def check(self, exchange: Exchange) -> RingVerdict:
        """Judge an exchange; must not raise on any well-formed exchange."""
        ...
