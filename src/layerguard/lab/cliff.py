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

The pieces live in :mod:`layerguard.lab.cliff_detect` (the detector), :mod:`layerguard.lab.cliff_probe`
(the probe and the signal) and :mod:`layerguard.lab.cliff_curves` (settings, summary, figure);
their public names are re-exported here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.guard.rings.refusal_cliff import prompt_response_states
from layerguard.lab.cliff_curves import (
    DEFAULT_ATTACKS,
    GROUP_STYLE,
    CliffConfig,
    load_curves,
    plot_curves,
    summarize_curves,
)
from layerguard.lab.cliff_detect import Cliff, CurveRecord, cliff_of, detect_cliff
from layerguard.lab.cliff_probe import (
    CliffProbe,
    calibrate_signal,
    fit_cliff_probe,
    post_inst_states,
    token_curve,
    train_cliff_probe,
)
from layerguard.stats import rate
from layerguard.version import __version__

__all__ = [
    "DEFAULT_ATTACKS",
    "GROUP_STYLE",
    "Cliff",
    "CliffConfig",
    "CliffProbe",
    "CurveRecord",
    "calibrate_signal",
    "cliff_of",
    "detect_cliff",
    "fit_cliff_probe",
    "load_curves",
    "plot_curves",
    "post_inst_states",
    "resummarize",
    "run_cliff_study",
    "summarize_curves",
    "token_curve",
    "train_cliff_probe",
]


def _val_groups(
    lm: Any, harmful: Sequence[Sample], harmless: Sequence[Sample], cfg: CliffConfig, log: Callable[[str], None]
) -> list[tuple[str, Sample, str, list[dict[str, str]], str, bool]]:
    """(group, sample, attack, conversation, answer, refused) for the shown groups."""
    from layerguard.judges import is_refusal as is_refusal_text
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

    from layerguard.judges import is_refusal as is_refusal_text

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
