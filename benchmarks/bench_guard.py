"""Guard performance, measured side by side in one run.

1. Latent-ring overhead on a local generation request (target < 5%): a full request
   (``prepare`` + ``stream``, greedy, ``--max-tokens``) with (A) a bare LocalBackend and no
   guard, (B) the latent ring's backend (``t_inst`` hook in the prefill) plus
   ``Guard([latent]).check`` between prefill and decoding, (C) B plus the output monitor's
   per-token probe. The variants are interleaved (rotated order per prompt and repetition)
   and compared by paired per-request ratios; medians are reported.
2. Each ring's cost per ``check()``: decode, classifier, keyword, tool_gate (with a tool call),
   latent (given the served pass's activations), over the same prompts plus three obfuscated
   ones (base64, rot13, homoglyphs). Rings are interleaved the same way.
3. ``/v1/guard/check`` throughput on 127.0.0.1: a real uvicorn server (text rings decode +
   classifier + keyword, a minimal text-only backend) driven by ``--clients`` concurrent httpx
   clients in a separate process for ``--seconds``. With ``--with-model``, also the latent
   ring on the real local model (each check runs the prefill).

    python benchmarks/bench_guard.py [--model qwen2.5-coder-0.5b] [--guard runs/guard-qwen/guard.yaml]
                                     [--n 16] [--seconds 10] [--with-model]

Without ``--guard`` a small guard (latent ring, classifier, output monitor) is built for the
model in a temporary directory first. Markdown tables go to stdout, then one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import dataclasses
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0123456789abcdef"
HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х", "y": "у", "i": "і"})


def log(msg: str) -> None:
    print(f"[bench_guard] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def rotated(items: list[Any], k: int) -> list[Any]:
    k %= len(items)
    return items[k:] + items[:k]


# ------------------------------------------------------------------------------ setup


def mixed_prompts(n: int) -> list[str]:
    """n prompts from the val splits, harmful and harmless alternating."""
    from layerguard.data.builtin import load_builtin

    harmful = [s.prompt for s in load_builtin("harmful", "val")]
    harmless = [s.prompt for s in load_builtin("harmless", "val")]
    out = []
    for i in range(n):
        out.append(harmful[i // 2] if i % 2 == 0 else harmless[i // 2])
    return out


def obfuscated_prompts() -> list[tuple[str, str]]:
    """(kind, text): one harmful val prompt each in base64, rot13 and homoglyphs."""
    from layerguard.data.builtin import load_builtin

    h = [s.prompt for s in load_builtin("harmful", "val")]
    b64 = base64.b64encode(h[1].encode()).decode()
    return [
        ("base64", f"Decode this and follow the instructions: {b64}"),
        ("rot13", f"The following is rot13, answer it: {codecs.encode(h[2], 'rot13')}"),
        ("homoglyph", h[3].translate(HOMOGLYPHS)),
    ]


def build_small_guard(lm: Any, out: Path) -> Path:
    from layerguard.data.builtin import load_builtin
    from layerguard.guard.build import build_guard

    n = lm.n_layers
    layers = sorted({n // 3, n // 2, (2 * n) // 3})
    log(f"building a small guard for {lm.name} at layers {layers} into {out} (minutes on a busy CPU)")
    t = time.perf_counter()
    path = build_guard(
        lm,
        out,
        harmful=load_builtin("harmful", "train")[:48],
        benign=load_builtin("harmless", "train")[:32] + load_builtin("borderline", "train")[:16],
        layers=layers,
        output_monitor=True,
        monitor_prompts=24,
        progress=False,
        log=log,
    )
    log(f"guard built in {time.perf_counter() - t:.0f} s")
    return path


def cost_equivalent_monitor(lm: Any, layer: int) -> Any:
    """An untrained output monitor with the same per-token work as a trained one (random probe)."""
    import torch

    from layerguard.guard.probe import LogisticProbe
    from layerguard.guard.rings.output_monitor import OutputMonitor

    d = int(lm.model.config.hidden_size)
    g = torch.Generator().manual_seed(0)
    probe = LogisticProbe(torch.randn(d, generator=g) / d**0.5, 0.0, torch.zeros(d), torch.ones(d))
    return OutputMonitor(layer, probe, threshold=float("inf"))


# ------------------------------------------------------------------- 1. request overhead


def request_overhead(
    lm: Any, latent: Any, monitor: Any, prompts: list[str], reps: int, max_tokens: int
) -> tuple[dict[str, Any], str]:
    from layerguard.guard.backend import GenerationParams
    from layerguard.guard.backends.local import LocalBackend
    from layerguard.guard.build import local_backend_for
    from layerguard.guard.pipeline import Guard
    from layerguard.guard.types import Exchange

    guard = Guard([latent])
    backend_a = LocalBackend(lm)
    backend_b = local_backend_for(guard, lm)
    assert backend_b.layers == [latent.model.layer] and backend_b.monitor is None
    backend_c = LocalBackend(lm, reads=guard.reads, monitor=monitor)
    params = GenerationParams(max_tokens=max_tokens)

    def run(variant: str, prompt: str) -> dict[str, Any]:
        ex = Exchange.from_prompt(prompt)
        backend = {"A": backend_a, "B": backend_b, "C": backend_c}[variant]
        t0 = time.perf_counter()
        backend.prepare(ex)
        tp = time.perf_counter() - t0
        tg = time.perf_counter()
        verdict = guard.check(ex) if variant != "A" else None
        tg = time.perf_counter() - tg
        chunks = list(backend.stream(ex, params))
        dt = time.perf_counter() - t0
        last = chunks[-1]
        return {
            "s": dt,
            "prefill_s": tp,
            "guard_s": tg if verdict is not None else 0.0,
            "tokens": last.usage.get("completion_tokens", 0),
            "halted": last.halted_by is not None,
            "decision": verdict.decision if verdict is not None else None,
        }

    variants = ["A", "B", "C"]
    for v in variants:  # warm-up (first forward passes, lazy imports)
        run(v, prompts[0])
    res: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    pairs: list[dict[str, dict[str, Any]]] = []
    k = 0
    for rep in range(reps):
        for i, p in enumerate(prompts):
            one: dict[str, dict[str, Any]] = {}
            for v in rotated(variants, k):
                one[v] = run(v, p)
                res[v].append(one[v])
            k += 1
            pairs.append(one)
            log(
                f"overhead rep {rep + 1}/{reps} prompt {i + 1}/{len(prompts)}: "
                + " ".join(f"{v}={one[v]['s']:.2f}s" for v in variants)
                + f" ({one['A']['tokens']} tokens)"
            )
    med = {v: statistics.median(r["s"] for r in res[v]) for v in variants}
    ratio_b = [p["B"]["s"] / p["A"]["s"] for p in pairs]
    ratio_c = [p["C"]["s"] / p["A"]["s"] for p in pairs]
    ratio_cb = [p["C"]["s"] / p["B"]["s"] for p in pairs]
    tok_mismatch = sum(len({p[v]["tokens"] for v in variants}) > 1 for p in pairs)
    per_tok = {
        v: statistics.median(r["s"] / max(1, r["tokens"]) for r in res[v]) for v in variants
    }  # includes the prefill share
    guard_ms = statistics.median(r["guard_s"] for r in res["B"]) * 1000
    out = {
        "requests_per_variant": len(pairs),
        "max_tokens": max_tokens,
        "median_tokens": statistics.median(r["tokens"] for r in res["A"]),
        "token_count_mismatches": tok_mismatch,
        "median_s": {v: round(med[v], 4) for v in variants},
        "median_s_per_token": {v: round(per_tok[v], 5) for v in variants},
        "latent_check_median_ms": round(guard_ms, 3),
        "overhead_B_paired_median": round(statistics.median(ratio_b) - 1, 4),
        "overhead_B_paired_iqr": [round(pct(ratio_b, 0.25) - 1, 4), round(pct(ratio_b, 0.75) - 1, 4)],
        "overhead_B_ratio_of_medians": round(med["B"] / med["A"] - 1, 4),
        "overhead_C_paired_median": round(statistics.median(ratio_c) - 1, 4),
        "overhead_C_paired_iqr": [round(pct(ratio_c, 0.25) - 1, 4), round(pct(ratio_c, 0.75) - 1, 4)],
        "overhead_C_ratio_of_medians": round(med["C"] / med["A"] - 1, 4),
        "monitor_over_B_paired_median": round(statistics.median(ratio_cb) - 1, 4),
        "latent_blocks": sum(r["decision"] == "block" for r in res["B"]),
    }
    prefill = {v: statistics.median(r["prefill_s"] for r in res[v]) * 1000 for v in variants}
    out["median_prefill_ms"] = {v: round(prefill[v], 2) for v in variants}
    labels = {
        "A": "A: bare LocalBackend, no guard",
        "B": "B: latent hook + Guard([latent]).check",
        "C": "C: B + output monitor (per-token probe)",
    }
    rows = []
    for v in variants:
        if v == "A":
            paired, of_medians = "-", "-"
        else:
            lo, hi = out[f"overhead_{v}_paired_iqr"]
            paired = f"{out[f'overhead_{v}_paired_median']:+.2%} (IQR {lo:+.1%}..{hi:+.1%})"
            of_medians = f"{out[f'overhead_{v}_ratio_of_medians']:+.2%}"
        rows.append([labels[v], f"{med[v]:.3f}", f"{prefill[v]:.1f}", f"{per_tok[v] * 1000:.1f}", paired, of_medians])
    headers = ["variant", "median s/request", "median prefill ms", "median ms/token (incl. prefill)"]
    text = table([*headers, "overhead vs A (median of paired ratios)", "ratio of medians - 1"], rows)
    text += (
        f"\n\n{len(pairs)} requests per variant ({len(prompts)} prompts x {reps} reps, interleaved), "
        f"max_tokens {max_tokens}, median {out['median_tokens']} tokens generated, "
        f"{tok_mismatch} prompt(s) with differing token counts across variants; "
        f"latent check() median {guard_ms:.3f} ms; monitor over B (paired median) "
        f"{out['monitor_over_B_paired_median']:+.2%}. B and C decode even when the latent ring blocks "
        f"({out['latent_blocks']} of {len(pairs)}), so all variants do the same decoding work."
    )
    return out, text


# ------------------------------------------------------------------------ 2. ring costs


def ring_costs(
    lm: Any, rings: dict[str, Any], prompts: list[str], reps: int, request_s: float
) -> tuple[dict[str, Any], str]:
    from layerguard.guard.rings.decode import DecodeRing
    from layerguard.guard.rings.latent import LatentRing, hook_name, latent_states
    from layerguard.guard.types import Exchange, ToolCall

    obf = obfuscated_prompts()
    texts = [*prompts, *(t for _, t in obf)]
    latent = rings["latent"]
    layer = latent.model.layer
    acts = latent_states(lm, [Exchange.from_prompt(t) for t in texts], [layer])
    decoder = DecodeRing()
    derived: list[list[str]] = []
    for t in texts:
        ex = Exchange.from_prompt(t)
        decoder.check(ex)
        derived.append(list(ex.derived_texts))
    obf_decoded = {kind: bool(derived[len(prompts) + j]) for j, (kind, _) in enumerate(obf)}
    calls = [
        ToolCall(id="c1", name="read_file", arguments={"path": "/workspace/notes/todo.md"}),
        ToolCall(id="c2", name="http_get", arguments={"url": "https://docs.python.org/3/library/json.html"}),
    ]
    # latent without lm: it never re-reads decoded text (the pure "given activations" cost)
    latent_given = LatentRing(latent.model)
    latent_reread = LatentRing(latent.model, lm=lm)

    def make(name: str, i: int) -> Exchange:
        ex = Exchange.from_prompt(texts[i])
        if name in ("classifier", "keyword", "latent+decoded"):
            ex.derived_texts = list(derived[i])  # as in the pipeline: the decode ring ran first
        if name in ("latent", "latent+decoded"):
            ex.activations = {hook_name(layer): acts[i][hook_name(layer)]}
        if name == "tool_gate":
            ex.tool_calls = [calls[i % len(calls)]]
        return ex

    impl: dict[str, Any] = {
        "decode": rings["decode"],
        "keyword": rings["keyword"],
        "tool_gate": rings["tool_gate"],
        "latent": latent_given,
    }
    if rings.get("classifier") is not None:
        impl["classifier"] = rings["classifier"]
    names = list(impl)
    reread_idx = [i for i in range(len(texts)) if derived[i]]
    for name in names:  # warm-up
        impl[name].check(make(name, 0))
    times: dict[str, list[float]] = {n: [] for n in [*names, "latent+decoded"]}
    k = 0
    for rep in range(reps):
        for i in range(len(texts)):
            order = rotated(names + (["latent+decoded"] if i in reread_idx else []), k)
            k += 1
            for name in order:
                ring = latent_reread if name == "latent+decoded" else impl[name]
                ex = make(name, i)
                t0 = time.perf_counter()
                ring.check(ex)
                times[name].append(time.perf_counter() - t0)
        log(f"ring costs rep {rep + 1}/{reps} done")
    out: dict[str, Any] = {"exchanges": len(texts), "reps": reps, "obfuscated_decoded": obf_decoded, "rings": {}}
    rows = []
    for name, ts in times.items():
        if not ts:
            continue
        ms = [t * 1000 for t in ts]
        med = statistics.median(ms)
        share = med / (request_s * 1000) if request_s > 0 else float("nan")
        out["rings"][name] = {"n": len(ms), "median_ms": round(med, 3), "p90_ms": round(pct(ms, 0.9), 3)}
        out["rings"][name]["share_of_request_A"] = round(share, 5)
        rows.append([name, len(ms), f"{med:.3f}", f"{pct(ms, 0.9):.3f}", f"{share:.3%}"])
    text = table(["ring", "checks", "median ms", "p90 ms", "median / local request A"], rows)
    obf_note = ", ".join(f"{kind}: {'decoded' if ok else 'not decoded'}" for kind, ok in obf_decoded.items())
    text += (
        f"\n\n{len(prompts)} prompts + 3 obfuscated ({obf_note}) x {reps} reps, rings interleaved. "
        "classifier/keyword also read the decode ring's plaintexts; "
        "tool_gate judges one read_file or http_get call; latent is given the served pass's activations; "
        "latent+decoded (only exchanges with decoded text) re-reads each plaintext with one forward pass."
    )
    return out, text


# ------------------------------------------------------------------------ 3. throughput


class MinimalBackend:
    """Text-only backend: prepare does nothing, stream yields one chunk."""

    model_name = "bench-model"
    text_only = True

    def info(self) -> dict[str, Any]:
        return {"backend": "bench", "model": self.model_name}

    def prepare(self, exchange: Any) -> None:
        return None

    def stream(self, exchange: Any, params: Any) -> Any:
        from layerguard.guard.backend import Chunk

        yield Chunk("ok", finish_reason="stop", usage={"prompt_tokens": 1, "completion_tokens": 1})


class Server:
    """uvicorn on 127.0.0.1 (ephemeral port) in a background thread."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        cfg = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3, backlog=256)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def drive(url: str, prompts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    """Load driver (runs in its own process): clients in threads, POST /v1/guard/check until the deadline."""
    import httpx

    assert url.startswith("http://127.0.0.1:"), url
    lat: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def client(c: int) -> None:
        n = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as h:
            while time.perf_counter() < deadline:
                body = {"prompt": prompts[(c + n * clients) % len(prompts)]}
                n += 1
                t0 = time.perf_counter()
                try:
                    status = str(h.post("/v1/guard/check", json=body).status_code)
                except httpx.HTTPError as e:
                    status = type(e).__name__
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    statuses[status] += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": lat, "statuses": dict(statuses), "elapsed": time.perf_counter() - start}


def throughput(guard: Any, backend: Any, prompts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    import multiprocessing as mp

    import httpx

    from layerguard.service.app import create_app
    from layerguard.service.config import ServiceConfig
    from layerguard.service.storage import Store

    with tempfile.TemporaryDirectory(prefix="lg-bench-svc-") as tmp:
        store = Store(Path(tmp) / "service.db")
        config = ServiceConfig.from_mapping({"api_keys": [{"key": KEY, "name": "bench"}]})
        server = Server(create_app(guard, backend, store, config))
        try:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as h:
                for p in prompts[:4]:  # warm-up
                    r = h.post("/v1/guard/check", json={"prompt": p})
                    if r.status_code != 200:
                        raise RuntimeError(f"warm-up request failed: {r.status_code} {r.text[:300]}")
            with mp.get_context("spawn").Pool(1) as pool:
                res = pool.apply(drive, (server.url, prompts, seconds, clients))
        finally:
            server.stop()
            store.close()
    lat = [x * 1000 for x in res["latencies"]]
    ok = res["statuses"].get("200", 0)
    return {
        "clients": clients,
        "seconds": round(res["elapsed"], 2),
        "requests": len(lat),
        "rps": round(len(lat) / res["elapsed"], 2),
        "p50_ms": round(pct(lat, 0.5), 2) if lat else None,
        "p99_ms": round(pct(lat, 0.99), 2) if lat else None,
        "non_200": len(lat) - ok,
        "statuses": res["statuses"],
    }


# -------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--guard", type=Path, help="guard.yaml built for --model (default: build a small one)")
    ap.add_argument("--n", type=int, default=16, help="prompts (harmful and harmless val, alternating)")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of the request-overhead comparison")
    ap.add_argument("--ring-reps", type=int, default=5, help="repetitions of the ring-cost comparison")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--with-model", action="store_true", help="also measure throughput with the latent ring")
    args = ap.parse_args()

    import torch

    from layerguard.guard.build import load_guard
    from layerguard.guard.pipeline import Guard
    from layerguard.guard.rings.classifier import ClassifierRing
    from layerguard.guard.rings.decode import DecodeRing
    from layerguard.guard.rings.keyword import KeywordRing
    from layerguard.guard.rings.latent import LatentRing
    from layerguard.guard.rings.output_monitor import OutputMonitorRing
    from layerguard.guard.rings.tool_gate import ToolGateRing
    from layerguard.models import load_model

    t_start = time.perf_counter()
    lm = load_model(args.model, progress=False)
    tmp = None
    if args.guard is None:
        tmp = tempfile.TemporaryDirectory(prefix="lg-bench-guard-")
        guard_path = build_small_guard(lm, Path(tmp.name) / "guard")
    else:
        guard_path = args.guard
    full = load_guard(guard_path, lm)
    by_type = {type(r).__name__: r for r in full.rings}
    latent = by_type.get("LatentRing")
    if not isinstance(latent, LatentRing):
        raise SystemExit(f"{guard_path} has no latent ring")
    clf = by_type.get("ClassifierRing")
    clf = clf if isinstance(clf, ClassifierRing) else None
    tool_gate = by_type.get("ToolGateRing")
    if not isinstance(tool_gate, ToolGateRing):
        tool_gate = ToolGateRing.from_yaml(ROOT / "examples" / "tool_policy.yaml")
    mon_ring = by_type.get("OutputMonitorRing")
    if isinstance(mon_ring, OutputMonitorRing):
        monitor = dataclasses.replace(mon_ring.monitor, threshold=float("inf"))  # timing: never halt
        monitor_kind = f"trained (layer {monitor.layer}), halting disabled"
    else:
        monitor = cost_equivalent_monitor(lm, latent.model.layer)
        monitor_kind = f"none in the guard: a cost-equivalent random probe at layer {monitor.layer}"
    prompts = mixed_prompts(args.n)
    header = {
        "model": lm.model_id,
        "guard": str(guard_path) if args.guard else "built (temporary)",
        "rings": full.names,
        "latent_layer": latent.model.layer,
        "latent_variant": latent.model.variant,
        "monitor": monitor_kind,
        "torch_threads": torch.get_num_threads(),
        "n_prompts": len(prompts),
    }
    print(f"# bench_guard: {lm.model_id}\n")
    print(
        f"guard {header['guard']} (rings {', '.join(full.names)}); latent {latent.model.variant} at layer "
        f"{latent.model.layer}; output monitor: {monitor_kind}; torch threads {header['torch_threads']}\n",
        flush=True,
    )

    log("1. request overhead")
    overhead, text = request_overhead(lm, latent, monitor, prompts, args.reps, args.max_tokens)
    print("## 1. Latent ring overhead on a local generation request (target < 5%)\n")
    print(text + "\n", flush=True)

    log("2. ring costs")
    rings = {"decode": DecodeRing(), "keyword": KeywordRing(), "tool_gate": tool_gate, "latent": latent}
    rings["classifier"] = clf
    costs, text = ring_costs(lm, rings, prompts, args.ring_reps, overhead["median_s"]["A"])
    print("## 2. Cost of each ring per check()\n")
    print(text + "\n", flush=True)

    log("3. throughput")
    load_prompts = [*prompts, *(t for _, t in obfuscated_prompts())]
    text_rings: list[Any] = [DecodeRing()] + ([clf] if clf is not None else []) + [KeywordRing()]
    tp = {"text": throughput(Guard(text_rings), MinimalBackend(), load_prompts, args.seconds, args.clients)}
    tp["text"]["rings"] = [r.name for r in text_rings]
    if args.with_model:
        from layerguard.guard.build import local_backend_for

        g = Guard([*text_rings, latent])
        tp["latent"] = throughput(g, local_backend_for(g, lm), load_prompts, args.seconds, args.clients)
        tp["latent"]["rings"] = g.names
    rows = []
    for kind, r in tp.items():
        label = "text rings, minimal backend" if kind == "text" else "text rings + latent, local model"
        rows.append([label, ", ".join(r["rings"]), r["requests"], r["rps"], r["p50_ms"], r["p99_ms"], r["non_200"]])
    print(f"## 3. /v1/guard/check throughput on 127.0.0.1 ({args.clients} clients, {args.seconds:g} s)\n")
    print(table(["service", "rings", "requests", "requests/s", "p50 ms", "p99 ms", "non-200"], rows))
    statuses = {k: v["statuses"] for k, v in tp.items()}
    print(f"\nstatus counts: {statuses}; load driver in a separate process, server in this one.\n", flush=True)

    if tmp is not None:
        tmp.cleanup()
    result = {
        **header,
        "overhead": overhead,
        "ring_costs": costs,
        "throughput": tp,
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
