"""The built-in rings, registered by name: how each is built from ``guard.yaml``.

Every factory receives the ring's ``params`` from ``guard.yaml``, the directory holding the
guard's artefacts and the served model (None with a text-only backend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.guard.registry import register_ring
from layerguard.guard.types import Ring


def _needs_model(lm: Any, ring: str) -> None:
    if lm is None:
        raise InvalidInputError(f"the {ring} ring needs the local model", hint="serve with the local backend")


@register_ring("decode", stage="input")
def decode(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """Decodes obfuscated input (base64, hex, ciphers, invisible characters) for the rings after it."""
    from layerguard.guard.rings.decode import DecodeRing

    return DecodeRing(**params)


@register_ring("latent", stage="input", reads_states=True)
def latent(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """Reads the served model's harmfulness representation at the last instruction token."""
    from layerguard.guard.rings.latent import LatentGuardModel, LatentRing

    return LatentRing(LatentGuardModel.load(base / params.get("path", "latent")), lm=lm)


@register_ring("tool_gate", stage="tool_call")
def tool_gate(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """Deterministic policy on proposed tool calls: allow-lists, argument schemas, provenance."""
    from layerguard.guard.rings.tool_gate import ToolGateRing, ToolPolicy

    if "policy" not in params:
        raise InvalidInputError("tool_gate ring: params.policy is missing", hint="policy: path/to/tool_policy.yaml")
    policy = Path(params["policy"])
    return ToolGateRing(ToolPolicy.from_yaml(policy if policy.is_absolute() else base / policy))


@register_ring("output_monitor", stage="answer", reads_states=True)
def output_monitor(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """A probe on the answer tokens' states that halts a harmful answer while it streams."""
    from layerguard.guard.rings.output_monitor import OutputMonitor, OutputMonitorRing

    _needs_model(lm, "output_monitor")
    return OutputMonitorRing(OutputMonitor.load(base / params.get("path", "output_monitor")), lm)


@register_ring("classifier", stage="input")
def classifier(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """Constitutional classifier: sentence embeddings of the (decoded) text against the constitution."""
    from layerguard.guard.rings.classifier import ClassifierModel, ClassifierRing, Constitution

    return ClassifierRing(
        ClassifierModel.load(base / params.get("path", "classifier")), Constitution.load(params.get("constitution"))
    )


@register_ring("refusal_cliff", stage="answer", reads_states=True)
def refusal_cliff(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """Flags an answer whose refusal intention fell sharply from its peak (the refusal cliff)."""
    from layerguard.guard.rings.refusal_cliff import RefusalCliffRing, RefusalCliffSignal

    _needs_model(lm, "refusal_cliff")
    return RefusalCliffRing(RefusalCliffSignal.load(base / params.get("path", "refusal_cliff")), lm)


@register_ring("conversation", stage="turn")
def conversation(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """Accumulates risk over a conversation (Crescendo) and blocks keys that burst blocked attempts."""
    from layerguard.guard.rings.conversation import ConversationRing

    try:
        return ConversationRing(**params)  # in-memory state; the service passes its SQL store
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"conversation ring: {exc}",
            hint="params: decay, floor, escalate_at, score_rings, burst_blocks, burst_window_s, cooldown_s, ttl_s",
        ) from None


@register_ring("keyword", stage="input")
def keyword(params: dict[str, Any], base: Path, lm: Any) -> Ring:
    """A keyword filter: the baseline every learnt ring is compared with."""
    from layerguard.guard.rings.keyword import KeywordRing

    return KeywordRing(**params)
