"""Activation-capture throughput: layerguard vs a naive output_hidden_states loop.

Both capture the residual stream entering every layer at two positions (t_inst and the
last prompt token) for the same N prompts, measured in one run, and the results are
checked to agree. The naive loop is what one writes first: one prompt at a time,
``model(ids, output_hidden_states=True)``, then index the two positions.

    python benchmarks/bench_capture.py [--model qwen2.5-coder-0.5b] [--n 256] [--batch-size 8]
    python benchmarks/bench_capture.py --n 96 --sweep 8 16 32 96   # batch-size sweep
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from layerguard.activations import capture_activations
from layerguard.data.builtin import load_builtin
from layerguard.models import load_model


def naive(lm, prompts):  # type: ignore[no-untyped-def]
    out = []
    for p in prompts:
        pp = lm.encode(p)
        with torch.inference_mode():
            hs = lm.model(input_ids=torch.tensor([pp.input_ids]), output_hidden_states=True).hidden_states
        cols = [pp.t_inst, pp.n_tokens - 1]
        out.append(torch.stack([h[0, cols] for h in hs[: lm.n_layers]]))  # [layers, 2, d]
    return torch.stack(out)  # [n, layers, 2, d]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--sweep", type=int, nargs="*", help="Instead: time layerguard alone at these batch sizes.")
    args = ap.parse_args()
    samples = (load_builtin("harmful", "train") + load_builtin("harmless", "train"))[:: max(1, 480 // args.n)]
    prompts = [s.prompt for s in samples][: args.n]
    lm = load_model(args.model, progress=False)
    print(
        f"model {lm.model_id}, {len(prompts)} prompts, {lm.n_layers} layers x 2 positions, "
        f"torch threads {torch.get_num_threads()}"
    )
    if args.sweep:
        capture_activations(lm, prompts[:4], positions=["t_inst", "last"], progress=False)
        print("| batch size | seconds | prompts/s |")
        print("|---|---|---|")
        for bs in args.sweep:
            t = time.perf_counter()
            capture_activations(lm, prompts, positions=["t_inst", "last"], batch_size=bs, progress=False)
            dt = time.perf_counter() - t
            print(f"| {bs} | {dt:.2f} | {len(prompts) / dt:.1f} |", flush=True)
        return
    naive(lm, prompts[:4])  # warm-up both paths
    capture_activations(lm, prompts[:4], positions=["t_inst", "last"], progress=False)

    t = time.perf_counter()
    ref = naive(lm, prompts)
    naive_s = time.perf_counter() - t
    t = time.perf_counter()
    acts = capture_activations(lm, prompts, positions=["t_inst", "last"], batch_size=args.batch_size, progress=False)
    lg_s = time.perf_counter() - t

    ours = torch.stack([acts[f"blocks.{i}.resid_pre"] for i in range(lm.n_layers)], dim=1)  # [n, layers, 2, d]
    scale = ref.abs().amax(dim=(0, 2, 3), keepdim=True).clamp(min=1.0)
    rel = ((ours - ref).abs() / scale).max().item()
    row = {
        "model": lm.name,
        "n_prompts": len(prompts),
        "naive_s": round(naive_s, 2),
        "layerguard_s": round(lg_s, 2),
        "naive_prompts_per_s": round(len(prompts) / naive_s, 1),
        "layerguard_prompts_per_s": round(len(prompts) / lg_s, 1),
        "speedup": round(naive_s / lg_s, 2),
        "max_diff_relative_to_layer_scale": rel,
        "batch_size": args.batch_size,
    }
    print("| model | prompts | naive loop (s) | layerguard (s) | speedup | max diff / layer scale |")
    print("|---|---|---|---|---|---|")
    print(f"| {lm.name} | {len(prompts)} | {row['naive_s']} | {row['layerguard_s']} | {row['speedup']}x | {rel:.1e} |")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
