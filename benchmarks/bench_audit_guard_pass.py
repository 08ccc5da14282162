"""The audit's guarded state pass: whole prompts vs the template's opening vs the attack's shared frame.

After generating an attack's answers, the audit reads the rings' states over prompt +
answer in one batched pass per attack (:func:`layerguard.guard.states.exchange_states`:
the latent ring's reads and the output monitor's per-token states). Since 2026-12-03 that
pass runs the start that all of the call's prompts share (the chat template's opening and,
for a jailbreak frame or many-shot's faux exchanges, everything up to the first instruction)
once and reuses its key/value cache. This script times three variants side by side, in one
process, alternating: whole prompts, the template's opening only (the path before), and the
shared start; it prints seconds per attack, the ratios and the largest relative difference
in the states. The answers are fixed texts (the same for every variant), so no generation
runs; the reads are the published default guard's.

    python benchmarks/bench_audit_guard_pass.py [--model qwen2.5-coder-0.5b] [--n 24] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from unittest import mock

import torch

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import spread
from layerguard.guard import states as st
from layerguard.guard.published import PUBLISHED_ROOT
from layerguard.models import load_model
from layerguard.redteam.attacks import get_attack

ANSWERS = (
    "I'm sorry, but I can't assist with that. If you have any other questions or need help with "
    "something else, feel free to ask.",
    "Sure. Here is an overview of the general idea, step by step, with the main points you asked "
    "about and a short summary at the end of each part.",
)


def main() -> None:
    """Time the three variants and print them side by side."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=24, help="Harmful val prompts per attack.")
    ap.add_argument("--attacks", default="direct,dan,many_shot_4,many_shot_16")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    lm = load_model(args.model, progress=False)
    guard = yaml_load(PUBLISHED_ROOT / "qwen2.5-coder-0.5b" / "guard.yaml")
    reads = list(guard["build"]["reads"])
    monitor = json.loads((PUBLISHED_ROOT / "qwen2.5-coder-0.5b" / "output_monitor" / "monitor.json").read_text())
    response_layers = [int(monitor["meta"]["layer"])]
    samples = spread(load_builtin("harmful", "val"), args.n)
    calls = {a: [get_attack(a)(s) for s in samples] for a in args.attacks.split(",")}
    answers = [ANSWERS[i % 2] for i in range(len(samples))]
    template = st.template_opening(lm)
    print(
        f"model {lm.model_id}, reads {reads} + response layer {response_layers}, batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    for a, convs in calls.items():
        enc = [st.encode_for_reads(lm, c) for c in convs]
        shared = st.shared_opening(enc, template)
        mean = sum(len(p.input_ids) for p in enc) / len(enc)
        print(f"  {a:14s} mean prompt {mean:6.1f} tokens; template opening {len(template)}, shared start {len(shared)}")
    variants = {
        "whole prompts": {"prefix_cache": False},
        "template opening": {"prefix_cache": True, "only_template": True},
        "shared start": {"prefix_cache": True},
    }
    kw = {"reads": reads, "response_layers": response_layers, "batch_size": args.batch_size}
    st.exchange_states(lm, calls[next(iter(calls))][:2], answers[:2], **kw)  # warm-up
    seconds: dict[str, dict[str, float]] = {v: {} for v in variants}
    out: dict[str, dict[str, list]] = {v: {} for v in variants}
    for _ in range(2):  # alternate, so a drift in machine speed hits every variant alike
        for v, opt in variants.items():
            for a, convs in calls.items():
                patch = (
                    mock.patch.object(st, "shared_opening", lambda enc, opening: opening)
                    if opt.get("only_template")
                    else contextlib.nullcontext()
                )
                with patch:
                    t = time.perf_counter()
                    out[v][a] = st.exchange_states(lm, convs, answers, prefix_cache=opt["prefix_cache"], **kw)
                    dt = time.perf_counter() - t
                seconds[v][a] = min(dt, seconds[v].get(a, float("inf")))
    worst = 0.0
    for v in ("template opening", "shared start"):
        for a in calls:
            for f, s in zip(out[v][a], out["whole prompts"][a], strict=True):
                for name in s:
                    if s[name].numel():
                        worst = max(worst, float((f[name] - s[name]).abs().max() / s[name].abs().max()))
    header = f"{'attack':14s}" + "".join(f"{v:>18s}" for v in variants) + "   shared vs template"
    print(header)
    for a in calls:
        row = "".join(f"{seconds[v][a]:16.1f} s" for v in variants)
        print(f"{a:14s}{row}   {seconds['template opening'][a] / seconds['shared start'][a]:6.2f}x")
    total = {v: sum(seconds[v].values()) for v in variants}
    print(
        f"{'all':14s}"
        + "".join(f"{total[v]:16.1f} s" for v in variants)
        + f"   {total['template opening'] / total['shared start']:6.2f}x"
    )
    print(f"largest relative difference in the states vs whole prompts: {worst:.1e}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": lm.model_id,
                    "n": args.n,
                    "attacks": list(calls),
                    "batch_size": args.batch_size,
                    "seconds": seconds,
                    "total": total,
                    "shared_vs_template": total["template opening"] / total["shared start"],
                    "shared_vs_whole": total["whole prompts"] / total["shared start"],
                    "max_relative_difference": worst,
                },
                indent=2,
            )
        )


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


if __name__ == "__main__":
    main()
