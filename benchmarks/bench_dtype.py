"""bfloat16 vs float32 on the CPU: speed of generation and of the guard's pass, and how far bf16 drifts.

Issue 14 lists lower-precision matmuls as a lever, to be kept "only where the answers and the
states the rings read stay within a stated tolerance of fp32". This script measures both
sides in one run on one machine, the two dtypes one after the other on the same prompts:

- **generation**: the audit's prompts (harmful val prompts through ``--attacks``, one call per
  attack with the attack's prefix cache, batch 8: the red-team runner's path), greedy. Reported:
  seconds and tokens/s per dtype; answers identical to fp32's; the refusal judge's verdict on
  each answer (does bf16 change whether the model refused?).
- **guard pass**: a guard (``--guard``, default the published one for the model) scores each
  of those prompts with its fp32 answer (``GuardedModel.score_many``: input and answer rings,
  the audit's guarded pass), plus ``--n-val`` harmful, harmless and borderline *val* prompts
  with no answer (the input rings alone, as a service check). Reported: seconds per dtype, the
  largest and mean absolute difference of each ring's score, and decisions that differ.

Tolerance is not decided here: the printed drift is the evidence for or against using bf16.
Only val splits are used (never HarmBench test or StrongREJECT).

    python benchmarks/bench_dtype.py [--model qwen2.5-coder-0.5b] [--n 8] [--n-val 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import by_attack, n_tokens  # noqa: E402

from layerguard.data.builtin import load_builtin  # noqa: E402
from layerguard.data.samples import spread  # noqa: E402
from layerguard.guard.guarded import GuardedModel  # noqa: E402
from layerguard.guard.types import Exchange  # noqa: E402
from layerguard.judges import refusal_judge  # noqa: E402
from layerguard.models import load_model  # noqa: E402
from layerguard.redteam.attacks import get_attack  # noqa: E402

PUBLISHED = Path(__file__).resolve().parents[1] / "src/layerguard/guard/published_guards"


def _prompt(conv: list[dict[str, str]]) -> str:
    return next(m["content"] for m in reversed(conv) if m["role"] == "user")


def _drift(a: list[Any], b: list[Any]) -> dict[str, Any]:
    """Per ring: largest and mean |score difference|; decisions that differ."""
    rings = sorted({k for o in a for k in o.ring_scores} & {k for o in b for k in o.ring_scores})
    out: dict[str, Any] = {"decisions_differ": sum(x.decision != y.decision for x, y in zip(a, b, strict=True))}
    for r in rings:
        d = [
            abs(x.ring_scores[r] - y.ring_scores[r])
            for x, y in zip(a, b, strict=True)
            if x.ring_scores.get(r) is not None and y.ring_scores.get(r) is not None
        ]
        flags = sum(bool(x.ring_flags.get(r)) != bool(y.ring_flags.get(r)) for x, y in zip(a, b, strict=True))
        out[r] = {
            "max_abs": max(d) if d else None,
            "mean_abs": statistics.fmean(d) if d else None,
            "flags_differ": flags,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--guard", type=Path, default=None, help="guard.yaml (default: the published guard)")
    ap.add_argument("--n", type=int, default=8, help="Harmful val prompts per attack.")
    ap.add_argument("--attacks", default="direct,dan,many_shot_16")
    ap.add_argument("--n-val", type=int, default=32, help="Val prompts per label for the input-only guard pass.")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = ap.parse_args()
    guard = args.guard or PUBLISHED / args.model / "guard.yaml"

    samples = spread(load_builtin("harmful", "val"), args.n)
    groups = {a: [get_attack(a)(s) for s in samples] for a in args.attacks.split(",")}
    convs = [c for g in groups.values() for c in g]
    val = [
        s.prompt
        for label in ("harmful", "harmless", "borderline")
        for s in spread(load_builtin(label, "val"), args.n_val)
    ]
    mnt, bs = args.max_new_tokens, args.batch_size
    res: dict[str, Any] = {
        "model": args.model,
        "guard": str(guard),
        "attacks": list(groups),
        "torch": torch.__version__,
    }
    res["threads"] = torch.get_num_threads()
    answers: dict[str, list[str]] = {}
    outcomes: dict[str, dict[str, list[Any]]] = {}
    for dtype in ("float32", "bfloat16"):
        lm = load_model(args.model, dtype=dtype, progress=False)
        by_attack(lm, {"warm": convs[:2]}, 4, 2, prefix=False)  # warm-up
        t = time.perf_counter()
        answers[dtype] = by_attack(lm, groups, mnt, bs, prefix=True)
        gen_s = time.perf_counter() - t
        toks = n_tokens(lm, answers[dtype])
        gm = GuardedModel.load(guard, lm)
        exchanges = [Exchange.from_prompt(_prompt(c)) for c in convs]
        t = time.perf_counter()
        with_answers = gm.score_many(exchanges, answers["float32"], batch_size=bs)
        pass_s = time.perf_counter() - t
        t = time.perf_counter()
        inputs = gm.score_many([Exchange.from_prompt(p) for p in val], [None] * len(val), batch_size=bs)
        check_s = time.perf_counter() - t
        outcomes[dtype] = {"answers": with_answers, "inputs": inputs}
        res[dtype] = {
            "generation_s": round(gen_s, 2),
            "tokens": toks,
            "tokens_per_s": toks / gen_s,
            "guard_pass_s": round(pass_s, 2),
            "input_checks_s": round(check_s, 2),
        }
        print(f"{dtype}: generation {gen_s:.1f} s ({toks / gen_s:.2f} tokens/s), guard pass {pass_s:.1f} s, "
              f"{len(val)} input checks {check_s:.1f} s", flush=True)  # fmt: skip
        del gm, lm

    f32, b16 = res["float32"], res["bfloat16"]
    same = sum(a == b for a, b in zip(answers["float32"], answers["bfloat16"], strict=True))
    ref_a = [refusal_judge(_prompt(c), a).refused for c, a in zip(convs, answers["float32"], strict=True)]
    ref_b = [refusal_judge(_prompt(c), a).refused for c, a in zip(convs, answers["bfloat16"], strict=True)]
    res["answers"] = {
        "n": len(convs),
        "identical": same,
        "refusal_verdict_differs": sum(x != y for x, y in zip(ref_a, ref_b, strict=True)),
        "refused_float32": sum(ref_a),
        "refused_bfloat16": sum(ref_b),
    }
    res["drift_guard_pass"] = _drift(outcomes["float32"]["answers"], outcomes["bfloat16"]["answers"])
    res["drift_input_checks"] = _drift(outcomes["float32"]["inputs"], outcomes["bfloat16"]["inputs"])
    res["n_input_checks"] = len(val)
    print()
    print("| stage | float32 s | bfloat16 s | speed-up |")
    print("|---|---|---|---|")
    for key, name in (("generation_s", "generation"), ("guard_pass_s", "guard pass"), ("input_checks_s", "checks")):
        print(f"| {name} | {f32[key]:.1f} | {b16[key]:.1f} | {f32[key] / b16[key]:.2f}x |")
    a = res["answers"]
    print(f"\nanswers identical to fp32: {a['identical']}/{a['n']}; refusal verdict differs on "
          f"{a['refusal_verdict_differs']} ({a['refused_float32']} vs {a['refused_bfloat16']} refused)")  # fmt: skip
    for key in ("drift_guard_pass", "drift_input_checks"):
        print(f"{key}: {json.dumps(res[key])}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
