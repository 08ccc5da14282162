"""Building, calibrating and loading a guard.

``build_guard`` fits the latent ring on the project's own training sets (harmful vs
harmless + borderline-benign): the harmfulness :class:`~layerguard.directions.direction.Direction`
(difference in means at ``t_inst``, every layer, from :mod:`layerguard.directions.extract`)
and a scorer at the layer with the best held-out AUROC inside the training
split; it calibrates thresholds to a target false-positive rate on benign training prompts
(per category when asked), and writes ``guard.yaml`` plus artefacts. HarmBench test and
StrongREJECT are never touched: any held-out sample passed in is refused.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from layerguard.activations.store import ActivationSet
from layerguard.data.loaders import assert_not_held_out
from layerguard.data.samples import Sample, spread
from layerguard.directions.direction import Direction
from layerguard.directions.extract import capture_contrast, data_hash, diff_in_means, directions_from_acts
from layerguard.errors import InvalidInputError
from layerguard.guard.calibration import threshold_for_fpr
from layerguard.guard.config import GuardConfig, ModelRef, RingConfig
from layerguard.guard.pipeline import Guard
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.latent import LatentGuardModel, Variant
from layerguard.guard.types import Ring
from layerguard.stats import auroc
from layerguard.version import __version__


def _capture(
    lm: Any, harmful: Sequence[Sample], benign: Sequence[Sample], batch_size: int, progress: bool | None
) -> tuple[ActivationSet, ActivationSet]:
    """The residual stream at ``t_inst`` at every layer, for both sides of the contrast."""
    return capture_contrast(
        lm,
        harmful,
        benign,
        positions=("t_inst",),
        batch_size=batch_size,
        progress=progress,
        names=("harmful", "benign"),
    )


def _at_layers(acts: ActivationSet, layers: Sequence[int]) -> Any:
    """``[n, len(layers), d]`` states at ``t_inst`` at the given layers."""
    import torch

    return torch.stack([acts.at(f"blocks.{layer}.resid_pre", "t_inst") for layer in layers], dim=1)


def harmfulness_direction(
    lm: Any, pos: ActivationSet, neg: ActivationSet, harmful: Sequence[Sample], benign: Sequence[Sample]
) -> Direction:
    """The harmfulness :class:`Direction` (harmful minus benign mean at ``t_inst``, every layer).

    Computed by the directions package from the captured states, so it carries the model id,
    weights, template and data hashes like any extracted direction.
    """
    return directions_from_acts(lm, pos, neg, meta={"data_sha256": data_hash(harmful, benign)})["harmfulness"]


def fit_scorer(x_pos: Any, x_neg: Any, unit: Any, variant: Variant, l2: float = 1e-2) -> LogisticProbe:
    """The latent scorer for states ``[n, d]``: on the projection onto ``unit`` (centroid) or the state (probe)."""
    import torch

    x = torch.cat([x_pos, x_neg]).float()
    y = torch.cat([torch.ones(len(x_pos)), torch.zeros(len(x_neg))])
    feats = (x @ unit).unsqueeze(-1) if variant == "centroid" else x
    return LogisticProbe.fit(feats, y, l2=l2)


def fit_latent(x_pos: Any, x_neg: Any, variant: Variant, l2: float = 1e-2) -> tuple[Any, LogisticProbe]:
    """Unit centroid direction (difference in means) and scorer for states ``[n, d]``.

    ``x_pos`` are harmful prompts' states, ``x_neg`` benign ones'.
    """
    d = diff_in_means(x_pos, x_neg)
    unit = d / d.norm().clamp(min=1e-12)
    return unit, fit_scorer(x_pos, x_neg, unit, variant, l2)


def _folds(n: int, k: int, seed: int) -> list[list[int]]:
    """``k`` disjoint, shuffled index folds covering ``range(n)``."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return [idx[i::k] for i in range(k)]


