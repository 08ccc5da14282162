"""Fitting the latent ring (v2): pooled reads, wrapper augmentation, selection by held-out wrappers.

The first latent ring read one token (``t_inst``) at one layer and was fitted on plain
prompts. It learnt the *form* of a jailbreak as much as the harm: a benign request inside
a role-play frame or base64 scored as harmful, and a harmful one told in the past tense as
harmless. Version 2 changes what it reads and what it learns from:

- **reads**: the mean over the instruction (``inst_mean``), the last instruction token
  (``t_inst``) and the mean over the post-instruction template tokens (``post_mean``), at
  several candidate layers, alone and combined;
- **augmentation**: every training prompt, harmful *and* benign, is also wrapped by one
  jailbreak wrapper of the *training* family (:data:`~layerguard.data.wrappers.TRAINING_WRAPPERS`),
  so the wrapper itself carries no label. The evaluation family is never used here;
- **selection**: each candidate (reads x variant) is scored on a holdout of whole wrappers
  (none of the holdout's wrappers is in the candidate's training data) and of plain prompts,
  by AUROC on plain prompts, on wrapped prompts, and the false-positive rate on wrapped
  benign prompts at the plain-prompt threshold; the chosen one is refitted on everything
  and calibrated on out-of-fold scores.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from layerguard.activations.hooks import read_name
from layerguard.data.loaders import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.directions.direction import Direction
from layerguard.directions.extract import data_hash, diff_in_means
from layerguard.errors import InvalidInputError
from layerguard.guard.calibration import threshold_for_fpr
from layerguard.guard.latent_categories import folds_by_group
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.latent import LatentGuardModel, Variant
from layerguard.guard.states import prompt_states
from layerguard.stats import auroc
from layerguard.version import __version__

POSITIONS = ("t_inst", "inst_mean", "post_mean")
POSITION_SETS: tuple[tuple[str, ...], ...] = (
    ("t_inst",),
    ("inst_mean",),
    ("post_mean",),
    ("inst_mean", "post_mean"),
    ("t_inst", "inst_mean", "post_mean"),
)
"""Positions combined at one layer; the best two layers' best set is also tried across both layers."""


@dataclass
class TrainingSet:
    """The latent ring's training prompts: plain and wrapped, harmful and benign.

    Attributes:
        conversations: The chat messages of each prompt.
        y: 1 harmful, 0 benign.
        wrapper: The training wrapper applied ('' for a plain prompt).
        kind: The benign prompt's set (``harmless``, ``borderline``, ``everyday`` ...) or ``harmful``.
        category: Each prompt's hazard category.
    """

    conversations: list[list[dict[str, str]]]
    y: list[int]
    wrapper: list[str]
    kind: list[str]
    category: list[str]

    def __len__(self) -> int:
        return len(self.y)


def _kind(s: Sample) -> str:
    return s.label if s.label != "unknown" else s.source.rsplit(":", 1)[-1] or "benign"


def training_set(harmful: Sequence[Sample], benign: Sequence[Sample], *, copies: int = 1, seed: int = 0) -> TrainingSet:
    """Plain prompts plus ``copies`` wrapped variants of each, wrappers drawn from the training family.

    Wrappers are dealt in a seeded shuffle cycle, so every wrapper wraps about as many
    harmful as benign prompts and no wrapper predicts the label.
    """
    from layerguard.data.wrappers import TRAINING_WRAPPERS

    names = sorted(TRAINING_WRAPPERS)
    rng = random.Random(seed)
    out = TrainingSet([], [], [], [], [])
    for label, group in ((1, harmful), (0, benign)):
        deck: list[str] = []
        for s in group:
            kind = "harmful" if label else _kind(s)
            out.conversations.append(s.conversation())
            out.y.append(label)
            out.wrapper.append("")
            out.kind.append(kind)
            out.category.append(s.category.removeprefix("benign_"))
            for _ in range(copies):
                if not deck:
                    deck = names[:]
                    rng.shuffle(deck)
                w = deck.pop()
                out.conversations.append(TRAINING_WRAPPERS[w](s))
                out.y.append(label)
                out.wrapper.append(w)
                out.kind.append(kind)
                out.category.append(s.category.removeprefix("benign_"))
    return out


