"""Selecting the refusal direction among (layer, position) candidates (Arditi et al. 2024).

For each candidate, three numbers on validation prompts, all without generation:
- bypass: mean refusal log-odds on harmful prompts with the direction ablated everywhere
  (lower is better: the direction is necessary for refusal);
- induce: mean refusal log-odds on harmless prompts with the direction added at its layer
  (higher is better: the direction is sufficient for refusal);
- KL: mean KL divergence of the next-token distribution on harmless prompts under
  ablation (small: ablation leaves harmless behaviour alone).
Candidates past a layer cap, with induce <= 0 or KL above a bound are filtered out; the
lowest bypass among the rest wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from layerguard.activations.interventions import ablate_direction, add_vector
from layerguard.data.heldout import assert_not_held_out
from layerguard.directions.direction import Direction
from layerguard.directions.refusal import RefusalTokens, log_odds
from layerguard.errors import InvalidInputError
from layerguard.models.generate import last_logits
from layerguard.models.handle import LoadedModel
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar


@dataclass
class Candidate:
    """Scores of one (position, layer) candidate."""

    position: str
    layer: int
    bypass: float
    induce: float
    kl: float
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Selection:
    """The chosen direction, every candidate's scores, the baselines and why."""

    direction: Direction
    candidates: list[Candidate]
    baseline: dict[str, float]
    explanation: str


def kl_rows(p_logits: Any, q_logits: Any) -> Any:
    """KL(p || q) per row for logits ``[n, vocab]``."""
    import torch

    lp = torch.log_softmax(p_logits.float(), -1)
    lq = torch.log_softmax(q_logits.float(), -1)
    return (lp.exp() * (lp - lq)).sum(-1)


def _check_selection_inputs(
    lm: LoadedModel,
    candidates: dict[str, Direction],
    harmful_val: Sequence[ConversationLike],
    harmless_val: Sequence[ConversationLike],
    layers: Sequence[int] | None,
    max_layer_frac: float,
) -> tuple[dict[str, Direction], list[int]]:
    """The refusal candidates and the layers to try; raises on held-out or malformed inputs."""
    assert_not_held_out([*harmful_val, *harmless_val], "selecting a refusal direction")
    refusal = {k: d for k, d in candidates.items() if d.role == "refusal"}
    if not refusal:
        raise InvalidInputError("no refusal candidates to select from", hint="run extraction at post_inst positions")
    if not harmful_val or not harmless_val:
        raise InvalidInputError("selection needs harmful and harmless validation prompts")
    chosen = list(range(int(max_layer_frac * lm.n_layers))) if layers is None else list(layers)
    for layer in chosen:
        if not 0 <= layer < lm.n_layers:
            raise InvalidInputError(f"layer {layer} is out of range", hint=f"use 0..{lm.n_layers - 1}")
    return refusal, chosen


def select_refusal_direction(
    lm: LoadedModel,
    candidates: dict[str, Direction],
    harmful_val: Sequence[ConversationLike],
    harmless_val: Sequence[ConversationLike],
    tokens: RefusalTokens,
    *,
    layers: Sequence[int] | None = None,
    max_layer_frac: float = 0.8,
    kl_max: float = 0.1,
    batch_size: int = 8,
    progress: bool | None = None,
) -> Selection:
    """Score every refusal candidate at every layer below the cap and choose one.

    Args:
        lm: The model.
        candidates: ``refusal@<position>`` directions from :func:`extract_directions`.
        harmful_val: Held-in validation prompts the model refuses (bypass score).
        harmless_val: Validation prompts it answers (induce score and KL).
        tokens: The model's refusal-opening tokens.
        layers: Layers to try (default: all below ``max_layer_frac * n_layers``).
        max_layer_frac: Layer cap as a fraction of depth (late layers act on tokens, not concepts).
        kl_max: Largest mean KL on harmless prompts under ablation that passes.
        batch_size: Prompts per forward pass.
        progress: Show a progress bar.

    Raises:
        InvalidInputError: no candidates, empty validation sets, layers out of range, or
            held-out evaluation prompts (:func:`layerguard.data.heldout.assert_not_held_out`).
    """
    refusal, layers = _check_selection_inputs(lm, candidates, harmful_val, harmless_val, layers, max_layer_frac)
    cap = int(max_layer_frac * lm.n_layers)

    def scores(prompts: Sequence[ConversationLike]) -> tuple[Any, Any]:
        logits = last_logits(lm, prompts, batch_size=batch_size)
        return logits, log_odds(logits, tokens.ids)

    _, base_harmful = scores(harmful_val)
    base_logits, base_harmless = scores(harmless_val)
    baseline = {"harmful": float(base_harmful.mean()), "harmless": float(base_harmless.mean())}

    results: list[Candidate] = []
    total = len(refusal) * len(layers)
    with progress_bar(total=total, desc="selecting", unit="cand", enabled=progress) as bar:
        for direction in refusal.values():
            for layer in layers:
                v = direction.at(layer)
                with ablate_direction(lm, v):
                    _, bypass = scores(harmful_val)
                    abl_logits, _ = scores(harmless_val)
                with add_vector(lm, v, layer):
                    _, induce = scores(harmless_val)
                kl = float(kl_rows(base_logits, abl_logits).mean())
                reasons = []
                if layer >= cap:
                    reasons.append(f"layer >= cap {cap}")
                if float(induce.mean()) <= 0:
                    reasons.append("induce <= 0")
                if kl > kl_max:
                    reasons.append(f"KL > {kl_max}")
                results.append(
                    Candidate(
                        direction.position,
                        layer,
                        float(bypass.mean()),
                        float(induce.mean()),
                        kl,
                        not reasons,
                        "; ".join(reasons),
                    )
                )
                bar.update(1)
    passed = [c for c in results if c.passed]
    pool = passed or results
    best = min(pool, key=lambda c: c.bypass)
    chosen_key = f"refusal@{best.position}"
    explanation = (
        f"chose {best.position} at layer {best.layer}: bypass {best.bypass:.2f} "
        f"(baseline harmful {baseline['harmful']:.2f}), induce {best.induce:.2f} "
        f"(baseline harmless {baseline['harmless']:.2f}), KL {best.kl:.3f}; "
        f"{len(passed)} of {len(results)} candidates passed the filters"
        + ("" if passed else " (none passed: chose the lowest bypass regardless)")
    )
    chosen = refusal[chosen_key].with_layer(best.layer)
    chosen = Direction(
        vectors=chosen.vectors,
        role="refusal",
        position=chosen.position,
        model_id=chosen.model_id,
        weights_sha256=chosen.weights_sha256,
        template_sha256=chosen.template_sha256,
        layer=best.layer,
        meta={**chosen.meta, "selection": best.as_dict(), "baseline": baseline, "explanation": explanation},
    )
    return Selection(chosen, results, baseline, explanation)
