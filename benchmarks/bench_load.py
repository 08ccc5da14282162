"""Cold vs warm load time of the embedded models, measured side by side in one run.

Cold: a fresh, empty cache directory (the GGUF is verified, dequantized and cached).
Warm: the cache written by the cold run. Each load runs in a fresh Python process, so
both include the same interpreter and import start-up a user pays.

    python benchmarks/bench_load.py [--models smollm2-135m qwen2.5-coder-0.5b] [--warm-runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

SNIPPET = """
import json, time
t = time.perf_counter()
from layerguard.models import load_model
lm = load_model({model!r}, cache_dir={cache!r}, progress=False)
print(json.dumps({{"load_s": lm.load_seconds, "from_cache": lm.from_cache, "total_s": time.perf_counter() - t}}))
"""


def one_load(model: str, cache: str) -> dict[str, float]:
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET.format(model=model, cache=cache)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-coder-0.5b"])
    ap.add_argument("--warm-runs", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for model in args.models:
        with tempfile.TemporaryDirectory(prefix="lg-bench-cache-") as cache:
            cold = one_load(model, cache)
            assert not cold["from_cache"]
            warm = [one_load(model, cache) for _ in range(args.warm_runs)]
            assert all(w["from_cache"] for w in warm)
        warm_load = statistics.median(w["load_s"] for w in warm)
        warm_proc = statistics.median(w["process_s"] for w in warm)
        rows.append(
            {
                "model": model,
                "cold_load_s": round(cold["load_s"], 2),
                "warm_load_s": round(warm_load, 2),
                "load_ratio": round(cold["load_s"] / warm_load, 1),
                "cold_process_s": round(cold["process_s"], 2),
                "warm_process_s": round(warm_proc, 2),
                "process_ratio": round(cold["process_s"] / warm_proc, 1),
            }
        )
    print("| model | cold load (s) | warm load (s) | cold/warm | cold process (s) | warm process (s) | cold/warm |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['cold_load_s']} | {r['warm_load_s']} | {r['load_ratio']}x | "
            f"{r['cold_process_s']} | {r['warm_process_s']} | {r['process_ratio']}x |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