def reads_for(layers: Sequence[int], positions: Sequence[str] = POSITIONS) -> list[str]:
    """Read names for every layer x position."""
    return [read_name(layer, p) for layer in layers for p in positions]


@dataclass
class FittedLatent:
    """A fitted scorer on a set of reads."""

    reads: list[str]
    variant: Variant
    directions: Any  # [k, d] unit vectors
    scorer: LogisticProbe

    def score(self, x: Any) -> Any:
        """Scores ``[n]`` for states ``[n, k, d]``."""
        return self.scorer.predict(features(x, self.directions, self.variant))


def features(x: Any, directions: Any, variant: Variant) -> Any:
    """``[n, k]`` projections (centroid) or ``[n, k*d]`` states (probe) of ``x`` ``[n, k, d]``."""
    if variant == "centroid":
        return (x * directions).sum(-1)
    return x.reshape(x.shape[0], -1)


def fit(x: Any, y: Any, reads: list[str], variant: Variant, l2: float = 1e-2) -> FittedLatent:
    """Fit on states ``x`` ``[n, k, d]`` with labels ``y`` ``[n]`` (1 harmful)."""
    pos, neg = x[y > 0.5], x[y < 0.5]
    d = diff_in_means(pos, neg)  # [k, d]
    unit = d / d.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return FittedLatent(reads, variant, unit, LogisticProbe.fit(features(x, unit, variant), y, l2=l2))


def stack(states: dict[str, Any], reads: Sequence[str]) -> Any:
    """``[n, k, d]`` float32 from read name -> ``[n, d]``."""
    import torch

    return torch.stack([states[r].float() for r in reads], dim=1)


@dataclass
class Split:
    """Indices of a fit part and a holdout, the holdout's wrappers unseen by the fit part."""

    fit: list[int]
    hold: list[int]
    held_wrappers: list[str] = field(default_factory=list)


def wrapper_split(ts: TrainingSet, *, holdout: float = 0.3, seed: int = 0) -> Split:
    """Hold out ~30% of the prompts and ~30% of the wrappers.

    The holdout's wrapped prompts use only held-out wrappers, and wrapped copies of a
    held-out prompt's text never train.
    """
    rng = random.Random(seed)
    wrappers = sorted({w for w in ts.wrapper if w})
    rng.shuffle(wrappers)
    held_w = set(wrappers[: max(1, round(holdout * len(wrappers)))])
    base = [i for i, w in enumerate(ts.wrapper) if not w]
    rng.shuffle(base)
    held_plain = set(base[: round(holdout * len(base))])
    # a wrapped prompt belongs to the plain prompt it was made from (the one just before its copies)
    owner, last = [0] * len(ts), 0
    for i, w in enumerate(ts.wrapper):
        if not w:
            last = i
        owner[i] = last
    fit_i: list[int] = []
    hold_i: list[int] = []
    for i, w in enumerate(ts.wrapper):
        held_text = owner[i] in held_plain
        if not w:
            (hold_i if held_text else fit_i).append(i)
        elif w in held_w:
            if held_text:
                hold_i.append(i)
        elif not held_text:
            fit_i.append(i)
    return Split(fit_i, hold_i, sorted(held_w))


def holdout_metrics(
    scores: Sequence[float], ts: TrainingSet, idx: Sequence[int], target_fpr: float
) -> dict[str, float]:
    """AUROC plain / wrapped / harmful-vs-borderline, and FPR + TPR at the plain-benign threshold."""
    plain = [(s, i) for s, i in zip(scores, idx, strict=True) if not ts.wrapper[i]]
    wrapped = [(s, i) for s, i in zip(scores, idx, strict=True) if ts.wrapper[i]]

    def split(rows: list[tuple[float, int]], want: int, kind: str | None = None) -> list[float]:
        return [s for s, i in rows if ts.y[i] == want and (kind is None or ts.kind[i] == kind)]

    thr = threshold_for_fpr(split(plain, 0), target_fpr)
    w_neg, w_pos = split(wrapped, 0), split(wrapped, 1)
    a_plain = auroc(split(plain, 1), split(plain, 0))
    return {
        "auroc_plain": a_plain,
        "auroc_wrapped": auroc(w_pos, w_neg) if w_pos and w_neg else a_plain,  # no augmentation: plain only
        "auroc_borderline": auroc(split(plain, 1), split(plain, 0, "borderline") or split(plain, 0)),
        "tpr_plain": sum(s >= thr for s in split(plain, 1)) / max(1, len(split(plain, 1))),
        "tpr_wrapped": sum(s >= thr for s in w_pos) / max(1, len(w_pos)),
        "fpr_wrapped_benign": sum(s >= thr for s in w_neg) / max(1, len(w_neg)),
    }


