"""Backends that serve a guarded model: the protocol the service talks to.

A backend turns an :class:`Exchange` into generated text. The local backend runs the
model in-process: its prefill pass records the activations the latent ring reads (so the
guard adds no forward pass), and its decoding loop lets an output monitor halt
generation token by token. An upstream backend forwards to any OpenAI-compatible URL and
can only feed text rings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from layerguard.guard.types import Exchange

FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


@dataclass
class Chunk:
    """A piece of generated text; the last chunk carries ``finish_reason``."""

    text: str
    finish_reason: FinishReason | None = None
    # set on the last chunk when an output monitor halted generation
    halted_by: str | None = None
    monitor_score: float | None = None
    usage: dict[str, int] = field(default_factory=dict)


@dataclass
class GenerationParams:
    """Sampling parameters of one request."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    # a unit [d_model] direction projected out of the residual stream for this request only
    # (the guard's "release" of a benign request the model would refuse); local backends only
    ablate: Any = None


class StreamMonitor(Protocol):
    """What an answer ring gives a local backend to halt generation token by token.

    Attributes:
        layer: The layer whose ``resid_pre`` state of each new token it reads.
        threshold: A running score at or above this halts generation.
        min_tokens: No halt before this many tokens.
    """

    layer: int
    threshold: float
    min_tokens: int

    def start(self) -> Any:
        """A fresh running state for one answer."""
        ...

    def update(self, state: Any, hidden: Any) -> float:
        """Feed one token's state ``[d_model]``; return the running score in [0, 1]."""
        ...


@runtime_checkable
class Backend(Protocol):
    """What the service needs from a model backend.

    Attributes:
        model_name: The name clients pass as ``model``.
        text_only: True when hidden states are not available (upstream backends).
    """

    model_name: str
    text_only: bool

    def prepare(self, exchange: Exchange) -> None:
        """Run what must precede the input guard; local backends fill ``exchange.activations``."""
        ...

    def stream(self, exchange: Exchange, params: GenerationParams) -> Iterator[Chunk]:
        """Generate the assistant's reply to ``exchange`` as chunks (reusing any prefill)."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts for /healthz and /readyz (model id, device, rings available)."""
        ...
