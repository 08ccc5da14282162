"""The refusal cliff: a refusal-intention probe read at every token of prompt and answer.

The probe is logistic regression on the residual stream at one layer at the
post-instruction (template) positions, labelled by the model's own behaviour: prompts whose
greedy answer the text judge marks as a refusal are positives, answered prompts negatives.
The layer is chosen by AUROC on an inner holdout of the training prompts.

Read at every token of template + prompt + generated answer, it gives a curve per prompt.
Reasoning models have been reported to keep a high refusal intention through their
reasoning and lose it at the last tokens before the answer; :func:`detect_cliff` finds such
a late drop in a curve. :func:`run_cliff_study` draws the curves for prompts the model
refuses, harmless prompts it answers and harmful prompts an attack made it answer, and
trains a :class:`~layerguard.guard.rings.refusal_cliff.RefusalCliffSignal` for the guard.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.refusal_cliff import RefusalCliffSignal, prompt_response_states
from layerguard.stats import auroc, rate
from layerguard.version import __version__

# single-turn attacks first (shorter prompts), then the forged-turn one
DEFAULT_ATTACKS = ("refusal_suppression", "prefix_injection", "roleplay", "authority", "dan", "forged_turns")


@dataclass
class Cliff:
    """Result of :func:`detect_cliff` (positions index the curve)."""

    fired: bool
    size: float  # peak - end value
    peak: float
    peak_pos: int
    end_value: float
    drop_pos: int | None  # first position after the peak below ``peak - min_drop``


def detect_cliff(
    curve: Sequence[float],
    *,
    start: int = 0,
    stop: int | None = None,
    end: int | None = None,
    window: int = 1,
    min_peak: float = 0.5,
    min_drop: float = 0.3,
) -> Cliff:
    """Find a late drop: the peak of ``curve[start:stop]`` minus the mean of ``curve[end:end+window]``.

    Args:
        curve: Refusal intention per token (probabilities).
        start: First position of the region where the intention should be high (e.g. ``t_inst``).
        stop: End (exclusive) of that region; default ``end``.
        end: Where the "end" value is read (e.g. the last template token or the first
            generated token); default ``len(curve) - window``.
        window: Tokens averaged for the end value.
        min_peak: The peak must reach this for the detector to fire.
        min_drop: The drop (peak - end value) must reach this for the detector to fire.

    Raises:
        InvalidInputError: an empty region or a window outside the curve.
    """
    n = len(curve)
    end = n - window if end is None else end
    stop = end if stop is None else stop
    if window < 1 or not 0 <= end or end + window > n:
        raise InvalidInputError(f"end window [{end}, {end + window}) is outside a curve of {n} tokens")
    if not 0 <= start < stop <= n:
        raise InvalidInputError(f"peak region [{start}, {stop}) is empty or outside a curve of {n} tokens")
    region = list(curve[start:stop])
    peak = max(region)
    peak_pos = start + region.index(peak)
    end_value = sum(curve[end : end + window]) / window
    size = peak - end_value
    drop_pos = next((i for i in range(peak_pos + 1, n) if curve[i] < peak - min_drop), None)
    return Cliff(peak >= min_peak and size >= min_drop, float(size), float(peak), peak_pos, float(end_value), drop_pos)


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
    from layerguard.directions.refusal import is_refusal_text
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


@dataclass
class CurveRecord:
    """One prompt's per-token refusal-intention curve and its landmarks."""

    group: str
    sample_id: str
    attack: str
    refused: bool
    answer: str
    scores: list[float]
    n_prompt: int
    t_inst: int | None
    instruction: tuple[int, int] | None
    signal_score: float | None = None  # RefusalCliffSignal score of the answer, when one was given


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


