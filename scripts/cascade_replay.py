"""Replay the classifier/latent cascade on the raw scores a ``guard eval`` stored.

``guard eval`` keeps every system's score on every prompt (``eval.json`` -> ``scores``), in
the same prompt order for each system. This script recomputes, from those scores alone,
what the stack would have decided under three rules, without running a model:

- ``latent alone``: the latent ring at its threshold;
- ``either``: the classifier or the latent ring at its threshold (the stack before the cascade);
- ``cascade below=B``: the latent ring at its threshold, or the classifier where the latent
  score is at least ``B`` (a :class:`layerguard.guard.types.SecondOpinion`).

Each ring's threshold is recovered from ``eval.json`` itself: the interval of thresholds that
reproduces the ring's flagged count on every set (the script says if none does).

    python scripts/cascade_replay.py docs/figures/guard-eval-qwen-v2.json [--below 0.05,0.15,0.3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LATENT, CLASSIFIER = "latent in the stack", "classifier in the stack"
PLAIN = ("harmful_val", "borderline_val", "harmless_val", "harmbench_val")
POOLED = ("harmful_val", "borderline_val", "harmless_val")


def recovered_threshold(result: dict, system: str) -> float:
    """A threshold reproducing ``system``'s flagged count on every set (the lowest such)."""
    lo, hi = -np.inf, np.inf
    for name, scores in result["scores"][system].items():
        rates = result["systems"][system]["rates"][name]
        k = next(iter(rates.values()))["k"]
        s = sorted(scores, reverse=True)
        if k > 0:
            hi = min(hi, s[k - 1])
        if k < len(s):
            lo = max(lo, s[k])
    if not lo < hi:
        raise SystemExit(f"error: no single threshold reproduces {system!r}'s rates (stored scores are rounded?)")
    return float(np.nextafter(lo, np.inf))


def main() -> None:
    """Print the replay table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_json", type=Path)
    ap.add_argument("--below", default="0.05,0.15,0.3", help="band edges to replay, comma-separated")
    ap.add_argument("--classifier-thresholds", default="0.8,0.85", help="raised classifier thresholds to compare")
    args = ap.parse_args()
    result = json.loads(args.eval_json.read_text())
    sc = result["scores"]
    tl, tc = recovered_threshold(result, LATENT), recovered_threshold(result, CLASSIFIER)
    print(f"recovered thresholds: latent {tl:.4f}, classifier {tc:.4f}")

    def arrays(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([sc[LATENT][n] for n in names]), np.concatenate([sc[CLASSIFIER][n] for n in names])

    wrapped = [n for n in sc[LATENT] if "+" in n]
    rules = {"latent alone": lambda lat, clf: lat >= tl, "either (before)": lambda lat, clf: (lat >= tl) | (clf >= tc)}
    for b in (float(x) for x in args.below.split(",")):
        rules[f"cascade below={b}"] = lambda lat, clf, b=b: (lat >= tl) | ((clf >= tc) & (lat >= b))
    for t in (float(x) for x in args.classifier_thresholds.split(",")):
        rules[f"either, classifier >= {t}"] = lambda lat, clf, t=t: (lat >= tl) | (clf >= t)
    cols = [*PLAIN, *(f"wrapped {n.split('_')[0]}" for n in POOLED)]
    rows = []
    for name, rule in rules.items():
        vals = [float(rule(*arrays([n])).mean()) for n in PLAIN]
        vals += [float(rule(*arrays([w for w in wrapped if w.startswith(n + "+")])).mean()) for n in POOLED]
        rows.append({"rule": name, **dict(zip(cols, vals, strict=True))})
    print("| rule | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        print(f"| {r['rule']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
