"""Difference-in-means extraction of harmfulness and refusal directions at every layer.

- harmfulness: read at ``t_inst`` (the instruction's last token), harmful minus harmless;
- refusal: read at the post-instruction tokens (template tokens before the answer),
  harmful minus harmless, or refused minus complied by the model's own behaviour.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from layerguard.activations.capture import capture_activations
from layerguard.activations.store import ActivationSet
from layerguard.data.heldout import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.directions.direction import Direction
from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel

PromptLike = Sample | str


def _conversation(x: PromptLike) -> Any:
    return x.conversation() if isinstance(x, Sample) else x


def data_hash(*groups: Sequence[PromptLike]) -> str:
    """sha256 over the prompts of each group, in order (recorded with every direction)."""
    h = hashlib.sha256()
    for g in groups:
        h.update(json.dumps([_conversation(x) for x in g], sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()


def check_contrast(positive: Sequence[Any], negative: Sequence[Any], names: tuple[str, str]) -> None:
    """Raise a clear error for an empty or one-sided contrast set."""
    for group, name in zip((positive, negative), names, strict=True):
        if len(group) == 0:
            raise InvalidInputError(
                f"the {name} side of the contrast set is empty",
                hint="a difference in means needs prompts on both sides (at least 2 each; 100+ recommended)",
            )
        if len(group) < 2:
            raise InvalidInputError(f"the {name} side has a single prompt", hint="give at least 2 prompts per side")


def diff_in_means(positive: Any, negative: Any) -> Any:
    """Mean of ``positive`` minus mean of ``negative`` over the first axis."""
    return positive.float().mean(0) - negative.float().mean(0)


def stack_layers(acts: ActivationSet, position: str, n_layers: int) -> Any:
    """``[n_prompts, n_layers, d_model]`` at one position label from a resid_pre capture."""
    import torch

    return torch.stack([acts.at(f"blocks.{layer}.resid_pre", position) for layer in range(n_layers)], dim=1)


def capture_contrast(
    lm: LoadedModel,
    positive: Sequence[PromptLike],
    negative: Sequence[PromptLike],
    *,
    positions: Sequence[str] = ("t_inst", "post_inst"),
    batch_size: int = 8,
    progress: bool | None = None,
    names: tuple[str, str] = ("harmful", "harmless"),
) -> tuple[ActivationSet, ActivationSet]:
    """Capture resid_pre at all layers at the given positions for both sides."""
    check_contrast(positive, negative, names)
    kw: dict[str, Any] = {"positions": list(positions), "batch_size": batch_size, "progress": progress}
    pos = capture_activations(lm, [_conversation(x) for x in positive], **kw)
    neg = capture_activations(lm, [_conversation(x) for x in negative], **kw)
    assert isinstance(pos, ActivationSet) and isinstance(neg, ActivationSet)
    return pos, neg


def directions_from_acts(
    lm: LoadedModel,
    pos: ActivationSet,
    neg: ActivationSet,
    *,
    harmfulness_position: str = "t_inst",
    meta: dict[str, Any] | None = None,
) -> dict[str, Direction]:
    """Build the harmfulness direction and one refusal candidate per post-instruction token.

    Keys: ``harmfulness`` and ``refusal@post_inst[k]`` for every captured post-inst column.
    """
    base_meta = {"command": " ".join(sys.argv), "n_positive": len(pos), "n_negative": len(neg), **(meta or {})}

    def make(role: str, position: str) -> Direction:
        vec = diff_in_means(stack_layers(pos, position, lm.n_layers), stack_layers(neg, position, lm.n_layers))
        return Direction(
            vectors=vec,
            role=role,
            position=position,
            model_id=lm.model_id,
            weights_sha256=lm.weights_sha256,
            template_sha256=lm.template_hash,
            meta=dict(base_meta),
        )

    out: dict[str, Direction] = {}
    if harmfulness_position in pos.positions:
        out["harmfulness"] = make("harmfulness", harmfulness_position)
    for label in pos.positions:
        if label.startswith("post_inst"):
            out[f"refusal@{label}"] = make("refusal", label)
    if not out:
        raise InvalidInputError("no t_inst or post_inst positions were captured", hint="capture t_inst,post_inst")
    return out


def extract_directions(
    lm: LoadedModel,
    harmful: Sequence[PromptLike],
    harmless: Sequence[PromptLike],
    *,
    batch_size: int = 8,
    progress: bool | None = None,
) -> dict[str, Direction]:
    """Harmfulness (at t_inst) and refusal candidates (at each post-instruction token).

    Args:
        lm: The model.
        harmful: Prompts that should be refused.
        harmless: Matched harmless prompts (same form, length and topic spread).
        batch_size: Prompts per forward pass.
        progress: Show progress bars.

    Raises:
        InvalidInputError: on an empty or one-sided contrast set, or held-out evaluation
            prompts (by label or by text: :func:`layerguard.data.heldout.assert_not_held_out`).
    """
    assert_not_held_out([*harmful, *harmless], "extracting directions")
    pos, neg = capture_contrast(lm, harmful, harmless, batch_size=batch_size, progress=progress)
    return directions_from_acts(lm, pos, neg, meta={"data_sha256": data_hash(harmful, harmless)})


def extract_behavioural_refusal(
    lm: LoadedModel,
    refused: Sequence[PromptLike],
    complied: Sequence[PromptLike],
    *,
    position: str = "post_inst[-1]",
    batch_size: int = 8,
    progress: bool | None = None,
) -> Direction:
    """Refusal direction from the model's own behaviour: refused minus complied prompts.

    Raises:
        InvalidInputError: on an empty or one-sided contrast set, or held-out evaluation prompts.
    """
    assert_not_held_out([*refused, *complied], "extracting a behavioural refusal direction")
    pos, neg = capture_contrast(
        lm,
        refused,
        complied,
        positions=[position],
        batch_size=batch_size,
        progress=progress,
        names=("refused", "complied"),
    )
    vec = diff_in_means(stack_layers(pos, position, lm.n_layers), stack_layers(neg, position, lm.n_layers))
    return Direction(
        vectors=vec,
        role="refusal_behavioural",
        position=position,
        model_id=lm.model_id,
        weights_sha256=lm.weights_sha256,
        template_sha256=lm.template_hash,
        meta={"data_sha256": data_hash(refused, complied), "n_positive": len(pos), "n_negative": len(neg)},
    )