def cliff_of(rec: CurveRecord, *, mode: str = "generation", window: int = 4, **kw: Any) -> Cliff:
    """Apply :func:`detect_cliff` to a record.

    ``mode="template"``: peak over ``t_inst`` .. the second-to-last template token, end =
    the last template token. ``mode="generation"``: peak over ``t_inst`` .. the last
    template token, end = mean of the first ``window`` generated tokens (fewer if the
    answer is shorter; the last template token when there is no answer). ``mode="post_inst"``:
    as ``generation`` but the peak is taken over the template tokens after ``t_inst`` only,
    the positions the probe was trained on.
    """
    start = rec.t_inst if rec.t_inst is not None else rec.n_prompt - 1
    if mode == "post_inst":  # the probe's own training positions only: t_inst excluded
        start, mode = min(start + 1, rec.n_prompt - 1), "generation"
    if mode == "template":
        return detect_cliff(rec.scores, start=min(start, rec.n_prompt - 2), stop=rec.n_prompt - 1, end=rec.n_prompt - 1)
    if mode != "generation":
        raise InvalidInputError(f"unknown cliff mode {mode!r}", hint="use template, generation or post_inst")
    n_gen = len(rec.scores) - rec.n_prompt
    if n_gen == 0:
        return detect_cliff(rec.scores, start=start, stop=rec.n_prompt, end=rec.n_prompt - 1, **kw)
    return detect_cliff(rec.scores, start=start, stop=rec.n_prompt, end=rec.n_prompt, window=min(window, n_gen), **kw)


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


def _val_groups(
    lm: Any, harmful: Sequence[Sample], harmless: Sequence[Sample], cfg: CliffConfig, log: Callable[[str], None]
) -> list[tuple[str, Sample, str, list[dict[str, str]], str, bool]]:
    """(group, sample, attack, conversation, answer, refused) for the shown groups."""
    from layerguard.directions.refusal import is_refusal_text
    from layerguard.models.generate import generate
    from layerguard.redteam.attacks import get_attack

    kw: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size}
    out: list[tuple[str, Sample, str, list[dict[str, str]], str, bool]] = []
    h_convs = [s.conversation() for s in harmful]
    h_ans = generate(lm, h_convs, **kw)
    b_convs = [s.conversation() for s in harmless]
    b_ans = generate(lm, b_convs, **kw)
    refused_direct = []
    for s, c, a in zip(harmful, h_convs, h_ans, strict=True):
        r = is_refusal_text(a)
        out.append(("refused" if r else "harmful_answered", s, "direct", c, a, r))
        if r:
            refused_direct.append(s)
    for s, c, a in zip(harmless, b_convs, b_ans, strict=True):
        r = is_refusal_text(a)
        out.append(("harmless_refused" if r else "complied", s, "direct", c, a, r))
    log(f"direct: {len(refused_direct)}/{len(harmful)} harmful refused; trying attacks on them")
    todo = list(refused_direct)
    for name in cfg.attacks:
        if not todo:
            break
        attack = get_attack(name)
        convs = [attack(s) for s in todo]
        answers = generate(lm, convs, **kw)
        still = []
        for s, c, a in zip(todo, convs, answers, strict=True):
            if is_refusal_text(a):
                still.append(s)
            else:
                out.append(("jailbroken", s, name, c, a, False))
        log(f"{name}: {len(todo) - len(still)} jailbroken, {len(still)} still refused")
        todo = still
    return out


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


def resummarize(out_dir: Path) -> dict[str, Any]:
    """Recompute ``cliff.json``'s per-group numbers and ``cliff.png`` from the recorded curves (no model run).

    Used when the summary gains a statistic; the curves, the probe and the signal are unchanged.
    """
    result = json.loads((out_dir / "cliff.json").read_text())
    cfg_d = dict(result["config"])
    cfg_d["attacks"] = tuple(cfg_d["attacks"])
    cfg = CliffConfig(**cfg_d)
    recs = load_curves(out_dir / "curves.jsonl")
    summary = summarize_curves(recs, cfg)
    threshold = result["signal"]["threshold"]
    for g in summary:
        mine = [r for r in recs if r.group == g]
        summary[g]["signal_fire_rate"] = rate([(r.signal_score or 0.0) >= threshold for r in mine])
    result["groups"] = summary
    result["resummarized_with"] = __version__
    (out_dir / "cliff.json").write_text(json.dumps(result, indent=2, default=float))
    plot_curves(
        summary,
        out_dir / "cliff.png",
        f"{result['model']['name']}: refusal intention per token (layer {result['probe']['layer']})",
    )
    return result


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


