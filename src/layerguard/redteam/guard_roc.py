"""ROC curves of a guard evaluation: every ring, the stack and the baselines, from ``eval.json``'s raw scores.

``layerguard guard eval`` keeps every system's raw score per set. This module turns them
into the figure docs/guard.md is written around: one panel per question (harmful vs
harmless, harmful vs borderline-benign, and the evaluation-family wrapped prompts pooled),
a ROC line per system with its AUROC, the point where the system actually operates (its
calibrated threshold), and the model's own refusal judged from its answers as a point
(a refusal is a decision, not a score, so it has no curve).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerguard.stats import auroc

# the panels: (title, positive sets, negative sets); a "+" suffix pools every wrapped set of that prefix
PANELS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("harmful vs harmless (plain)", ("harmful_val",), ("harmless_val",)),
    ("harmful vs borderline-benign (plain)", ("harmful_val",), ("borderline_val",)),
    ("wrapped by the evaluation family (pooled)", ("harmful_val+",), ("harmless_val+", "borderline_val+")),
)
SKIP = ("release offered",)  # a release score is not a harm score


def _pool(per_set: dict[str, list[Any]], names: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        if name.endswith("+"):
            out += [x for k, v in sorted(per_set.items()) if k.startswith(name) for x in v]
        else:
            out += per_set.get(name, [])
    return out


def roc_curves(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per panel: for each system its ROC (fpr, tpr), AUROC and operating point; the model's own refusal.

    The operating point is the share the system flagged at its own threshold
    (``systems[..].rates``), pooled over the panel's sets; the own-refusal point pools
    ``own_refusal`` the same way (absent when the model answered none of those sets).
    """
    panels = []
    sets, own = result.get("sets", {}), result.get("own_refusal", {})
    for title, pos_names, neg_names in PANELS:
        panel: dict[str, Any] = {"title": title, "systems": {}, "own_refusal": None}
        for system, per_set in result.get("scores", {}).items():
            pos, neg = _pool(per_set, pos_names), _pool(per_set, neg_names)
            if system in SKIP or not pos or not neg:
                continue
            fpr, tpr = roc(pos, neg)
            rates = result.get("systems", {}).get(system, {}).get("rates", {})
            panel["systems"][system] = {
                "fpr": [float(x) for x in fpr],
                "tpr": [float(x) for x in tpr],
                "auroc": auroc(pos, neg),
                "n_pos": len(pos),
                "n_neg": len(neg),
                "point": _point(rates, pos_names, neg_names),
            }
        panel["own_refusal"] = _point(
            {k: {("tpr" if sets.get(k, {}).get("harmful") else "fpr"): v} for k, v in own.items()},
            pos_names,
            neg_names,
        )
        panels.append(panel)
    return panels


def roc(pos: list[float], neg: list[float]) -> tuple[list[float], list[float]]:
    """(FPR, TPR) at every distinct threshold "flag if score >= t", from (0, 0) to (1, 1)."""
    import numpy as np

    p, n = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    cuts = np.unique(np.concatenate([p, n]))[::-1]
    tpr = [0.0] + [float((p >= t).mean()) for t in cuts]
    fpr = [0.0] + [float((n >= t).mean()) for t in cuts]
    return fpr, tpr


def _point(rates: dict[str, Any], pos_names: tuple[str, ...], neg_names: tuple[str, ...]) -> dict[str, Any] | None:
    """(FPR, TPR) pooled from per-set rate entries ``{set: {"tpr"|"fpr": {"k", "n"}}}``; None if either is missing."""
    counts = {}
    for side, names, key in (("pos", pos_names, "tpr"), ("neg", neg_names, "fpr")):
        pooled = _pool({k: [v[key]] for k, v in rates.items() if key in v and v[key].get("n")}, names)
        if not pooled:
            return None
        counts[side] = (sum(r["k"] for r in pooled), sum(r["n"] for r in pooled))
    (kp, np_), (kn, nn) = counts["pos"], counts["neg"]
    return {"tpr": kp / np_, "fpr": kn / nn, "n_pos": np_, "n_neg": nn}


def write_roc_figure(result: dict[str, Any], path: Path) -> Path:
    """Draw :func:`roc_curves` as one PNG with a panel per question; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = roc_curves(result)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for i, (system, c) in enumerate(panel["systems"].items()):
            color = f"C{i % 10}"
            style = "--" if system.startswith("baseline") else "-"
            ax.plot(c["fpr"], c["tpr"], style, color=color, lw=1.4, label=f"{system} ({c['auroc']:.2f})")
            if c["point"] is not None:
                ax.plot(c["point"]["fpr"], c["point"]["tpr"], "o", color=color, ms=6, mec="black", mew=0.6)
        own = panel["own_refusal"]
        if own is not None:
            ax.plot(own["fpr"], own["tpr"], "*", color="black", ms=13, label="model's own refusal (answers)")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        n = next(iter(panel["systems"].values()), {"n_pos": 0, "n_neg": 0})
        ax.set(
            xlabel="false-positive rate (benign flagged)",
            ylabel="true-positive rate (harmful flagged)",
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            title=f"{panel['title']}\n{n['n_pos']} harmful, {n['n_neg']} benign prompts",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6.5, loc="lower right")
    fig.suptitle(
        f"{result.get('model', '')}: ROC per system (AUROC); dots: each system's threshold, star: the model itself",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
