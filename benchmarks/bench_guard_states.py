"""The guard's state read with and without the cached template opening, side by side.

``guard build`` reads its training prompts' states (every layer at ``t_inst`` and
``post_mean``, the candidate layers at every read position) in batched passes that stop after
the deepest layer read (:func:`layerguard.guard.states.prompt_states`); the audit's guarded
state pass and ``guard eval`` use the same function. Since 2026-12-03 a prompt that opens
with the chat template's default opening (system prompt + user header) reuses that opening's
key/value cache instead of recomputing it. This script times both paths on the same prompts
(a spread of the guard's own training set: plain prompts and their training-family wrapped
copies), in one process, alternating, and prints prompts/s, tokens/s, the ratio and the
largest relative difference between the two paths' states.

    python benchmarks/bench_guard_states.py [--model qwen2.5-coder-0.5b] [--n 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from layerguard.data.loaders import load_dataset
from layerguard.data.samples import spread
from layerguard.defaults import GUARD_BUILD
from layerguard.guard.latent_fit import reads_for, training_set
from layerguard.guard.states import encode_for_reads, opens_with, prompt_states, template_opening
from layerguard.models import load_model


def main() -> None:
    """Time both paths and print them side by side."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=256, help="Training prompts (half plain, half wrapped).")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    lm = load_model(args.model, progress=False)
    harmful = load_dataset(GUARD_BUILD.harmful)
    benign = [s for spec in GUARD_BUILD.benign for s in load_dataset(spec)]
    ts = training_set(spread(harmful, args.n // 4), spread(benign, args.n // 4), copies=1, seed=0)
    convs = ts.conversations
    n = lm.n_layers
    cand = list(range(max(1, n // 4), max(2, int(0.85 * n))))
    reads = sorted({*reads_for(cand), *reads_for(range(n), ("t_inst", "post_mean"))})
    enc = [encode_for_reads(lm, c) for c in convs]
    tokens = sum(len(p.input_ids) for p in enc)
    opening = template_opening(lm)
    cached = sum(opens_with(p, opening) for p in enc)
    print(
        f"model {lm.model_id}: {len(convs)} prompts ({sum(1 for w in ts.wrapper if w)} wrapped), {tokens} tokens, "
        f"{len(reads)} reads, batch {args.batch_size}, torch threads {torch.get_num_threads()}; template opening "
        f"{len(opening)} tokens, shared by {cached} prompts ({cached * len(opening) / tokens:.0%} of all tokens)"
    )
    prompt_states(lm, convs[:4], reads, batch_size=4, progress=False)  # warm-up
    times: dict[str, list[float]] = {"whole prompt": [], "cached opening": []}
    states = {}
    for _ in range(2):  # alternate, so a drift in machine speed hits both alike
        for name, flag in (("whole prompt", False), ("cached opening", True)):
            t = time.perf_counter()
            states[name] = prompt_states(
                lm, convs, reads, batch_size=args.batch_size, prefix_cache=flag, progress=False
            )
            times[name].append(time.perf_counter() - t)
    worst = max(
        float(
            (states["cached opening"][r] - states["whole prompt"][r]).abs().max()
            / states["whole prompt"][r].abs().max()
        )
        for r in reads
    )
    rows = []
    for name, ts_ in times.items():
        best = min(ts_)
        rows.append(
            {
                "variant": name,
                "seconds": round(best, 2),
                "prompts_per_s": len(convs) / best,
                "tokens_per_s": tokens / best,
            }
        )
        print(f"{name:16s} {best:8.1f} s   {len(convs) / best:6.2f} prompts/s   {tokens / best:7.1f} prompt tokens/s")
    ratio = rows[0]["seconds"] / rows[1]["seconds"]
    print(f"cached opening / whole prompt: {ratio:.2f}x faster; largest relative difference in states {worst:.1e}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": lm.model_id,
                    "prompts": len(convs),
                    "tokens": tokens,
                    "reads": len(reads),
                    "opening_tokens": len(opening),
                    "prompts_with_opening": cached,
                    "batch_size": args.batch_size,
                    "rows": rows,
                    "speedup": ratio,
                    "max_relative_difference": worst,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
