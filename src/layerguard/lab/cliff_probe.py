"""The refusal-intention probe: labelling by the model's own refusals, layer choice, fitting, per-token curves.

The probe is logistic regression on the residual stream at one layer at the
post-instruction (template) positions; the layer is chosen by AUROC on an inner holdout
of the training prompts. :func:`calibrate_signal` turns it into the guard's
:class:`~layerguard.guard.rings.refusal_cliff.RefusalCliffSignal`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.refusal_cliff import RefusalCliffSignal, prompt_response_states
from layerguard.lab.cliff_detect import CurveRecord
from layerguard.stats import auroc


@dataclass
class CliffProbe:
    """The refusal-intention probe, its layer and how it was chosen."""

    layer: int
    probe: LogisticProbe
    meta: dict[str, Any] = field(default_factory=dict)


def fit_cliff_probe(
    states: Any, labels: Sequence[bool], layers: Sequence[int], *, seed: int = 0, holdout: float = 0.3
) -> CliffProbe:
    """Choose the layer on an inner holdout, then fit on all prompts.

    Args:
        states: ``[n_prompts, n_layers_given, n_positions, d]`` post-instruction states.
        labels: Whether the model refused each prompt.
        layers: The layer index of each entry of ``states``' second axis.
        seed: Seed of the inner split (stratified by label).
        holdout: Share of each class held out to score layers.

    Raises:
        InvalidInputError: fewer than 4 prompts of either class.
    """
    import torch

    pos = [i for i, y in enumerate(labels) if y]
    neg = [i for i, y in enumerate(labels) if not y]
    if len(pos) < 4 or len(neg) < 4:
        raise InvalidInputError(
            f"the refusal probe needs >= 4 refused and >= 4 answered prompts; got {len(pos)} and {len(neg)}",
            hint="use more (or more clearly harmful) training prompts: this model refuses few of them",
        )
    rng = random.Random(seed)
    rng.shuffle(pos)
    rng.shuffle(neg)
    k_pos, k_neg = max(2, int(holdout * len(pos))), max(2, int(holdout * len(neg)))
    held, fit = pos[:k_pos] + neg[:k_neg], pos[k_pos:] + neg[k_neg:]
    y = torch.tensor([float(v) for v in labels])
    n_pos_tok = states.shape[2]

    def rows(ix: list[int], j: int) -> tuple[Any, Any]:
        x = states[ix, j].reshape(len(ix) * n_pos_tok, -1)
        return x, y[ix].repeat_interleave(n_pos_tok)

    per_layer: dict[int, float] = {}
    for j, layer in enumerate(layers):
        probe = LogisticProbe.fit(*rows(fit, j))
        # a prompt's score: mean intention over its post-instruction tokens
        s = probe.predict(states[held, j].reshape(len(held) * n_pos_tok, -1)).reshape(len(held), n_pos_tok).mean(1)
        scores = dict(zip(held, s.tolist(), strict=True))
        per_layer[layer] = auroc([scores[i] for i in held if labels[i]], [scores[i] for i in held if not labels[i]])
    best = max(layers, key=lambda ly: per_layer[ly])
    j = list(layers).index(best)
    probe = LogisticProbe.fit(*rows(list(range(len(labels))), j))
    meta = {
        "layer_auroc_inner_holdout": per_layer,
        "layer": best,
        "n_refused": len(pos),
        "n_answered": len(neg),
        "n_positions": n_pos_tok,
        "inner_holdout": {"refused": k_pos, "answered": k_neg},
        "seed": seed,
    }
    return CliffProbe(best, probe, meta)


def post_inst_states(lm: Any, conversations: Sequence[Any], layers: Sequence[int], batch_size: int = 8) -> Any:
    """``[n, len(layers), n_post_inst, d]`` residual stream at the post-instruction tokens."""
    import torch

    from layerguard.activations.capture import capture_activations
    from layerguard.activations.store import ActivationSet

    acts = capture_activations(
        lm, list(conversations), layers=list(layers), positions=["post_inst"], batch_size=batch_size, progress=False
    )
    assert isinstance(acts, ActivationSet)
    return torch.stack([acts[f"blocks.{ly}.resid_pre"] for ly in layers], dim=1).float()


def train_cliff_probe(
    lm: Any,
    harmful: Sequence[Sample],
    harmless: Sequence[Sample],
    *,
    layers: Sequence[int] | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    seed: int = 0,
    answers: Sequence[str] | None = None,
) -> tuple[CliffProbe, list[str]]:
    """Answer the training prompts, label them by refusal and fit the probe.

    Args:
        lm: The model.
        harmful: Harmful training prompts (most refusals come from here).
        harmless: Harmless training prompts.
        layers: Candidate layers (default: 25%..85% of depth); one layer fixes the choice.
        max_new_tokens: Answer length used for judging.
        batch_size: Prompts per batch.
        seed: Seed of the inner holdout split.
        answers: Pre-generated answers for ``harmful + harmless`` (skips generation).

    Returns:
        The probe and the answers (in ``harmful + harmless`` order).

    Raises:
        InvalidInputError: held-out samples, or too few refusals / answers to fit.
    """
    from layerguard.data.loaders import assert_not_held_out
    from layerguard.judges import is_refusal as is_refusal_text
    from layerguard.models.generate import generate

    samples = [*harmful, *harmless]
    assert_not_held_out(samples, "training the refusal-cliff probe")
    convs = [s.conversation() for s in samples]
    if answers is None:
        answers = generate(lm, convs, max_new_tokens=max_new_tokens, batch_size=batch_size)
    if len(answers) != len(samples):
        raise InvalidInputError(f"got {len(answers)} answers for {len(samples)} prompts")
    n = lm.n_layers
    cand = list(layers) if layers is not None else list(range(max(1, n // 4), max(2, int(0.85 * n))))
    labels = [is_refusal_text(a) for a in answers]
    cp = fit_cliff_probe(post_inst_states(lm, convs, cand, batch_size), labels, cand, seed=seed)
    cp.meta["refused_harmful"] = sum(labels[: len(harmful)])
    cp.meta["refused_harmless"] = sum(labels[len(harmful) :])
    return cp, list(answers)


def token_curve(
    lm: Any, probe: CliffProbe, conversation: Any, answer: str, *, signal: RefusalCliffSignal | None = None, **info: Any
) -> CurveRecord:
    """The probe's score at every token of the rendered prompt and the answer (and the signal's score)."""
    prs = prompt_response_states(lm, conversation, answer, probe.layer)
    scores = probe.probe.predict(prs.states).tolist()
    return CurveRecord(
        answer=answer,
        scores=scores,
        n_prompt=prs.n_prompt,
        t_inst=prs.t_inst,
        instruction=prs.instruction,
        signal_score=signal.score_states(prs) if signal is not None else None,
        **info,
    )


def calibrate_signal(
    probe: CliffProbe, positives: Sequence[Any], negatives: Sequence[Any], *, target_fpr: float = 0.05
) -> RefusalCliffSignal:
    """A :class:`RefusalCliffSignal` whose threshold lets ``target_fpr`` of negatives through.

    Args:
        probe: The fitted probe.
        positives: :class:`PromptResponseStates` of harmful prompts the model answered.
        negatives: States of refused prompts and answered harmless prompts.
        target_fpr: Share of negatives allowed to reach the threshold.
    """
    from layerguard.guard.calibration import threshold_for_fpr

    sig = RefusalCliffSignal(probe.layer, probe.probe, threshold=1.0)
    neg = [sig.score_states(s) for s in negatives]
    pos = [sig.score_states(s) for s in positives]
    # a zero threshold would halt every answer; a drop must be at least 0.1 to count
    sig.threshold = max(0.1, threshold_for_fpr(neg, target_fpr))
    sig.meta = {
        **probe.meta,
        "target_fpr": target_fpr,
        "n_positive": len(pos),
        "n_negative": len(neg),
        "train_tpr": sum(s >= sig.threshold for s in pos) / len(pos) if pos else None,
        "train_fpr": sum(s >= sig.threshold for s in neg) / len(neg),
    }
    return sig
