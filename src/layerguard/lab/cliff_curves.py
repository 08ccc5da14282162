"""The refusal-cliff study's settings and its curves: per-group summary, files and figure."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerguard.lab.cliff_detect import CurveRecord, cliff_of
from layerguard.stats import rate

# single-turn attacks first (shorter prompts), then the forged-turn one
DEFAULT_ATTACKS = ("refusal_suppression", "prefix_injection", "roleplay", "authority", "dan", "forged_turns")


@dataclass
class CliffConfig:
    """Settings of :func:`run_cliff_study` (recorded in ``cliff.json``)."""

    n_train: int = 64
    n_val: int = 48
    layer: int | None = None
    max_new_tokens: int = 32
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    batch_size: int = 8
    seed: int = 0
    min_peak: float = 0.5
    min_drop: float = 0.3
    window: int = 4
    align_before: int = 24
    align_after: int = 32
    train_harmful: str = "builtin:harmful:train"
    train_harmless: str = "builtin:harmless:train"
    val_harmful: str = "builtin:harmful:val"
    val_harmless: str = "builtin:harmless:val"


def _aligned(recs: Sequence[CurveRecord], before: int, after: int) -> tuple[list[int], list[list[float]]]:
    """Curves re-indexed so that 0 is the first generated token (-1 the last template token)."""
    xs = list(range(-before, after))
    cols: list[list[float]] = [[] for _ in xs]
    for r in recs:
        for j, x in enumerate(xs):
            i = r.n_prompt + x
            if 0 <= i < len(r.scores):
                cols[j].append(r.scores[i])
    return xs, cols


def summarize_curves(recs: Sequence[CurveRecord], cfg: CliffConfig) -> dict[str, Any]:
    """Per group: mean intention at landmarks, cliff detection rates, and the aligned mean curve."""

    def mean(v: Sequence[float]) -> float | None:
        return statistics.fmean(v) if v else None

    out: dict[str, Any] = {}
    for g in dict.fromkeys(r.group for r in recs):
        mine = [r for r in recs if r.group == g]
        gen = [
            cliff_of(r, mode="generation", window=cfg.window, min_peak=cfg.min_peak, min_drop=cfg.min_drop)
            for r in mine
        ]
        tpl = [cliff_of(r, mode="template", min_peak=cfg.min_peak, min_drop=cfg.min_drop) for r in mine]
        pin = [
            cliff_of(r, mode="post_inst", window=cfg.window, min_peak=cfg.min_peak, min_drop=cfg.min_drop) for r in mine
        ]
        xs, cols = _aligned(mine, cfg.align_before, cfg.align_after)
        out[g] = {
            "n": len(mine),
            "attacks": {a: sum(r.attack == a for r in mine) for a in dict.fromkeys(r.attack for r in mine)},
            "mean_score_first_post_inst": mean(
                [r.scores[r.t_inst + 1] for r in mine if r.t_inst is not None and r.t_inst + 1 < r.n_prompt]
            ),
            "mean_score_t_inst": mean([r.scores[r.t_inst] for r in mine if r.t_inst is not None]),
            "mean_score_post_inst_max": mean(
                [max(r.scores[r.t_inst : r.n_prompt]) for r in mine if r.t_inst is not None]
            ),
            "mean_score_last_template_token": mean([r.scores[r.n_prompt - 1] for r in mine]),
            "mean_score_first16_generated": mean(
                [statistics.fmean(r.scores[r.n_prompt : r.n_prompt + 16]) for r in mine if len(r.scores) > r.n_prompt]
            ),
            "cliff_rate_generation": rate([c.fired for c in gen]),
            "cliff_rate_template": rate([c.fired for c in tpl]),
            "cliff_rate_post_inst": rate([c.fired for c in pin]),
            "share_t_inst_above_min_peak": rate(
                [r.scores[r.t_inst] >= cfg.min_peak for r in mine if r.t_inst is not None]
            ),
            "mean_drop_generation": mean([c.size for c in gen]),
            "mean_drop_template": mean([c.size for c in tpl]),
            "aligned": {
                "x": xs,
                "mean": [mean(c) for c in cols],
                "sd": [statistics.pstdev(c) if len(c) > 1 else None for c in cols],
                "n": [len(c) for c in cols],
            },
        }
    return out


def load_curves(path: Path) -> list[CurveRecord]:
    """Read ``curves.jsonl`` written by :func:`run_cliff_study`."""
    recs = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row["instruction"] = tuple(row["instruction"]) if row["instruction"] is not None else None
            recs.append(CurveRecord(**row))
    return recs


GROUP_STYLE = {
    "refused": ("refused (harmful, direct)", "tab:red"),
    "complied": ("complied (harmless)", "tab:blue"),
    "jailbroken": ("jailbroken (harmful + attack)", "tab:orange"),
    "harmful_answered": ("harmful answered without attack", "tab:grey"),
}


def plot_curves(summary: dict[str, Any], path: Path, title: str) -> Path:
    """Mean curve +- 1 s.d. per group, aligned at the end of the prompt."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for g, (label, color) in GROUP_STYLE.items():
        if g not in summary:
            continue
        a = summary[g]["aligned"]
        pts = [(x, m, s or 0.0) for x, m, s in zip(a["x"], a["mean"], a["sd"], strict=True) if m is not None]
        if not pts:
            continue
        xs, ms, sds = zip(*pts, strict=True)
        ax.plot(xs, ms, color=color, label=f"{label} (n={summary[g]['n']})", lw=1.8 if g != "harmful_answered" else 1)
        lo = [m - s for m, s in zip(ms, sds, strict=True)]
        hi = [m + s for m, s in zip(ms, sds, strict=True)]
        ax.fill_between(xs, lo, hi, color=color, alpha=0.12)
    ax.axvline(-0.5, color="black", lw=0.8, ls="--")
    ax.text(-0.3, 1.02, "answer starts", fontsize=7)
    ax.set(
        xlabel="token position relative to the first generated token",
        ylabel="refusal-intention probe (mean ± 1 s.d.)",
        ylim=(-0.05, 1.08),
        title=title,
    )
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