def objective(m: dict[str, float]) -> float:
    """What selection maximises: separation on plain, wrapped and borderline prompts, minus FPs.

    The false positives counted are on wrapped benign prompts: the wrapper must not be the signal.
    """
    return (m["auroc_plain"] + m["auroc_wrapped"] + m["auroc_borderline"]) / 3 - 0.5 * m["fpr_wrapped_benign"]


def candidates(layers: Sequence[int]) -> list[list[str]]:
    """Read sets tried: every position set at every layer."""
    return [[read_name(layer, p) for p in ps] for layer in layers for ps in POSITION_SETS]


def select(
    states: dict[str, Any],
    ts: TrainingSet,
    layers: Sequence[int],
    variants: Sequence[Variant],
    *,
    target_fpr: float,
    seed: int = 0,
    log: Any = None,
) -> tuple[list[str], Variant, list[dict[str, Any]]]:
    """The reads and variant with the best :func:`objective` on a held-out-wrapper split.

    Single layers first; then the best position set at the two best layers together.
    """
    import torch

    sp = wrapper_split(ts, seed=seed)
    y = torch.tensor(ts.y, dtype=torch.float32)
    table: list[dict[str, Any]] = []

    def trial(reads: list[str], v: Variant) -> float:
        x = stack(states, reads)
        model = fit(x[sp.fit], y[sp.fit], reads, v)
        m = holdout_metrics(model.score(x[sp.hold]).tolist(), ts, sp.hold, target_fpr)
        row: dict[str, Any] = {
            "reads": reads,
            "variant": v,
            **{k: round(val, 4) for k, val in m.items()},
            "objective": objective(m),
        }
        table.append(row)
        if log is not None:
            log(f"  {v:8s} {'+'.join(reads)}: objective {row['objective']:.3f}")
        return float(row["objective"])

    for reads in candidates(layers):
        for v in variants:
            trial(reads, v)
    best = max(table, key=lambda r: r["objective"])
    layer_best: dict[int, float] = {}
    for r in table:
        lay = int(r["reads"][0].split(".")[1])
        layer_best[lay] = max(layer_best.get(lay, -1.0), r["objective"])
    top = sorted(layer_best, key=lambda k: -layer_best[k])[:2]
    if len(top) == 2:
        positions = [r.split("@")[1] for r in best["reads"]]
        trial([read_name(layer, p) for layer in sorted(top) for p in positions], best["variant"])
    best = max(table, key=lambda r: r["objective"])
    return list(best["reads"]), best["variant"], table


def owners(ts: TrainingSet) -> list[int]:
    """Per prompt, the index of the plain prompt it is (or wraps): the unit folds keep together."""
    owner, last = [0] * len(ts), 0
    for i, w in enumerate(ts.wrapper):
        if not w:
            last = i
        owner[i] = last
    return owner


def out_of_fold(x: Any, ts: TrainingSet, reads: list[str], variant: Variant, *, folds: int = 5, seed: int = 0) -> Any:
    """Out-of-fold scores ``[n]``; a plain prompt and its wrapped copies share a fold."""
    import torch

    y = torch.tensor(ts.y, dtype=torch.float32)
    owner = owners(ts)
    fold_of = folds_by_group(owner, folds, seed)
    scores = torch.zeros(len(ts))
    for k in range(folds):
        hold = [i for i in range(len(ts)) if fold_of[owner[i]] == k]
        keep = [i for i in range(len(ts)) if fold_of[owner[i]] != k]
        scores[hold] = fit(x[keep], y[keep], reads, variant).score(x[hold])
    return scores


