"""Quality of each ring alone and stacked, against baselines, on plain and jailbreak-wrapped prompts.

Sets: the project's validation split (harmful, harmless, borderline-benign) and HarmBench
*val* (harmful); the harmful and harmless validation prompts again inside jailbreak
wrappers (role-play, DAN-style persona, base64, forged assistant turns). None of these
were used to build or calibrate the guard. Every system is judged at its own calibrated
threshold: TPR on harmful sets, FPR on benign sets, AUROC from the scores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from layerguard.data.builtin import load_builtin
from layerguard.guard.calibration import threshold_for_fpr
from layerguard.guard.guarded import GuardedModel
from layerguard.guard.pipeline import Guard
from layerguard.guard.types import Exchange, Message, Ring
from layerguard.progress import progress_bar
from layerguard.redteam.attacks import get_attack
from layerguard.stats import auroc, rate

DEFAULT_WRAPPERS = ("roleplay", "dan", "base64", "forged_turns")


def _exchange(conv: list[dict[str, str]]) -> Exchange:
    return Exchange(messages=[Message(role=m["role"], content=m["content"]) for m in conv])  # type: ignore[arg-type]


def eval_sets(wrappers: Sequence[str], include_harmbench: bool = True) -> dict[str, tuple[bool, list[Any]]]:
    """Set name -> (is_harmful, conversations)."""
    hv, bv, dv = load_builtin("harmful", "val"), load_builtin("harmless", "val"), load_builtin("borderline", "val")
    sets: dict[str, tuple[bool, list[Any]]] = {
        "harmful_val": (True, [s.conversation() for s in hv]),
        "harmless_val": (False, [s.conversation() for s in bv]),
        "borderline_val": (False, [s.conversation() for s in dv]),
    }
    if include_harmbench:
        from layerguard.data.loaders import load_harmbench

        sets["harmbench_val"] = (True, [s.conversation() for s in load_harmbench("val")])
    for w in wrappers:
        attack = get_attack(w)
        sets[f"harmful_val+{w}"] = (True, [attack(s) for s in hv])
        sets[f"harmless_val+{w}"] = (False, [attack(s) for s in bv])
    return sets


def embedding_baseline(target_fpr: float) -> Callable[[list[str]], list[float]] | None:
    """MiniLM embeddings + logistic regression on the training split, thresholded like the guard."""
    from layerguard.guard.encoders import default_encoder
    from layerguard.guard.probe import LogisticProbe

    try:
        enc = default_encoder()
    except Exception:  # package missing: the baseline is reported as unavailable
        return None
    import torch

    pos = [s.prompt for s in load_builtin("harmful", "train")]
    neg = [s.prompt for s in load_builtin("harmless", "train") + load_builtin("borderline", "train")]
    x = enc.encode(pos + neg)
    probe = LogisticProbe.fit(x, torch.tensor([1.0] * len(pos) + [0.0] * len(neg)))
    thr = threshold_for_fpr(probe.predict(x[len(pos) :]).tolist(), target_fpr)

    def score(texts: list[str]) -> list[float]:
        s = probe.predict(enc.encode(texts)).tolist()
        return [v / (2 * thr) if v < thr else 0.5 + (v - thr) / (2 * (1 - thr)) for v in s]  # 0.5 = threshold

    return score


def evaluate_guard(
    lm: Any,
    guarded: GuardedModel,
    *,
    baselines: Sequence[Ring] = (),
    target_fpr: float = 0.05,
    wrappers: Sequence[str] = DEFAULT_WRAPPERS,
    include_harmbench: bool = True,
    refusal_tokens: Any = None,
    progress: bool | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Score every set with every system; return per-system metrics.

    Systems: the guard's stack (its decision, as the service decides), each ring inside the
    stack (after the rings before it, e.g. on decoded text), each input ring alone, each
    baseline ring alone, an embedding baseline and the model's own refusal.

    Args:
        lm: The served model.
        guarded: The guard in front of ``lm``.
        baselines: Rings measured alone as baselines, never stacked (e.g. a keyword filter).
        target_fpr: Used to calibrate the embedding baseline like the guard.
        wrappers: Attack names wrapping the validation prompts.
        include_harmbench: Add HarmBench val (harmful).
        refusal_tokens: The model's refusal tokens, for the "model's own refusal" baseline.
        progress: Show progress bars.
        batch_size: Prompts per forward pass.
    """
    from layerguard.directions.refusal import log_odds
    from layerguard.models.generate import last_logits

    t0 = time.time()
    sets = eval_sets(wrappers, include_harmbench)
    emb = embedding_baseline(target_fpr)
    systems: dict[str, dict[str, list[tuple[float, bool]]]] = {}
    stack_name = "stack (" + "+".join(guarded.guard.names) + ")"
    alone = [(f"{r.name} alone", r) for r in guarded.guard.at("input")]
    alone += [(f"baseline: {r.name} filter", r) for r in baselines]

    def add(system: str, set_name: str, score: float, flagged: bool) -> None:
        systems.setdefault(system, {}).setdefault(set_name, []).append((score, flagged))

    with progress_bar(total=len(sets), desc="guard eval", unit="set", enabled=progress) as bar:
        for set_name, (_, convs) in sets.items():
            outcomes = guarded.score_many([_exchange(c) for c in convs], [None] * len(convs), batch_size=batch_size)
            for o in outcomes:
                add(stack_name, set_name, o.verdict.score, o.decision != "allow")
                for v in o.verdict.rings:
                    add(f"{v.ring} in the stack", set_name, v.score, v.decision != "allow")
            for label, ring in alone:
                single = GuardedModel(Guard([ring]), lm=lm)
                for o in single.score_many([_exchange(c) for c in convs], [None] * len(convs), batch_size=batch_size):
                    add(label, set_name, o.verdict.score, o.decision != "allow")
            if emb is not None:
                for s in emb([_exchange(c).last_user for c in convs]):
                    add("baseline: MiniLM + logistic regression", set_name, s, s >= 0.5)
            if refusal_tokens is not None:
                lo = log_odds(last_logits(lm, convs, batch_size=batch_size), refusal_tokens.ids).tolist()
                for v in lo:
                    add("baseline: model's own refusal (first token)", set_name, 1 / (1 + math.exp(-v)), v > 0)
            bar.update(1)

    return {
        "sets": {k: {"harmful": h, "n": len(c)} for k, (h, c) in sets.items()},
        "systems": summarize(systems, sets),
        "duration_s": round(time.time() - t0, 1),
    }


