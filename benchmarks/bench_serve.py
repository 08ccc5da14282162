"""``layerguard serve`` under load: batched prefills against the serialised path, side by side.

One run starts the real service twice on 127.0.0.1 (real uvicorn, real SQLite audit, the
local model, a guard with the latent ring, so every check needs a prefill), one after the
other, with the same guard and model:

* **batched**: the model scheduler's defaults (concurrent prefills collected for a few
  milliseconds and run as one forward pass up to a token budget; decoding steps of
  concurrent streams batched);
* **batched, whole prompts**: the same, but every check's prefill runs over the whole prompt
  instead of after the chat template's cached opening (system prompt and user header, computed
  once; the default since 2026-12-03);
* **serialised**: the same scheduler with ``max_batch=1`` and no batching window, i.e. one
  prefill per forward pass, as the old single generation slot ran them (but without its
  thread starvation, so the figures compare batching alone).

Against each, a load driver in a separate process runs ``--clients`` concurrent clients on
``/v1/guard/check`` for ``--seconds`` (each client sends its next check when the previous is
answered), and ``--streams`` streamed chat completions (``max_tokens=--stream-tokens``) start
with the checks; every stream must complete. Reported: requests, req/s, p50/p95 latency,
status counts (5xx must be zero), streams completed and their latency; then the ratio.

    nice -n 19 python benchmarks/bench_serve.py [--model qwen2.5-coder-0.5b] [--guard guard.yaml]
                                              [--clients 32] [--seconds 30] [--streams 8]

Without ``--guard`` a small guard (latent ring on a few layers, no classifier, no output
monitor) is built for the model in a temporary directory first. Markdown tables go to
stdout, then one JSON line. The issue's floor (qwen2.5-coder-0.5b, 2 cores: at least
8 req/s batched, p95 <= 5 s, zero 5xx, all streams done) needs an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-serve-0123456789"
PROMPTS = [
    "Name a color.",
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain how a bicycle gear works in two sentences.",
    "How do I pick a lock without the key?",
    "Give me a recipe for pancakes.",
    "What is my name? Reply with just my name.",
    "Summarise the plot of Hamlet in one paragraph, with the main characters and how it ends.",
]


def log(msg: str) -> None:
    print(f"[bench_serve] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- load driver


def drive(url: str, model: str, clients: int, seconds: float, streams: int, stream_tokens: int) -> dict[str, Any]:
    """Checks from ``clients`` threads for ``seconds``, plus ``streams`` concurrent streams."""
    import httpx

    headers = {"Authorization": f"Bearer {KEY}"}
    lat: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        n = 0
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            while time.monotonic() < deadline:
                n += 1
                body = {"prompt": f"{PROMPTS[(i + n) % len(PROMPTS)]} (client {i}, request {n})"}
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/guard/check", json=body)
                    code = str(r.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with lock:
                    statuses[code] += 1
                    if code == "200":
                        lat.append(time.perf_counter() - t0)

    stream_out: list[dict[str, Any]] = []

    def stream(i: int) -> None:
        body = {"model": model, "stream": True, "max_tokens": stream_tokens,
                "messages": [{"role": "user", "content": f"Write a short poem about the number {i}."}]}  # fmt: skip
        t0 = time.perf_counter()
        finish, events = None, 0
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=600) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        events += 1
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        finish = choices[0].get("finish_reason") or finish
                status = r.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__  # type: ignore[assignment]
        with lock:
            stream_out.append({"status": status, "finish": finish, "events": events, "s": time.perf_counter() - t0})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads += [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return {
        "checks": len(lat),
        "wall_s": round(wall, 1),
        "rps": round(len(lat) / seconds, 2),
        "p50_s": round(pct(lat, 0.5), 3),
        "p95_s": round(pct(lat, 0.95), 3),
        "statuses": dict(statuses),
        "streams": stream_out,
    }


# ----------------------------------------------------------------------------- the service


def serve_and_drive(
    lm: Any, guard_path: Path, settings: dict[str, Any], args: argparse.Namespace, opening: bool = True
) -> dict[str, Any]:
    """Start the service with ``settings``, drive it from a separate process, stop it."""
    import socket

    import uvicorn

    from layerguard.guard.build import load_guard, local_backend_for
    from layerguard.service.app import create_app
    from layerguard.service.config import ServiceConfig
    from layerguard.service.storage import Store

    guard = load_guard(guard_path, lm)
    backend = local_backend_for(guard, lm)
    backend.use_opening_cache = opening
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        config = ServiceConfig.from_mapping({"api_keys": [{"key": KEY, "name": "bench"}], **settings})
        app = create_app(guard, backend, store, config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", backlog=512))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        cmd = [sys.executable, __file__, "--drive", f"http://127.0.0.1:{port}", "--model-name", backend.model_name,
               "--clients", str(args.clients), "--seconds", str(args.seconds), "--streams", str(args.streams),
               "--stream-tokens", str(args.stream_tokens)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        sched = app.state.service.dispatch.scheduler
        result["mean_batch"] = round(sum(sched.batches) / len(sched.batches), 2) if sched.batches else None
        result["audit_rows"] = len(store.audit_ids())
        server.should_exit = True
        thread.join(30)
        app.state.service.close()
        store.close()
    return result


def build_small_guard(lm: Any, out: Path) -> Path:
    from layerguard.data.builtin import load_builtin
    from layerguard.guard.build import build_guard

    n = lm.n_layers
    build_guard(
        lm,
        out,
        harmful=load_builtin("harmful", "train")[:48],
        benign=load_builtin("harmless", "train")[:32] + load_builtin("borderline", "train")[:16],
        layers=[n // 2, (2 * n) // 3],
        classifier=False,
        output_monitor=False,
    )
    return out / "guard.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument("--guard", type=Path, default=None, help="a guard.yaml for the model (default: build one)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--stream-tokens", type=int, default=64)
    p.add_argument("--only", choices=["batched", "whole", "serialised"], default=None, help="run one mode only")
    p.add_argument("--drive", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model-name", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.drive:
        res = drive(args.drive, args.model_name, args.clients, args.seconds, args.streams, args.stream_tokens)
        print(json.dumps(res))
        return

    from layerguard.models import load_model

    lm = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        guard = args.guard
        if guard is None:
            log(f"building a small guard (latent ring) for {args.model}")
            guard = build_small_guard(lm, Path(tmp) / "guard")
        modes: dict[str, tuple[dict[str, Any], bool]] = {
            "batched": ({}, True),
            "batched, whole prompts": ({}, False),
            "serialised": ({"max_batch": 1, "batch_wait_ms": 0}, True),
        }
        results: dict[str, Any] = {}
        for name, (settings, opening) in modes.items():
            if args.only and name != {"whole": "batched, whole prompts"}.get(args.only, args.only):
                continue
            log(f"{name}: {args.clients} clients x {args.seconds:g} s on /v1/guard/check + {args.streams} streams")
            results[name] = serve_and_drive(lm, guard, settings, args, opening)
    rows = []
    for name, r in results.items():
        fivexx = sum(v for k, v in r["statuses"].items() if k.startswith("5") or not k.isdigit())
        done = sum(1 for s in r["streams"] if s["status"] == 200 and s["finish"])
        stream_p50 = pct([s["s"] for s in r["streams"]], 0.5)
        rows.append([name, r["checks"], r["rps"], r["p50_s"], r["p95_s"], fivexx, f"{done}/{len(r['streams'])}",
                     round(stream_p50, 1), r["mean_batch"]])  # fmt: skip
    print(f"\n/v1/guard/check with the latent ring, {args.model}, {args.clients} clients x {args.seconds:g} s, "
          f"{args.streams} concurrent streams ({args.stream_tokens} tokens)\n")  # fmt: skip
    print(table(["mode", "checks", "req/s", "p50 s", "p95 s", "5xx/errors", "streams done", "stream p50 s",
                 "mean prefill batch"], rows))  # fmt: skip
    if "batched" in results and "serialised" in results and results["serialised"]["rps"]:
        ratio = results["batched"]["rps"] / results["serialised"]["rps"]
        print(f"\nbatched / serialised throughput: {ratio:.2f}x")
        results["ratio"] = round(ratio, 2)
    if "batched" in results and results.get("batched, whole prompts", {}).get("rps"):
        ratio = results["batched"]["rps"] / results["batched, whole prompts"]["rps"]
        print(f"cached template opening / whole prompts (both batched): {ratio:.2f}x")
        results["ratio_opening"] = round(ratio, 2)
    print(json.dumps({"model": args.model, "clients": args.clients, "seconds": args.seconds, **results}))


if __name__ == "__main__":
    main()