def calibrate(scores: Sequence[float], ts: TrainingSet, target_fpr: float) -> float:
    """The threshold giving ``target_fpr`` on the benign prompts, plain and wrapped together."""
    return threshold_for_fpr([s for s, y in zip(scores, ts.y, strict=True) if y == 0], target_fpr)


def difference_direction(
    lm: Any, role: str, position: str, x_pos: Any, x_neg: Any, layer: int, meta: dict[str, Any]
) -> Direction:
    """A per-layer difference-in-means :class:`Direction` (``x_*``: ``[n, n_layers, d]``) at ``layer``."""
    return Direction(
        vectors=diff_in_means(x_pos, x_neg),
        role=role,
        position=position,
        model_id=lm.model_id,
        weights_sha256=lm.weights_sha256,
        template_sha256=lm.template_hash,
        layer=layer,
        meta=dict(meta),
    )


def fit_latent_model(
    lm: Any,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    cand: list[int],
    variant: Variant | Literal["auto"],
    *,
    target_fpr: float,
    category_fpr: dict[str, float] | None,
    batch_size: int,
    seed: int,
    progress: bool | None,
    cv_folds: int,
    log: Callable[[str], None],
    augment: int = 1,
    band_fpr: float = 0.2,
) -> tuple[LatentGuardModel, dict[str, Any]]:
    """The calibrated latent model (v2) and its build statistics.

    See the module docstring for what is read and learnt from; :func:`build_guard` for the arguments.
    """
    import torch

    bad = [layer for layer in cand if not 0 <= layer < lm.n_layers]
    if bad or not cand:
        raise InvalidInputError(f"candidate layers {bad or cand} are out of range", hint=f"use 0..{lm.n_layers - 1}")
    ts = training_set(harmful, benign, copies=augment, seed=seed)
    assert_not_held_out(ts.conversations, "fitting the latent ring")
    every = list(range(lm.n_layers))
    reads = sorted({*reads_for(cand), *reads_for(every, ("t_inst", "post_mean"))})
    n_wrapped = sum(1 for w in ts.wrapper if w)
    log(f"reading {len(reads)} states of {len(ts)} prompts ({n_wrapped} wrapped by training-family wrappers)")
    t0 = time.time()
    states = prompt_states(lm, ts.conversations, reads, batch_size=batch_size, progress=progress, desc="latent ring")
    capture_s = time.time() - t0
    y = torch.tensor(ts.y, dtype=torch.float32)
    plain = torch.tensor([not w for w in ts.wrapper])
    meta = {"data_sha256": data_hash(harmful, benign), "n_positive": len(harmful), "n_negative": len(benign)}

    def per_layer(position: str, rows: Any) -> Any:
        return torch.stack([states[read_name(layer, position)][rows] for layer in every], dim=1)

    harm_mask, benign_mask = plain & (y > 0.5), plain & (y < 0.5)
    variants: list[Variant] = ["centroid", "probe"] if variant == "auto" else [variant]
    t1 = time.time()
    chosen_reads, chosen, table = select(states, ts, cand, variants, target_fpr=target_fpr, seed=seed)
    select_s = time.time() - t1
    best = table[[r["reads"] for r in table].index(chosen_reads)] if chosen_reads else {}
    layer = int(chosen_reads[0].split(".")[1])
    objective_best = float(best.get("objective", 0.0))
    log(f"latent ring: {chosen} on {' + '.join(chosen_reads)} (held-out-wrapper objective {objective_best:.3f})")
    harmfulness = difference_direction(
        lm, "harmfulness", "t_inst", per_layer("t_inst", harm_mask), per_layer("t_inst", benign_mask), layer, meta
    )
    x = stack(states, chosen_reads)
    fitted = fit(x, y, chosen_reads, chosen)
    oof = out_of_fold(x, ts, chosen_reads, chosen, folds=cv_folds, seed=seed).tolist()
    model = LatentGuardModel(
        layer=layer,
        variant=chosen,
        direction=fitted.directions,
        scorer=fitted.scorer,
        threshold=calibrate(oof, ts, target_fpr),
        model_id=lm.model_id,
        weights_sha256=lm.weights_sha256,
        template_sha256=lm.template_hash,
        harmfulness=harmfulness,
        reads=chosen_reads,
    )
    benign_idx, harmful_idx = [i for i, v in enumerate(ts.y) if v == 0], [i for i, v in enumerate(ts.y) if v == 1]
    categories = _categories_v2(model, x, ts, [oof[i] for i in benign_idx], benign_idx, harmful_idx, category_fpr)
    from layerguard.guard.release import fit_release

    model.release, release = fit_release(lm, states, ts, oof, per_layer, meta)
    log(f"latent ring: release below harm {release['below']:.3f} when refusal intent >= {release['refusal_above']:.2f}")
    pos_scores, benign_scores, thr = [oof[i] for i in harmful_idx], [oof[i] for i in benign_idx], model.threshold
    stats: dict[str, Any] = {
        "version": 2,
        "reads": chosen_reads,
        "layer": layer,
        "variant": chosen,
        "threshold": thr,
        "selection": {"split": "30% of prompts and 30% of training wrappers held out", "table": table},
        "calibration": f"{cv_folds}-fold out-of-fold scores of the training prompts, plain and wrapped",
        "augmentation": {"copies": augment, "family": "training", "n_wrapped": n_wrapped},
        "cv_tpr": sum(s >= thr for s in pos_scores) / len(pos_scores),
        "cv_fpr": sum(s >= thr for s in benign_scores) / len(benign_scores),
        "cv_auroc": auroc(pos_scores, benign_scores),
        "release": release,
        "band": _band(oof, ts, band_fpr, thr),
        "n_harmful": len(harmful),
        "n_benign": len(benign),
        "target_fpr": target_fpr,
        "category_fpr": category_fpr or {},
        "categories": categories,
        "seed": seed,
        "timings_s": {"read states": round(capture_s, 1), "select reads": round(select_s, 1)},
        "layerguard_version": __version__,
    }
    return model, stats


