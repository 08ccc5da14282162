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

from layerguard.data.loaders import assert_not_held_out
from layerguard.data.samples import Sample, spread
from layerguard.directions.extract import diff_in_means
from layerguard.errors import InvalidInputError
from layerguard.guard.config import GuardConfig, ModelRef, RingConfig
from layerguard.guard.latent_fit import fit_latent_model
from layerguard.guard.pipeline import Guard
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.latent import LatentGuardModel, Variant
from layerguard.guard.types import Ring, SecondOpinion


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
    augment: int = 1,
    release: bool = False,
    second_opinion_fpr: float | None = 0.2,
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
        augment: Wrapped copies of each training prompt for the latent ring (training-family
            wrappers, on harmful and benign prompts alike; 0: plain prompts only).
        release: Switch the release option on in ``guard.yaml`` (benign requests the model
            leans to refuse are answered with its refusal direction ablated).
        second_opinion_fpr: With the classifier: its blocks stand only where the latent ring's
            score reaches the score that flags this share of benign training prompts out of
            fold (the latent ring's uncertain band); below it the latent ring overrules the
            classifier. None or 0: no cascade (either ring blocks alone).

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
    kw_fit: dict[str, Any] = {"batch_size": batch_size, "seed": seed, "progress": progress, "log": log}
    model, stats = fit_latent_model(
        lm, harmful, benign, cand, variant, target_fpr=target_fpr, category_fpr=category_fpr, cv_folds=cv_folds,
        augment=augment, band_fpr=second_opinion_fpr or target_fpr, **kw_fit,
    )  # fmt: skip
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
    model_ref = ModelRef(name=lm.name, weights_sha256=lm.weights_sha256, template_sha256=lm.template_hash)
    opinions = _cascade(stats["band"]) if classifier and second_opinion_fpr else []
    cfg = GuardConfig(model=model_ref, rings=rings, release=release, second_opinions=opinions, build=stats)
    cfg.save(out / "guard.yaml")
    return out / "guard.yaml"


def _cascade(band: dict[str, Any]) -> list[SecondOpinion]:
    """The classifier's blocks stand only where the latent ring's score reaches the band's edge."""
    note = f"latent out-of-fold: {band['benign_fpr']:.0%} of benign training prompts score at or above it"
    return [SecondOpinion(ring="classifier", by="latent", below=band["below"], note=note)]


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
    return Guard(
        rings,
        stop_early=cfg.stop_early,
        unavailable=unavailable,
        release=cfg.release,
        second_opinions=cfg.second_opinions,
    )