def out_of_fold_scores(
    x_pos: Any, x_neg: Any, variant: Variant, *, folds: int = 5, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Scores of every harmful and benign state from a latent model fitted without it.

    A threshold set on the benign prompts the scorer was fitted on is too low: a probe with
    hundreds of dimensions pushes its own training negatives far below where new benign
    prompts land (this is what gave a 22% false-positive rate at a 5% target). Calibrating
    on out-of-fold scores estimates the rate on prompts the guard has not seen.
    """
    k = max(2, min(folds, len(x_pos), len(x_neg)))
    fp, fn = _folds(len(x_pos), k, seed), _folds(len(x_neg), k, seed + 1)
    pos, neg = [0.0] * len(x_pos), [0.0] * len(x_neg)
    for held_p, held_n in zip(fp, fn, strict=True):
        keep_p = sorted(set(range(len(x_pos))) - set(held_p))
        keep_n = sorted(set(range(len(x_neg))) - set(held_n))
        d, scorer = fit_latent(x_pos[keep_p], x_neg[keep_n], variant)
        model = LatentGuardModel(0, variant, d, scorer, 0.5)
        for i, sc in zip(held_p, model.score(x_pos[held_p]).tolist(), strict=True):
            pos[i] = float(sc)
        for i, sc in zip(held_n, model.score(x_neg[held_n]).tolist(), strict=True):
            neg[i] = float(sc)
    return pos, neg


def _select_layer(
    x_pos: Any, x_neg: Any, cand: list[int], variants: list[Variant], seed: int
) -> tuple[Variant, int, dict[str, dict[int, float]]]:
    """Variant and layer with the best AUROC on a 30% inner holdout of the training prompts."""
    rng = random.Random(seed)
    idx_p, idx_n = list(range(len(x_pos))), list(range(len(x_neg)))
    rng.shuffle(idx_p)
    rng.shuffle(idx_n)
    cut_p, cut_n = int(0.7 * len(idx_p)), int(0.7 * len(idx_n))
    layer_auroc: dict[str, dict[int, float]] = {v: {} for v in variants}
    for v in variants:
        for j, layer in enumerate(cand):
            d, scorer = fit_latent(x_pos[idx_p[:cut_p], j], x_neg[idx_n[:cut_n], j], v)
            model = LatentGuardModel(layer, v, d, scorer, 0.5)
            sp = model.score(x_pos[idx_p[cut_p:], j]).tolist()
            sn = model.score(x_neg[idx_n[cut_n:], j]).tolist()
            layer_auroc[v][layer] = auroc(sp, sn)
    chosen, best = max(((v, layer) for v in variants for layer in cand), key=lambda vl: layer_auroc[vl[0]][vl[1]])
    return chosen, best, layer_auroc


def _categories(
    model: LatentGuardModel,
    x_pos: Any,
    x_neg: Any,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    benign_scores: list[float],
    category_fpr: dict[str, float] | None,
) -> None:
    """Per-category centroid directions and (where asked) per-category thresholds, on ``model``."""
    cats = sorted({s.category for s in harmful})
    centroids = {}
    for c in cats:
        rows = [i for i, s in enumerate(harmful) if s.category == c]
        v = diff_in_means(x_pos[rows], x_neg)
        centroids[c] = v / v.norm().clamp(min=1e-12)
    model.category_centroids = centroids
    cat_thresholds: dict[str, float] = {}
    for c, fpr in (category_fpr or {}).items():
        if c not in centroids:
            raise InvalidInputError(f"unknown category {c!r} in category_fpr", hint=f"categories: {', '.join(cats)}")
        rows = [i for i, s in enumerate(benign) if s.category.removeprefix("benign_") == c]
        if not rows:
            raise InvalidInputError(f"no benign prompts of category {c!r} to calibrate on")
        cat_thresholds[c] = threshold_for_fpr([benign_scores[i] for i in rows], fpr)
    model.category_thresholds = cat_thresholds


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
) -> tuple[LatentGuardModel, dict[str, Any]]:
    """The calibrated latent model (built from the harmfulness :class:`Direction`) and its build statistics.

    See :func:`build_guard` for the arguments.
    """
    bad = [layer for layer in cand if not 0 <= layer < lm.n_layers]
    if bad or not cand:
        raise InvalidInputError(f"candidate layers {bad or cand} are out of range", hint=f"use 0..{lm.n_layers - 1}")
    log(f"capturing t_inst at every layer for {len(harmful)} harmful + {len(benign)} benign prompts")
    pos_acts, neg_acts = _capture(lm, harmful, benign, batch_size, progress)
    direction = harmfulness_direction(lm, pos_acts, neg_acts, harmful, benign)
    x_pos, x_neg = _at_layers(pos_acts, cand), _at_layers(neg_acts, cand)
    del pos_acts, neg_acts
    variants: list[Variant] = ["centroid", "probe"] if variant == "auto" else [variant]
    chosen, best, layer_auroc = _select_layer(x_pos, x_neg, cand, variants, seed)
    j = cand.index(best)
    log(f"{chosen} at layer {best}: inner-holdout AUROC {layer_auroc[chosen][best]:.3f}")

    direction = direction.with_layer(best)
    scorer = fit_scorer(x_pos[:, j], x_neg[:, j], direction.unit(), chosen)
    model = LatentGuardModel.from_direction(direction, chosen, scorer, 0.5)
    pos_scores, benign_scores = out_of_fold_scores(x_pos[:, j], x_neg[:, j], chosen, folds=cv_folds, seed=seed)
    model.threshold = threshold_for_fpr(benign_scores, target_fpr)
    _categories(model, x_pos[:, j], x_neg[:, j], harmful, benign, benign_scores, category_fpr)
    threshold = model.threshold
    stats = {
        "layer_auroc_inner_holdout": layer_auroc,
        "layer": best,
        "threshold": threshold,
        "calibration": f"{cv_folds}-fold out-of-fold scores of the training prompts",
        "cv_tpr": sum(s >= threshold for s in pos_scores) / len(pos_scores),
        "cv_fpr": sum(s >= threshold for s in benign_scores) / len(benign_scores),
        "cv_auroc": auroc(pos_scores, benign_scores),
        "n_harmful": len(harmful),
        "n_benign": len(benign),
        "target_fpr": target_fpr,
        "category_fpr": category_fpr or {},
        "variant": chosen,
        "seed": seed,
        "layerguard_version": __version__,
    }
    return model, stats


def build_guard(
    lm: Any,
    out_dir: str | Path,
    *,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    target_fpr: float = 0.05,
    category_fpr: dict[str, float] | None = None,
    variant: Variant | Literal["auto"] = "auto",
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
    output_monitor: bool = False,
    monitor_prompts: int = 64,
    classifier: bool = True,
    tool_policy: Path | None = None,
    cv_folds: int = 5,
    conversation: bool = True,
) -> Path:
    """Fit and calibrate a guard for ``lm`` and write ``out_dir/guard.yaml``.

    Args:
        lm: The served model (a LoadedModel).
        out_dir: New directory for ``guard.yaml`` and artefacts.
        harmful: Training prompts the guard must flag.
        benign: Training prompts it must let through: harmless and borderline-benign.
        target_fpr: False-positive rate allowed on benign training prompts.
        category_fpr: Per-category targets (category name -> FPR); benign prompts are
            grouped by the hazard category they resemble.
        variant: ``centroid`` (training-free direction + 1-D logistic), ``probe`` (logistic
            regression on the full state) or ``auto`` (whichever scores higher on the inner holdout).
        layers: Candidate layers (default: 25%..85% of depth).
        batch_size: Prompts per forward pass.
        seed: Seed of the inner train/holdout split used to choose the layer.
        progress: Show progress bars.
        log: Receives progress messages.
        output_monitor: Also train the output monitor on the model's own answers.
        monitor_prompts: Harmful prompts answered to train it (and half as many benign).
        classifier: Also train the constitutional classifier (MiniLM embeddings + sigmoid head).
        tool_policy: A tool-call policy YAML to copy into the guard (enables the tool gate).
        cv_folds: Folds of the out-of-fold scores that thresholds are calibrated on.
        conversation: Add the conversation ring (risk accumulated over turns, bursts of blocks).

    Raises:
        InvalidInputError: held-out samples, too little data, or an existing guard in out_dir.
    """
    import torch

    out = Path(out_dir)
    if (out / "guard.yaml").exists():
        raise InvalidInputError(f"{out} already holds a guard", hint="choose a new --out directory")
    assert_not_held_out([*harmful, *benign], "building a guard")
    if len(harmful) < 8 or len(benign) < 8:
        raise InvalidInputError("building a guard needs at least 8 harmful and 8 benign training prompts")
    t0 = time.time()
    n = lm.n_layers
    cand = list(layers) if layers is not None else list(range(max(1, n // 4), max(2, int(0.85 * n))))
    model, stats = fit_latent_model(
        lm,
        harmful,
        benign,
        cand,
        variant,
        target_fpr=target_fpr,
        category_fpr=category_fpr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        cv_folds=cv_folds,
        log=log,
    )
    stats["duration_s"] = round(time.time() - t0, 1)
    stats["sources"] = sorted({s.source for s in [*harmful, *benign]})
    model.meta = dict(stats)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "latent")
    torch.manual_seed(seed)
    rings = [RingConfig(name="decode")]
    if classifier:
        rings.append(_build_classifier(out, harmful, benign, target_fpr, seed, stats, log))
    rings.append(RingConfig(name="latent", params={"path": "latent"}))
    if tool_policy is not None:
        rings.append(_copy_tool_policy(tool_policy, out))
    if output_monitor:
        kw: dict[str, Any] = {"batch_size": batch_size, "progress": progress, "log": log}
        rings.append(_build_output_monitor(lm, out, harmful, benign, monitor_prompts, target_fpr, stats, **kw))
    if conversation:
        rings.append(RingConfig(name="conversation", params={"decay": 0.8, "floor": 0.1, "escalate_at": 1.0}))
    cfg = GuardConfig(
        model=ModelRef(name=lm.name, weights_sha256=lm.weights_sha256, template_sha256=lm.template_hash),
        rings=rings,
        build=stats,
    )
    cfg.save(out / "guard.yaml")
    return out / "guard.yaml"


def _copy_tool_policy(tool_policy: Path, out: Path) -> RingConfig:
    """Check the policy and copy it into the guard (enables the tool gate)."""
    import shutil

    from layerguard.guard.rings.tool_gate import ToolPolicy

    ToolPolicy.from_yaml(tool_policy)  # fail before writing anything more
    shutil.copy(tool_policy, out / "tool_policy.yaml")
    return RingConfig(name="tool_gate", params={"policy": "tool_policy.yaml"})


def _build_classifier(
    out: Path,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    target_fpr: float,
    seed: int,
    stats: dict[str, Any],
    log: Callable[[str], None],
) -> RingConfig:
    """Train the constitutional classifier into ``out/classifier``; its statistics go into ``stats``."""
    from layerguard.guard.rings.classifier import Constitution, train_classifier

    log("training the constitutional classifier")
    clf = train_classifier(Constitution.load(None), list(harmful), list(benign), target_fpr=target_fpr, seed=seed)
    clf.save(out / "classifier")
    stats["classifier"] = dict(clf.stats)
    return RingConfig(name="classifier", params={"path": "classifier"})


def _build_output_monitor(
    lm: Any,
    out: Path,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    monitor_prompts: int,
    target_fpr: float,
    stats: dict[str, Any],
    *,
    batch_size: int,
    progress: bool | None,
    log: Callable[[str], None],
) -> RingConfig:
    """Train the output monitor (and read the refusal tokens) on the model's own answers."""
    from layerguard.directions.refusal import derive_refusal_tokens
    from layerguard.guard.rings.output_monitor import build_output_monitor
    from layerguard.models.generate import generate

    log(f"training the output monitor on answers to {monitor_prompts} harmful and as many benign prompts")
    mon_harmful = [s.conversation() for s in spread(harmful, monitor_prompts)]
    # harmless *and* borderline answers: a monitor that never saw "how do I kill a process"
    # answered halts it (62% of borderline answers when it was trained on harmless ones only)
    mon_benign = [s.conversation() for s in spread(benign, monitor_prompts)]
    kw: dict[str, Any] = {"max_new_tokens": 48, "batch_size": batch_size, "progress": progress}
    answers = (
        generate(lm, mon_harmful, desc="harmful answers", **kw),
        generate(lm, mon_benign, desc="benign answers", **kw),
    )
    mon = build_output_monitor(
        lm, mon_harmful, mon_benign, target_fpr=target_fpr, batch_size=batch_size, responses=answers
    )
    mon.save(out / "output_monitor")
    stats["output_monitor"] = {"layer": mon.layer, "threshold": mon.threshold, **mon.meta}
    # the same answers give the model's refusal tokens (the red team's refusal score reads them)
    try:
        rt = derive_refusal_tokens(lm, [*mon_harmful, *mon_benign], responses=[*answers[0], *answers[1]])
        stats["refusal_tokens"] = {"ids": list(rt.ids), "strings": list(rt.strings)}
    except InvalidInputError as exc:
        log(f"no refusal tokens: {exc}")
    return RingConfig(name="output_monitor", params={"path": "output_monitor"})


def local_backend_for(guard: Guard, lm: Any) -> Any:
    """A local backend that keeps what the guard's rings read and runs its stream monitor."""
    from layerguard.guard.guarded import local_backend

    return local_backend(guard, lm)


def load_guard(path: str | Path, lm: Any | None = None, *, text_only: bool = False) -> Guard:
    """Load ``guard.yaml`` into a :class:`Guard`; rings are built from the ring registry by name.

    Args:
        path: The guard config.
        lm: The served model; required for rings that read states unless they come with each exchange.
        text_only: Upstream backend: rings that read the model's states are skipped and listed
            as unavailable in every verdict.

    Raises:
        InvalidInputError: unknown ring names, or a guard built for another model.
    """
    from layerguard.guard.registry import build_ring, ring_spec

    cfg = GuardConfig.load(path)
    base = Path(path).parent
    if lm is not None and lm.weights_sha256 != cfg.model.weights_sha256:
        raise InvalidInputError(
            f"guard {path} was built for {cfg.model.name}@{cfg.model.weights_sha256[:12]}, not {lm.model_id}",
            hint="build a guard for this model: layerguard guard build --model ...",
        )
    rings: list[Ring] = []
    unavailable: list[str] = []
    for rc in cfg.rings:
        spec = ring_spec(rc.name, where=str(path))
        if not rc.enabled:
            continue
        if text_only and spec.reads_states:
            unavailable.append(rc.name)
            continue
        rings.append(build_ring(rc.name, rc.params, base, lm, where=str(path)))
    return Guard(rings, stop_early=cfg.stop_early, unavailable=unavailable)