def _band(oof: Sequence[float], ts: TrainingSet, band_fpr: float, threshold: float) -> dict[str, float]:
    """The lower edge of the latent ring's uncertain band: its score at ``band_fpr`` out of fold.

    Under it the ring reads a request as confidently harmless, and a cascade lets it overrule
    another ring's block (:class:`~layerguard.guard.types.SecondOpinion`); from it up to the
    threshold another ring decides.
    """
    below = min(calibrate(oof, ts, band_fpr), threshold)
    harmful = [s for s, y in zip(oof, ts.y, strict=True) if y == 1]
    return {
        "below": below,
        "benign_fpr": band_fpr,
        "harmful_under": sum(s < below for s in harmful) / max(1, len(harmful)),
    }


def _categories_v2(
    model: LatentGuardModel,
    x: Any,
    ts: Any,
    benign_scores: list[float],
    benign_idx: list[int],
    harmful_idx: list[int],
    category_fpr: dict[str, float] | None,
) -> dict[str, Any]:
    """The category model (softmax regression with a confidence cut, :mod:`.latent_categories`) and thresholds."""
    from layerguard.guard.latent_categories import fit_categories

    owner = owners(ts)
    fitted = fit_categories(
        x[harmful_idx], [ts.category[i] for i in harmful_idx], groups=[owner[i] for i in harmful_idx]
    )
    cats = fitted.names
    model.category_model = fitted
    thresholds: dict[str, float] = {}
    for c, fpr in (category_fpr or {}).items():
        if c not in cats:
            raise InvalidInputError(f"unknown category {c!r} in category_fpr", hint=f"categories: {', '.join(cats)}")
        rows = [j for j, i in enumerate(benign_idx) if ts.category[i] == c]
        if not rows:
            raise InvalidInputError(f"no benign prompts of category {c!r} to calibrate on")
        thresholds[c] = threshold_for_fpr([benign_scores[j] for j in rows], fpr)
    model.category_thresholds = thresholds
    return fitted.stats
