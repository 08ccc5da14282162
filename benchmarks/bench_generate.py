"""Greedy generation throughput: layerguard's local path vs a naive ``model.generate`` loop vs the memory bound.

The prompts are the audit's: harmful validation prompts through a few of its attacks (a
jailbreak frame, a many-shot attack), grouped by attack as the red-team runner sends them.
Every variant answers the same prompts with the same ``max_new_tokens``; tokens are counted
the same way for all of them (the answer's tokens up to the end-of-sequence token).

- ``naive``: one prompt at a time, ``model.generate(ids)``: what one writes first.
- ``layerguard``: ``layerguard.models.generate``: batches of ``--batch-size`` prompts sorted by
  length and left-padded (the runner's path before the prefix cache).
- ``+ prefix cache``: the same, with the opening that an attack's prompts share (system prompt,
  jailbreak frame, many-shot exchanges) computed once per attack (:class:`PrefixCache`).
- ``+ batch N``: the prefix-cached path with larger batches (``--big-batch``).
- ``int8 + prefix cache`` (``--int8``): dynamic int8 quantization of every linear layer; answers
  are compared with fp32's (it is not used by layerguard unless this benchmark shows it pays).

The memory-bandwidth bound: a decoding step reads every weight once, so one sequence cannot
decode faster than (memory bandwidth) / (bytes of weights) tokens per second, and a batch of B
no faster than B times that. Bandwidth is measured here with a numpy copy of a 512 MB array
(bytes read + bytes written per second, best of 5).

    python benchmarks/bench_generate.py [--model qwen2.5-coder-0.5b] [--n 8] [--attacks direct,dan,many_shot_16]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import numpy as np
import torch

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import spread
from layerguard.models import load_model
from layerguard.models.generate import PrefixCache, generate
from layerguard.redteam.attacks import get_attack


def copy_bandwidth(mb: int = 512, reps: int = 5) -> float:
    """Bytes read + written per second by ``np.copyto`` on an ``mb`` MB float32 array (best of ``reps``)."""
    a = np.ones(mb * 2**20 // 4, dtype=np.float32)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best


def weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters (tied weights once)."""
    seen: dict[int, int] = {}
    for p in model.parameters():
        seen[p.data_ptr()] = p.numel() * p.element_size()
    return sum(seen.values())


def n_tokens(lm: Any, texts: list[str]) -> int:
    """Tokens of the answers (how every variant is counted)."""
    return sum(len(lm.tokenizer(t, add_special_tokens=False).input_ids) for t in texts)


def naive(lm: Any, convs: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
    out = []
    for c in convs:
        ids = torch.tensor([lm.encode(c, find_instruction=False).input_ids])
        with torch.inference_mode():
            seq = lm.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=lm.tokenizer.pad_token_id,
            )
        out.append(lm.tokenizer.decode(seq[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return out


def by_attack(
    lm: Any, groups: dict[str, list[list[dict[str, str]]]], max_new_tokens: int, batch_size: int, prefix: bool
) -> list[str]:
    """The runner's way: one call per attack, a prefix cache per attack when asked."""
    out: list[str] = []
    for convs in groups.values():
        cache = PrefixCache() if prefix else None
        out += generate(lm, convs, max_new_tokens=max_new_tokens, batch_size=batch_size, prefix_cache=cache)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=8, help="Harmful prompts per attack.")
    ap.add_argument("--attacks", default="direct,dan,many_shot_16")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--big-batch", type=int, default=16)
    ap.add_argument("--int8", action="store_true", help="Also time dynamic int8 quantization.")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()

    bw = copy_bandwidth()
    lm = load_model(args.model, progress=False)
    wb = weight_bytes(lm.model)
    bound1 = bw / wb  # decoding steps per second at most (one sequence)
    samples = spread(load_builtin("harmful", "val"), args.n)
    groups = {a: [get_attack(a)(s) for s in samples] for a in args.attacks.split(",")}
    convs = [c for g in groups.values() for c in g]
    lens = [len(lm.encode(c, find_instruction=False).input_ids) for c in convs]
    print(
        f"model {lm.model_id} ({wb / 1e9:.2f} GB of weights, {lm.model.dtype}), {len(convs)} prompts "
        f"({', '.join(groups)}; {min(lens)}-{max(lens)} tokens), max_new_tokens {args.max_new_tokens}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"memory bandwidth (numpy copy, read + write): {bw / 1e9:.1f} GB/s -> bound {bound1:.2f} tokens/s per sequence"
    )
    generate(lm, convs[:2], max_new_tokens=4, batch_size=2)  # warm-up

    mnt, bs = args.max_new_tokens, args.batch_size
    variants: list[tuple[str, int, Any]] = []
    if not args.skip_naive:
        variants.append(("naive model.generate loop", 1, lambda m: naive(m, convs, mnt)))
    variants += [
        (f"layerguard, batch {bs}", bs, lambda m: by_attack(m, groups, mnt, bs, prefix=False)),
        (f"layerguard + prefix cache, batch {bs}", bs, lambda m: by_attack(m, groups, mnt, bs, prefix=True)),
        (
            f"layerguard + prefix cache, batch {args.big_batch}",
            args.big_batch,
            lambda m: by_attack(m, groups, mnt, args.big_batch, prefix=True),
        ),
    ]
    results = []
    ref: list[str] | None = None
    for name, batch, run in variants:
        t = time.perf_counter()
        answers = run(lm)
        dt = time.perf_counter() - t
        ref = ref if ref is not None else answers
        results.append((name, batch, dt, n_tokens(lm, answers), answers))
        print(f"  {name}: {dt:.1f} s", flush=True)
    if args.int8:
        q = dataclasses.replace(lm, model=torch.ao.quantization.quantize_dynamic(lm.model, {torch.nn.Linear}))
        t = time.perf_counter()
        answers = by_attack(q, groups, mnt, bs, prefix=True)
        dt = time.perf_counter() - t
        results.append((f"int8 dynamic + prefix cache, batch {bs}", bs, dt, n_tokens(lm, answers), answers))
        print(f"  int8: {dt:.1f} s", flush=True)

    base = results[0]
    print()
    print(
        f"| variant | seconds | tokens | tokens/s | vs {base[0].split(',')[0]} | share of bound at its batch "
        "| answers equal to the first row's |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, batch, dt, toks, answers in results:
        tps = toks / dt
        same = sum(a == b for a, b in zip(answers, base[4], strict=True))
        print(
            f"| {name} | {dt:.1f} | {toks} | {tps:.2f} | {tps / (base[3] / base[2]):.2f}x "
            f"| {tps / (bound1 * batch):.0%} of {bound1 * batch:.1f} | {same}/{len(answers)} |"
        )
        rows.append({"variant": name, "batch": batch, "seconds": round(dt, 2), "tokens": toks, "tokens_per_s": tps})
    print()
    print(json.dumps({"model": lm.name, "bandwidth_gb_s": bw / 1e9, "weights_gb": wb / 1e9, "rows": rows}))


if __name__ == "__main__":
    main()
