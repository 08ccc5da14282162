"""Corpus filter: throughput, memory and quality, measured side by side in one run.

1. Throughput (documents/s) on this CPU for short documents (builtin prompts) and long
   documents (benign text of ~4,000 characters made of distinct sentences; every tenth hides a
   harmful request in the middle): the batched scorer of ``layerguard filter`` against a naive
   loop that runs ``Guard.check(Exchange.from_prompt(text))`` one document at a time, on the
   same documents, plus ``filter_corpus`` end to end (read, score, write, commit) on the whole
   synthetic corpus.
2. Peak RSS of ``filter_corpus`` in a fresh process for two corpus sizes (default 1,000 and
   10,000 short documents): constant memory means the two peaks are about equal.
3. Quality on sets the classifier was NOT trained on: builtin harmful/harmless/borderline
   *val* and HarmBench *val* mixed into one corpus; the drop rate per source at the default
   threshold (harmful dropped = recall, harmless/borderline dropped = false positives).
   With ``--held-out``, also HarmBench *test* and StrongREJECT as a separate, clearly
   labelled held-out evaluation (reported only; nothing is tuned on them).

    python benchmarks/bench_filter.py [--n-short 2000] [--n-long 100] [--naive-short 200] [--naive-long 30]
                                      [--rss-sizes 1000,10000] [--held-out] [--cache-dir DIR] [--out FILE.json]
    python benchmarks/bench_filter.py --io-mib 100,1000   # streaming path only, no model

With ``--io-mib`` only the streaming path is measured: files of that many MiB go through
``filter_corpus`` (batches of 4,096) with a scorer that keeps everything (no model), in a fresh process each,
to show that peak RSS does not grow with the file even at GB scale.

The scorer is the built-in one (packaged constitution's classifier trained on the builtin
*train* sets, cached in ``--cache-dir``) plus the decode ring. Markdown tables go to stdout,
the numbers as JSON to ``--out`` (and one JSON line at the end of stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def log(msg: str) -> None:
    print(f"[bench_filter] {msg}", file=sys.stderr, flush=True)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Synthetic corpora
# --------------------------------------------------------------------------------------------

SUBJECTS = ["The committee", "Our neighbour", "A local farmer", "The museum", "The library", "A small bakery"]
VERBS = ["reported", "announced", "described", "celebrated", "reviewed", "planned"]
OBJECTS = ["the spring harvest", "a new reading room", "the annual fair", "a river clean-up", "the school concert"]
DETAILS = ["after a long winter", "with help from volunteers", "despite the rain", "to everyone's delight"]


def short_texts(n: int) -> list[str]:
    """Builtin prompts (all sets, both splits), cycled to n documents; order fixed by seed 0."""
    from layerguard.data.builtin import load_builtin

    pool = [s.prompt for name in ("harmful", "harmless", "borderline") for s in load_builtin(name)]
    random.Random(0).shuffle(pool)
    return [pool[i % len(pool)] for i in range(n)]


def long_texts(n: int, chars: int = 4000) -> tuple[list[str], list[str]]:
    """Benign padded documents of ~``chars`` of distinct sentences, and their kind.

    Kinds: ``filler`` (templated everyday sentences only), ``quotes`` (30% of the sentences
    are harmless-set prompts, which are topic-matched to harmful ones) and, every tenth
    document, ``hidden`` (filler with one harmful val prompt in the middle).
    """
    from layerguard.data.builtin import load_builtin

    harmless = [s.prompt for s in load_builtin("harmless")]
    harmful = [s.prompt for s in load_builtin("harmful", "val")]
    rng = random.Random(1)
    docs, kinds = [], []
    for i in range(n):
        kind = "hidden" if i % 10 == 0 else "quotes" if i % 2 else "filler"
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < chars:
            if kind == "quotes" and rng.random() < 0.3:
                parts.append(f"Someone once asked: {rng.choice(harmless)}")
            else:
                parts.append(
                    f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
                    f"{rng.choice(DETAILS)} on day {rng.randrange(1, 10_000)}."
                )
        if kind == "hidden":
            parts.insert(len(parts) // 2, harmful[i // 10 % len(harmful)])
        docs.append(" ".join(parts))
        kinds.append(kind)
    return docs, kinds


def write_jsonl(path: Path, texts: list[str], extra: list[dict[str, Any]] | None = None) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i, t in enumerate(texts):
            row = {"id": i, "text": t, **(extra[i] if extra else {})}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def naive_docs_per_s(guard: Any, texts: list[str]) -> tuple[float, list[float]]:
    from layerguard.guard.types import Exchange

    t0 = time.perf_counter()
    scores = [guard.check(Exchange.from_prompt(t)).ring_scores["classifier"] for t in texts]
    return len(texts) / (time.perf_counter() - t0), scores


def batched_docs_per_s(scorer: Any, texts: list[str], batch: int = 256) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    scores = [d.score for i in range(0, len(texts), batch) for d in scorer.score(texts[i : i + batch])]
    return len(texts) / (time.perf_counter() - t0), scores


def rss_child(path: str, cache_dir: str | None) -> None:
    """Run in a fresh process: filter a file, print peak RSS (MiB) and docs/s as JSON."""
    from layerguard.train.filter import filter_corpus

    d = Path(tempfile.mkdtemp(prefix="bench-filter-rss-"))
    s = filter_corpus(path, d / "k.jsonl", d / "d.jsonl", cache_dir=cache_dir, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"documents": s.documents, "peak_rss_mib": round(peak, 1), "docs_per_s": s.docs_per_s}))


class NullScorer:
    """Keeps everything at score 0: isolates the streaming path (read, parse, write, commit) from scoring."""

    guard_id = "null"
    threshold = 1.0
    rings = ["null"]
    unavailable: list[str] = []

    def score(self, texts: Any) -> list[Any]:
        from layerguard.train.filter import DocScore

        return [DocScore(0.0, None, {"null": 0.0}) for _ in texts]


def io_child(mib: int) -> None:
    """Run in a fresh process: write an ``mib`` MiB corpus, stream it through filter_corpus, print RSS."""
    from layerguard.train.filter import filter_corpus

    d = Path(tempfile.mkdtemp(prefix="bench-filter-io-"))
    inp = d / "in.jsonl"
    texts = short_texts(1000)
    with inp.open("w", encoding="utf-8") as fh:
        i = 0
        while fh.tell() < mib * 2**20:
            fh.write(json.dumps({"id": i, "text": texts[i % len(texts)]}) + "\n")
            i += 1
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        s = filter_corpus(inp, d / "k.jsonl", d / "d.jsonl", scorer=NullScorer(), batch_size=4096, progress=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row = {"input_mib": round(inp.stat().st_size / 2**20), "documents": s.documents, "peak_rss_mib": round(peak, 1)}
        row |= {"rss_before_mib": round(base, 1), "mib_per_s": round(inp.stat().st_size / 2**20 / s.scoring_s, 1)}
        print(json.dumps(row))
    finally:
        for f in d.iterdir():
            f.unlink()
        d.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-short", type=int, default=2000)
    ap.add_argument("--n-long", type=int, default=100)
    ap.add_argument("--naive-short", type=int, default=200, help="short documents timed both ways")
    ap.add_argument("--naive-long", type=int, default=30, help="long documents timed both ways")
    ap.add_argument("--rss-sizes", default="1000,10000")
    ap.add_argument("--held-out", action="store_true", help="also HarmBench test + StrongREJECT (labelled held-out)")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--io-mib", default="", help="only the streaming path (no model) on files of these MiB, e.g. 100,1000"
    )
    ap.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--io-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.cache_dir)
        return
    if args.io_child:
        io_child(args.io_child)
        return
    if args.io_mib:
        rows = []
        for mib in [int(x) for x in args.io_mib.split(",") if x]:
            log(f"streaming path: {mib} MiB through filter_corpus with a null scorer, in a fresh process")
            cmd = [sys.executable, __file__, "--io-child", str(mib)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append([r["input_mib"], r["documents"], r["rss_before_mib"], r["peak_rss_mib"], r["mib_per_s"]])
        print("### Streaming path only (null scorer, no model): peak RSS\n")
        print(table(["input MiB", "documents", "RSS before MiB", "peak RSS MiB", "MiB/s"], rows))
        return

    import torch

    from layerguard.guard.pipeline import Guard
    from layerguard.train.filter import filter_corpus, load_scorer

    result: dict[str, Any] = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    t0 = time.perf_counter()
    scorer = load_scorer(None, cache_dir=args.cache_dir, log=log)
    result["scorer_load_s"] = round(time.perf_counter() - t0, 2)
    result["guard"] = scorer.guard_id
    result["threshold"] = scorer.threshold
    naive_guard = Guard(scorer.guarded.guard.rings, stop_early=False)  # the same rings, one document at a time
    scorer.score(["warm up the encoder"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-filter-"))

    # 1. throughput
    shorts = short_texts(args.n_short)
    longs, kinds = long_texts(args.n_long)
    rows = []
    for kind, texts, k in (("short", shorts, args.naive_short), ("long", longs, args.naive_long)):
        sub = texts[:k]
        log(f"{kind}: naive loop over {len(sub)} documents")
        naive, s_naive = naive_docs_per_s(naive_guard, sub)
        log(f"{kind}: batched over the same {len(sub)} documents")
        batched, s_batched = batched_docs_per_s(scorer, sub)
        max_diff = max(abs(a - b) for a, b in zip(s_naive, s_batched, strict=True))
        log(f"{kind}: filter_corpus end to end over {len(texts)} documents")
        inp = write_jsonl(tmp / f"{kind}.jsonl", texts)
        summ = filter_corpus(inp, tmp / f"{kind}.k.jsonl", tmp / f"{kind}.d.jsonl", scorer=scorer, progress=False)
        mean_chars = sum(map(len, texts)) / len(texts)
        result[kind] = {
            "mean_chars": round(mean_chars),
            "naive_docs_per_s": round(naive, 2),
            "batched_docs_per_s": round(batched, 2),
            "speedup": round(batched / naive, 2),
            "max_score_diff": max_diff,
            "end_to_end_docs": summ.documents,
            "end_to_end_docs_per_s": round(summ.docs_per_s, 2),
            "end_to_end_dropped": summ.dropped,
        }
        if kind == "long":
            dropped_ids = {json.loads(line)["id"] for line in (tmp / "long.d.jsonl").read_text().splitlines()}
            for kind_name in ("hidden", "filler", "quotes"):
                n_kind = kinds.count(kind_name)
                k_kind = sum(kinds[i] == kind_name for i in dropped_ids)
                result["long"][f"dropped_{kind_name}"] = f"{k_kind}/{n_kind}"
        r = result[kind]
        rows.append(
            [kind, r["mean_chars"], k, r["naive_docs_per_s"], r["batched_docs_per_s"], f"{r['speedup']}x"]
            + [f"{r['end_to_end_docs_per_s']} ({r['end_to_end_docs']} docs)"]
        )
    print("### Throughput (documents/s)\n")
    print(
        table(
            ["documents", "mean chars", "timed docs", "naive loop", "batched", "ratio", "filter_corpus end to end"],
            rows,
        )
    )
    lg = result["long"]
    print(f"\nlong documents dropped: with a hidden harmful request {lg['dropped_hidden']}; benign filler only "
          f"{lg['dropped_filler']}; benign with quoted harmless-set prompts {lg['dropped_quotes']}\n")  # fmt: skip

    # 2. memory
    mem_rows = []
    result["rss"] = []
    for n in [int(x) for x in args.rss_sizes.split(",") if x]:
        inp = write_jsonl(tmp / f"rss{n}.jsonl", short_texts(n))
        log(f"peak RSS: filter_corpus on {n} documents in a fresh process")
        cmd = [sys.executable, __file__, "--rss-child", str(inp)] + (
            ["--cache-dir", args.cache_dir] * bool(args.cache_dir)
        )
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=True, env={**os.environ, "LAYERGUARD_PROGRESS": "0"}
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        child["input_mib"] = round(inp.stat().st_size / 2**20, 2)
        result["rss"].append(child)
        mem_rows.append([n, child["input_mib"], child["peak_rss_mib"], round(child["docs_per_s"], 1)])
    print("### Peak RSS (fresh process per size)\n")
    print(table(["documents", "input MiB", "peak RSS MiB", "docs/s"], mem_rows))

    # 3. quality on data the classifier was not trained on
    from layerguard.data.loaders import load_dataset

    def quality(specs: list[str], tag: str) -> list[list[Any]]:
        samples = [(spec, s) for spec in specs for s in load_dataset(spec)]
        random.Random(2).shuffle(samples)
        inp = write_jsonl(tmp / f"{tag}.jsonl", [s.prompt for _, s in samples], [{"source": sp} for sp, _ in samples])
        filter_corpus(inp, tmp / f"{tag}.k.jsonl", tmp / f"{tag}.d.jsonl", scorer=scorer, progress=False)
        dropped = [json.loads(line)["source"] for line in (tmp / f"{tag}.d.jsonl").read_text().splitlines()]
        out = []
        for spec in specs:
            n = sum(sp == spec for sp, _ in samples)
            k = dropped.count(spec)
            meaning = "recall" if ("harmful" in spec or "harmbench" in spec or "strongreject" in spec) else "FPR"
            out.append([spec, n, k, f"{100 * k / n:.1f}%", meaning])
            result.setdefault(tag, {})[spec] = {"n": n, "dropped": k, "drop_rate": k / n}
        return out

    val = ["builtin:harmful:val", "harmbench:val", "builtin:harmless:val", "builtin:borderline:val"]
    print(f"\n### Quality on validation sets (not trained on), threshold {scorer.threshold:.4f}\n")
    print(table(["source", "documents", "dropped", "drop rate", "meaning"], quality(val, "quality_val")))
    if args.held_out:
        print("\n### HELD-OUT evaluation (reported only; nothing was tuned on it)\n")
        print(
            table(
                ["source", "documents", "dropped", "drop rate", "meaning"],
                quality(["harmbench:test", "strongreject"], "held_out"),
            )
        )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    print("\n" + json.dumps(result, default=float))


if __name__ == "__main__":
    main()
