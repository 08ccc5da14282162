"""Which hazard category a harmful prompt belongs to, read from the latent ring's own states, or none.

The first latent ring named a block's category by the cosine of the state with each
category's (harmful-of-that-category - benign) centroid; on qwen2.5-coder-0.5b the nearest
centroid was the prompt's own category for about a third to a half of harmful prompts.
Measured on the same states (the v2 ring's six reads at layers 16 and 17; 768 harmful
training prompts, 323 harmful validation prompts, 14 categories, the largest holding 7%):
cosine to those centroids 0.46, nearest centred profile 0.55, a multinomial logistic
regression on the standardised states 0.83 (L2 1e-3..1e-1 all within 0.01; its confidence
cut then names a category for 0.98 of the val prompts, 0.84 of them right:
``scripts/category_readout.py``, docs/figures/category-readout-qwen.json).

So the ring's categories come from a multinomial logistic regression on its reads, fitted
on the harmful training prompts (plain and wrapped). A block names the most probable
category only when that probability reaches a confidence chosen out of fold on the
training prompts so that the named categories are right at least ``target_precision`` of
the time; otherwise the block carries no category and its details say which was nearest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TARGET_PRECISION = 0.8
L2 = 1e-2
NEVER = 2.0  # above any probability: no category is ever named


@dataclass
class CategoryModel:
    """Softmax regression over standardised flattened states: ``softmax(((x - mu) / sd) @ weight + bias)``.

    Attributes:
        names: Category names, in column order.
        mu, sd: Standardisation ``[m]``.
        weight: ``[m, n_categories]``; bias: ``[n_categories]``.
        min_confidence: A category is named only at or above this probability.
        stats: Out-of-fold accuracy, coverage and accuracy of the named categories.
    """

    names: list[str]
    mu: Any
    sd: Any
    weight: Any
    bias: Any
    min_confidence: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, x: Any) -> Any:
        """``[n, n_categories]`` for states ``[n, ...]`` (flattened)."""
        import torch

        a = (x.reshape(x.shape[0], -1).float() - self.mu.float()) / self.sd.float()
        return torch.softmax(a @ self.weight.float() + self.bias.float(), dim=-1)

    def tensors(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}.{k}": getattr(self, k) for k in ("mu", "sd", "weight", "bias")}

    @classmethod
    def from_tensors(cls, t: dict[str, Any], prefix: str, meta: dict[str, Any]) -> CategoryModel:
        return cls(
            names=list(meta["names"]),
            min_confidence=float(meta["min_confidence"]),
            stats=dict(meta.get("stats", {})),
            **{k: t[f"{prefix}.{k}"] for k in ("mu", "sd", "weight", "bias")},
        )


def fit_softmax(x: Any, y: Sequence[int], n_classes: int, *, l2: float = L2, max_iter: int = 200) -> CategoryModel:
    """Standardise ``x`` (``[n, m]``) and fit a softmax regression with an L2 penalty (L-BFGS)."""
    import torch

    x = x.reshape(x.shape[0], -1).float()
    mu, sd = x.mean(0), x.std(0).clamp(min=1e-6)
    a = (x - mu) / sd
    target = torch.tensor(list(y), dtype=torch.long)
    weight = torch.zeros(a.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(a @ weight + bias, target) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return CategoryModel([], mu, sd, weight.detach(), bias.detach())


def cut_for_precision(confidence: Sequence[float], right: Sequence[bool], target: float) -> float:
    """The lowest confidence at which the predictions at or above it are right >= ``target`` of the time.

    Walks the predictions from the most confident down and keeps the widest prefix whose
    accuracy holds; :data:`NEVER` when not even the most confident prediction is right.
    Tied confidences are named together or not at all.
    """
    ranked = sorted(zip(confidence, right, strict=True), key=lambda t: -t[0])
    best, hits = NEVER, 0
    for k, (c, ok) in enumerate(ranked, start=1):
        hits += ok
        if k < len(ranked) and ranked[k][0] == c:
            continue
        if hits / k >= target:
            best = c
    return best


def nearest(row: Sequence[float], names: Sequence[str]) -> tuple[str | None, float]:
    """The best-scoring category and its score."""
    if not row:
        return None, 0.0
    i = max(range(len(row)), key=lambda j: row[j])
    return names[i], float(row[i])


def folds_by_group(group: Sequence[Any], folds: int, seed: int) -> dict[Any, int]:
    """Each group's fold: sorted groups, shuffled with ``seed``, dealt round-robin (a group stays together)."""
    units = sorted(set(group))
    random.Random(seed).shuffle(units)
    return {u: k % folds for k, u in enumerate(units)}


def fit_categories(
    x: Any,
    labels: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    target_precision: float = TARGET_PRECISION,
    l2: float = L2,
    groups: Sequence[Any] | None = None,
) -> CategoryModel:
    """The softmax model on all of ``x`` (harmful states ``[n, ...]``); its confidence cut from ``folds``-fold runs.

    Stats: out-of-fold accuracy of the most probable category, and at the chosen cut the
    share of prompts that get a category (coverage) and how many of those are right. Rows of one
    ``groups`` value (a prompt and its wrapped copies) share a fold.
    """
    names = sorted(set(labels))
    y = [names.index(c) for c in labels]
    group = list(groups) if groups is not None else list(range(len(labels)))
    fold_of = folds_by_group(group, folds, seed)
    conf: list[float] = []
    right: list[bool] = []
    for f in range(folds):
        test = [i for i in range(len(labels)) if fold_of[group[i]] == f]
        train = [i for i in range(len(labels)) if fold_of[group[i]] != f]
        m = fit_softmax(x[train], [y[i] for i in train], len(names), l2=l2)
        for i, row in zip(test, m.probabilities(x[test]).tolist(), strict=True):
            guess, p = nearest(row, names)
            conf.append(p)
            right.append(guess == labels[i])
    cut = cut_for_precision(conf, right, target_precision)
    named = [ok for c, ok in zip(conf, right, strict=True) if c >= cut]
    model = fit_softmax(x, y, len(names), l2=l2)
    model.names, model.min_confidence = names, cut
    model.stats = {
        "method": "softmax regression on the ring's standardised reads; named only above a confidence cut",
        "l2": l2,
        "folds": folds,
        "target_precision": target_precision,
        "cv_accuracy": sum(right) / max(1, len(right)),
        "cv_coverage": len(named) / max(1, len(right)),
        "cv_named_accuracy": sum(named) / len(named) if named else None,
        "min_confidence": cut,
        "n": len(labels),
        "n_categories": len(names),
    }
    return model