def run_cliff_study(
    lm: Any,
    out_dir: Path,
    cfg: CliffConfig,
    *,
    log: Callable[[str], None] = lambda m: None,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the probe on train prompts, draw curves on val prompts, train the guard signal.

    Writes ``cliff.json`` (numbers), ``cliff.png`` (figure), ``curves.jsonl`` (every curve)
    and ``signal/`` (the :class:`RefusalCliffSignal`) into ``out_dir``.
    """
    from layerguard.data.loaders import assert_not_held_out, load_dataset

    t0 = time.time()
    tr_h, tr_b = load_dataset(cfg.train_harmful)[: cfg.n_train], load_dataset(cfg.train_harmless)[: cfg.n_train]
    va_h, va_b = load_dataset(cfg.val_harmful)[: cfg.n_val], load_dataset(cfg.val_harmless)[: cfg.n_val]
    assert_not_held_out([*tr_h, *tr_b, *va_h, *va_b], "the refusal-cliff study")
    log(f"answering {len(tr_h)} + {len(tr_b)} training prompts and fitting the probe")
    probe, tr_answers = train_cliff_probe(
        lm,
        tr_h,
        tr_b,
        layers=None if cfg.layer is None else [cfg.layer],
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
    )
    log(
        f"probe at layer {probe.layer} (inner-holdout AUROC {probe.meta['layer_auroc_inner_holdout'][probe.layer]:.3f})"
    )

    from layerguard.directions.refusal import is_refusal_text

    pos, neg = [], []
    for s, a in zip([*tr_h, *tr_b], tr_answers, strict=True):
        prs = prompt_response_states(lm, s.conversation(), a, probe.layer)
        if s.label == "harmful" and not is_refusal_text(a):
            pos.append(prs)
        else:
            neg.append(prs)
    signal = calibrate_signal(probe, pos, neg)
    signal.save(out_dir / "signal")
    log(
        f"signal threshold {signal.threshold:.3f}, train TPR {signal.meta['train_tpr']}, FPR {signal.meta['train_fpr']}"
    )

    log(f"answering {len(va_h)} harmful + {len(va_b)} harmless validation prompts")
    recs = [
        token_curve(lm, probe, conv, ans, signal=signal, group=g, sample_id=s.id, attack=atk, refused=r)
        for g, s, atk, conv, ans, r in _val_groups(lm, va_h, va_b, cfg, log)
    ]
    summary = summarize_curves(recs, cfg)
    for g in summary:
        mine = [r for r in recs if r.group == g]
        summary[g]["signal_fire_rate"] = rate([(r.signal_score or 0.0) >= signal.threshold for r in mine])
    result = {
        "model": {"id": lm.model_id, "name": lm.name, "weights_sha256": lm.weights_sha256, "n_layers": lm.n_layers},
        "config": asdict(cfg),
        "probe": probe.meta,
        "signal": {
            "threshold": signal.threshold,
            **{k: v for k, v in signal.meta.items() if k.startswith(("train", "n_", "target"))},
        },
        "groups": summary,
        "layerguard_version": __version__,
        "seed": cfg.seed,
        "duration_s": round(time.time() - t0, 1),
        **(extra_meta or {}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "curves.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in recs))
    (out_dir / "cliff.json").write_text(json.dumps(result, indent=2, default=float))
    plot_curves(summary, out_dir / "cliff.png", f"{lm.name}: refusal intention per token (layer {probe.layer})")
    return result
