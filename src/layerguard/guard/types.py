"""Guard value types: the exchange a ring inspects and the verdict it returns.

Scores are defined once for every ring: a float in [0, 1] where higher means more
harmful. A decision is one of ``allow | block | escalate | rewrite``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

Decision = Literal["allow", "block", "escalate", "rewrite"]
# When a ring runs: on the request (input), on the whole turn after the input rings and
# with their scores (turn), on the model's answer (answer), on each proposed tool call.
Stage = Literal["input", "turn", "answer", "tool_call"]
STAGES: tuple[Stage, ...] = ("input", "turn", "answer", "tool_call")
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

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    messages: list[Message]
    tool_calls: list[ToolCall] = Field(default_factory=list)
    response: str | None = None
    api_key: str | None = None
    conversation_id: str | None = None
    activations: dict[str, Any] | None = None
    # texts added by earlier rings (e.g. the decode ring's plaintext of a base64 payload)
    derived_texts: list[str] = Field(default_factory=list)
    request_id: str | None = None
    # the tools the client offered (OpenAI ``tools`` entries) and its ``tool_choice``
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: Any = None
    # filled by the pipeline for turn-stage rings: the input rings' scores and combined decision
    turn_scores: dict[str, float] = Field(default_factory=dict)
    turn_decision: Decision | None = None
    # a backend's prefill (KV cache, last logits), kept between the input check and generation
    prefill: Any = Field(default=None, exclude=True, repr=False)

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


# A ring that runs the model itself (no served activations) reads at most this many characters
# of each message, keeping each message's end (where the instruction ends): work stays bounded
# whatever a caller sends. Serving bounds prompts before the prefill instead.
RING_PASS_MAX_CHARS = 8_000


def bounded_messages(exchange: Exchange, max_chars: int = RING_PASS_MAX_CHARS) -> list[dict[str, str]]:
    """The exchange's messages as chat dicts, each cut to its last ``max_chars`` characters."""
    return [{"role": m.role, "content": m.content[-max_chars:] if m.content else ""} for m in exchange.messages]


def role_texts(exchange: Exchange) -> list[tuple[str, str]]:
    """Every text of an exchange that a text ring reads, with where it came from: ``(source, text)``.

    The last user message comes first (source ``user``), then its decoded variants
    (``decoded``), then every other message from the newest back, labelled with its role or
    provenance (``system``, ``assistant``, ``user``, a tool result as ``tool:<name>``), each
    ``name`` field (``<role>.name``) and the tool calls an assistant turn carries
    (``assistant.tool_calls``). Blank texts are left out; the last user message is always
    first (``''`` when there is none) so that ``texts[0]`` keeps its old meaning.
    """
    import json

    last = max((i for i, m in enumerate(exchange.messages) if m.role == "user"), default=None)
    out: list[tuple[str, str]] = [("user", exchange.messages[last].content if last is not None else "")]
    out += [("decoded", t) for t in exchange.derived_texts]
    for i in range(len(exchange.messages) - 1, -1, -1):
        m = exchange.messages[i]
        label: str = m.provenance if m.provenance and m.provenance != m.role else m.role
        if m.role == "tool":
            label = f"tool:{m.name or m.tool_call_id or 'result'}"
        if i != last and m.content.strip():
            out.append((label, m.content))
        if m.name and m.name.strip():
            out.append((f"{m.role}.name", m.name))
        calls = getattr(m, "tool_calls", None)
        if calls:
            out.append((f"{m.role}.tool_calls", json.dumps(calls, ensure_ascii=False)[:RING_PASS_MAX_CHARS]))
    return out


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


class SecondOpinion(BaseModel):
    """A cascade step: ``ring``'s block or rewrite stands only if ``by`` does not call the request harmless.

    When ``by``'s score on the same request is under ``below`` (it reads the request as
    confidently harmless), ``ring``'s decision is overruled to ``allow``; the overruled
    verdict keeps its score and says why in ``details["overruled"]``. Scores from ``below``
    up to ``by``'s own threshold are the uncertain band where ``ring`` decides. ``guard build``
    sets ``below`` to the latent ring's out-of-fold score at a looser false-positive rate.
    """

    model_config = ConfigDict(extra="forbid")

    ring: str
    by: str
    below: float = Field(ge=0.0, le=1.0)
    note: str = ""


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
    """A guard ring: one method, ``check``, and two declarations.

    Attributes:
        name: Stable name used in configs, verdicts and reports (its registry name).
        stage: When it runs (see :data:`Stage`).
        reads: The served model's states it reads, as stable read names
            (``blocks.{l}.resid_pre@t_inst``, ``...@response``; see
            :func:`layerguard.activations.hooks.read_name`). Empty for text rings; a ring
            that reads states is unavailable with a text-only (upstream) backend.
    """

    name: str
    stage: Stage
    reads: tuple[str, ...]

    def check(self, exchange: Exchange) -> RingVerdict:
        """Judge an exchange; must not raise on any well-formed exchange."""
        ...
