"""Head-patching sweep: layerguard's batched engine vs a naive one-head-at-a-time loop.

Both patch the clean (harmful) ``z`` of every head, at ``t_inst`` and the post-instruction
tokens, into the matched harmless prompt and score the refusal log-odds; the results are
checked to agree. The naive loop is one full forward pass per (pair, head)
(``layerguard.lab.circuits.patching.naive_head_sweep``); the batched engine puts every head
of a pair into the rows of a few batches and shares the key/value cache of the tokens
before the first patched position.

    python benchmarks/bench_patch.py [--model qwen2.5-coder-0.5b] [--n 4] [--layers 0,4,8]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from layerguard.data.builtin import load_builtin
from layerguard.directions.refusal import RefusalTokens
from layerguard.lab.circuits.engine import encode_pairs
from layerguard.lab.circuits.patching import naive_head_sweep, patch_sweep
from layerguard.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=4, help="pairs")
    ap.add_argument("--layers", default="all", help="'all' or comma-separated layers")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    lm = load_model(args.model)
    layers = None if args.layers == "all" else [int(x) for x in args.layers.split(",")]
    ids = tuple(lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("I", "Sorry"))
    tokens = RefusalTokens(ids, ("I", "Sorry"))
    h = [s.prompt for s in load_builtin("harmful", "val")[: args.n]]
    b = [s.prompt for s in load_builtin("harmless", "val")[: args.n]]
    pairs = encode_pairs(lm, h, b, ["t_inst", "post_inst"])
    t = time.perf_counter()
    fast = patch_sweep(lm, pairs, tokens, kinds=("heads",), layers=layers, batch_size=args.batch_size, progress=False)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = naive_head_sweep(lm, pairs, tokens, layers=layers)
    t_slow = time.perf_counter() - t
    diff = float((fast.patched["heads"] - slow).abs().max())
    n_sites = int(slow.numel())
    print(
        json.dumps(
            {
                "model": lm.model_id,
                "pairs": args.n,
                "patched_runs": n_sites,
                "batched_s": round(t_fast, 2),
                "naive_s": round(t_slow, 2),
                "speedup": round(t_slow / t_fast, 2),
                "max_abs_diff_log_odds": diff,
                "threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
