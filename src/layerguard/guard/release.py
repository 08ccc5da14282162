"""Fitting the release option of the latent ring: answer a benign request the model would refuse.

The model's refusal reads the form of a request, its harmfulness belief the content (seed
004): it refuses some requests it knows are harmless. :class:`~layerguard.guard.rings.latent.Release`
says when the guard may answer such a request with the refusal direction ablated;
:func:`fit_release` fits it from the states the latent ring's build already read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from layerguard.activations.hooks import read_name
from layerguard.guard.latent_fit import difference_direction
from layerguard.guard.rings.latent import Release


def fit_release(
    lm: Any,
    states: dict[str, Any],
    ts: Any,
    oof: list[float],
    per_layer: Callable[[str, Any], Any],
    meta: dict[str, Any],
    release_fpr: float = 0.01,
) -> tuple[Release, dict[str, Any]]:
    """The release option of the latent ring (see :class:`~layerguard.guard.rings.latent.Release`).

    The refusal direction is the difference in means of the post-instruction states
    (``post_mean``) of plain harmful and plain harmless training prompts at 75% of depth
    (where the lab's selection finds the direction whose ablation removes refusal); a request
    may be released when its out-of-fold-calibrated harm score is below the ``release_fpr``
    quantile of the harmful training prompts' scores (plain and wrapped) and its refusal
    intent is at least the harmless prompts' mean.
    """
    import torch

    layer = min(lm.n_layers - 1, round(0.75 * lm.n_layers))
    y = torch.tensor(ts.y)
    plain = torch.tensor([not w for w in ts.wrapper])
    harmless = torch.tensor([k == "harmless" for k in ts.kind]) & plain
    if int(harmless.sum()) < 2:
        harmless = plain & (y == 0)
    refusal = difference_direction(
        lm,
        "refusal",
        "post_mean",
        per_layer("post_mean", plain & (y == 1)),
        per_layer("post_mean", harmless),
        layer,
        meta,
    )
    proj = states[read_name(layer, "post_mean")].float() @ refusal.unit(layer).float()
    harm_scores = sorted(s for s, v in zip(oof, ts.y, strict=True) if v == 1)
    below = harm_scores[int(release_fpr * len(harm_scores))]
    refusal_above = float(proj[harmless].mean())
    release = Release(refusal, float(below), refusal_above)
    benign = [i for i, v in enumerate(ts.y) if v == 0]
    eligible = [i for i in benign if oof[i] < below and float(proj[i]) >= refusal_above]
    stats = {
        "layer": layer,
        "below": float(below),
        "refusal_above": refusal_above,
        "release_fpr_target": release_fpr,
        "cv_harmful_released": sum(
            1 for i, v in enumerate(ts.y) if v == 1 and oof[i] < below and float(proj[i]) >= refusal_above
        )
        / max(1, len(harm_scores)),
        "cv_benign_eligible": len(eligible) / max(1, len(benign)),
    }
    return release, stats