def summarize(
    systems: dict[str, dict[str, list[tuple[float, bool]]]], sets: dict[str, tuple[bool, list[Any]]]
) -> dict[str, Any]:
    """Per system: TPR/FPR with Wilson intervals per set, and AUROCs of the natural pairs."""
    out: dict[str, Any] = {}
    pairs = [("harmful_val", "harmless_val"), ("harmful_val", "borderline_val"), ("harmbench_val", "harmless_val")]
    pairs += [(k, k.replace("harmful_val", "harmless_val")) for k in sets if k.startswith("harmful_val+")]
    for system, per_set in systems.items():
        entry: dict[str, Any] = {"rates": {}, "auroc": {}}
        for set_name, rows in per_set.items():
            r = rate([f for _, f in rows])
            entry["rates"][set_name] = {("tpr" if sets[set_name][0] else "fpr"): r}
        for p, n in pairs:
            if p in per_set and n in per_set:
                entry["auroc"][f"{p} vs {n}"] = auroc([s for s, _ in per_set[p]], [s for s, _ in per_set[n]])
        out[system] = entry
    return out


def markdown_table(result: dict[str, Any]) -> str:
    """The results as markdown: one row per system, one column per set."""
    sets = list(result["sets"])
    head = (
        "| system | "
        + " | ".join(f"{'TPR' if result['sets'][s]['harmful'] else 'FPR'} {s}" for s in sets)
        + " | AUROC harmful vs harmless | AUROC harmful vs borderline |"
    )
    lines = [head, "|" + "---|" * (len(sets) + 3)]
    for system, e in result["systems"].items():
        cells = []
        for s in sets:
            r = e["rates"].get(s)
            if r is None:
                cells.append("n/a")
                continue
            (v,) = r.values()
            cells.append(f"{v['rate']:.2f} [{v['lo']:.2f}, {v['hi']:.2f}]")
        a1 = e["auroc"].get("harmful_val vs harmless_val", math.nan)
        a2 = e["auroc"].get("harmful_val vs borderline_val", math.nan)
        lines.append(f"| {system} | " + " | ".join(cells) + f" | {a1:.3f} | {a2:.3f} |")
    return "\n".join(lines) + "\n"
