"""The corpus filter on Ray Data: JSONL and Parquet inputs scored by an actor pool, resumable per shard.

A shard is a run of ``shard_lines`` lines of a JSONL file (the driver cuts each file once,
recording the byte offset and line number where every shard starts) or a whole Parquet file
(whose rows become JSON lines). Ray Data reads the pending shards in parallel, an actor pool
of scorers (``map_batches``; each actor loads the guard's text rings once) scores the
documents, and the driver receives the lines in input order and writes them with the local
filter's own code (:func:`layerguard.train.filter._process`): the same kept lines, byte for
byte, the same dropped records (with the same line numbers) and the same per-category counts
as ``layerguard filter`` on the same file.

Output, under ``out_dir``: ``kept/<shard>.jsonl``, ``dropped/<shard>.jsonl``, ``shards/<shard>.json``
(that shard's summary, written last: its presence marks the shard done) and ``summary.json``
(the sum over shards). A rerun skips the shards already done (refusing ones whose input or
settings changed) and redoes the others from their start.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerguard.distributed.cluster import apply_env, check_reachable, connect, forwarded_env, require_ray
from layerguard.errors import InvalidInputError
from layerguard.train.filter import DocScore, FilterSummary, input_fingerprint, load_scorer
from layerguard.train.filter import _process as write_batch
from layerguard.train.filter_io import _parse, _write_json_atomic
from layerguard.train.filter_summary import HIST_BINS

FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def shard_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """The input files: the files given, or the JSONL/Parquet files of a directory, sorted."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    out: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            out += sorted(p for p in item.iterdir() if p.suffix in FORMATS and p.is_file())
        elif item.is_file():
            if item.suffix not in FORMATS:
                raise InvalidInputError(f"{item}: unknown format {item.suffix!r}", hint="use .jsonl or .parquet files")
            out.append(item)
        else:
            raise InvalidInputError(f"input {item} does not exist", hint="pass JSONL/Parquet files or a directory")
    if not out:
        raise InvalidInputError(f"no .jsonl or .parquet files in {inputs}", hint="pass JSONL/Parquet files")
    return out


@dataclass(frozen=True)
class Shard:
    """A piece of the input: ``path`` from byte ``start`` to ``end`` (JSONL), or a whole Parquet file."""

    path: str
    index: int
    start: int = 0
    end: int = -1
    first_line: int = 0  # lines of the file before this shard

    @property
    def name(self) -> str:
        """A stable output name: the file's stem, a digest of its absolute path, the shard's index."""
        p = Path(self.path)
        return f"{p.stem}-{hashlib.sha256(self.path.encode()).hexdigest()[:8]}-{self.index:05d}"


def cut_shards(path: Path, shard_lines: int) -> list[Shard]:
    """JSONL: one shard per ``shard_lines`` lines (one pass over the file); Parquet: the file."""
    full = str(path.resolve())
    if FORMATS[path.suffix] == "parquet":
        return [Shard(full, 0)]
    shards: list[Shard] = []
    start = line = n = 0
    with path.open("rb") as fh:
        for _ in iter(fh.readline, b""):
            n += 1
            if n == shard_lines:
                end = fh.tell()
                shards.append(Shard(full, len(shards), start, end, line))
                start, line, n = end, line + shard_lines, 0
        if n:
            shards.append(Shard(full, len(shards), start, fh.tell(), line))
    return shards


def _read_shard(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A Ray Data ``flat_map``: one row per line of a shard (the line's bytes, newline kept)."""
    if row["kind"] == "parquet":
        import pyarrow.parquet as pq

        for rec in pq.read_table(row["path"]).to_pylist():
            yield {"shard": row["name"], "raw": (json.dumps(rec, ensure_ascii=False, default=str) + "\n").encode()}
        return
    with open(row["path"], "rb") as fh:
        fh.seek(row["start"])
        while fh.tell() < row["end"]:
            yield {"shard": row["name"], "raw": fh.readline()}


class _ScoreActor:
    """A ``map_batches`` actor: the guard's text rings, loaded once, score a batch of lines."""

    def __init__(self, guard: str | None, cache_dir: str | None, text_field: str, env: dict[str, str]) -> None:
        apply_env(env)
        self.scorer = load_scorer(guard, cache_dir=cache_dir)
        self.text_field = text_field

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        parsed = [_parse(bytes(r), 0, self.text_field) for r in batch["raw"]]
        good = [i for i, ln in enumerate(parsed) if ln.error is None]
        docs = [""] * len(parsed)
        scores = self.scorer.score([parsed[i].text or "" for i in good]) if good else []
        for i, d in zip(good, scores, strict=True):
            docs[i] = json.dumps([d.score, d.category, d.rings, list(d.vetoes)])
        return {"shard": batch["shard"], "raw": batch["raw"], "doc": np.array(docs, dtype=object)}


class _Precomputed:
    """A scorer for :func:`write_batch` that hands back the scores the actors computed, in order."""

    def __init__(self, docs: list[DocScore]) -> None:
        self.docs = iter(docs)

    def score(self, texts: Sequence[str]) -> list[DocScore]:
        return [next(self.docs) for _ in texts]


class _ShardWriter:
    """One output shard: temporary kept/dropped files renamed into place when the shard is complete."""

    def __init__(self, out_dir: Path, shard: Shard, settings: dict[str, Any]) -> None:
        self.shard = shard
        self.kept = out_dir / "kept" / f"{shard.name}.jsonl"
        self.dropped = out_dir / "dropped" / f"{shard.name}.jsonl"
        self.marker = out_dir / "shards" / f"{shard.name}.json"
        self.tmp = {p: p.with_name(f".{p.name}.tmp-{os.getpid()}") for p in (self.kept, self.dropped)}
        for tmp in self.tmp.values():
            tmp.parent.mkdir(parents=True, exist_ok=True)
        self.kf, self.df = self.tmp[self.kept].open("wb"), self.tmp[self.dropped].open("wb")
        self.summary = FilterSummary(
            input=shard.path, kept_path=str(self.kept), dropped_path=str(self.dropped), **settings
        )
        self.lineno = shard.first_line
        self.t0 = time.perf_counter()

    def add(self, rows: Sequence[tuple[bytes, str]], log: Callable[[str], None]) -> None:
        """Write a run of this shard's rows (raw line, the actor's scores) with the local filter's code."""
        lines, docs = [], []
        for raw, doc in rows:
            self.lineno += 1
            if not raw.strip():
                self.summary.blank_lines += 1
                continue
            ln = _parse(raw, self.lineno, self.summary.text_field)
            if ln.error is not None and self.summary.on_bad_line == "fail":
                raise InvalidInputError(
                    f"{self.shard.path}:{self.lineno}: {ln.error}",
                    hint="fix the line, or rerun with --on-bad-line skip; the shards already done are kept",
                )
            lines.append(ln)
            if ln.error is None:
                score, category, rings, vetoes = json.loads(doc)
                docs.append(DocScore(float(score), category, dict(rings), tuple(vetoes)))
        scorer: Any = _Precomputed(docs)
        write_batch(lines, scorer, self.summary.threshold, self.summary, self.kf, self.df, log)
        self.summary.lines = self.lineno - self.shard.first_line

    def finish(self, fingerprint: dict[str, Any]) -> FilterSummary:
        """Move the outputs into place, then write the shard's marker (last)."""
        for path, fh in ((self.kept, self.kf), (self.dropped, self.df)):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self.tmp[path], path)
        self.summary.complete = True
        self.summary.scoring_s = self.summary.duration_s = time.perf_counter() - self.t0
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.marker, {"fingerprint": fingerprint, "summary": self.summary.to_dict()})
        return self.summary

    def abandon(self) -> None:
        """Drop an unfinished shard's temporary outputs (a rerun redoes the shard from its start)."""
        for fh in (self.kf, self.df):
            fh.close()
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


def merge_summaries(parts: Sequence[FilterSummary], base: FilterSummary) -> FilterSummary:
    """The sum of the shards' summaries (counts, categories, rings, histogram, timings) into ``base``."""
    for p in parts:
        for k in ("lines", "blank_lines", "bad_lines", "documents", "kept", "dropped"):
            setattr(base, k, getattr(base, k) + getattr(p, k))
        for cat, c in p.categories.items():
            mine = base.categories.setdefault(cat, {"seen": 0, "kept": 0, "dropped": 0})
            for k in mine:
                mine[k] += c[k]
        for ring, n in p.dropped_by.items():
            base.dropped_by[ring] = base.dropped_by.get(ring, 0) + n
        base.histogram = [a + b for a, b in zip(base.histogram, p.histogram, strict=True)]
        base.score_sum += p.score_sum
        base.bad_line_examples += [{"input": p.input, **e} for e in p.bad_line_examples]
        base.scoring_s += p.scoring_s
    base.bad_line_examples = base.bad_line_examples[:50]
    assert len(base.histogram) == HIST_BINS
    return base


def _plan(
    files: list[Path], out: Path, settings: dict[str, Any], shard_lines: int, resume: bool, log: Callable[[str], None]
) -> tuple[list[FilterSummary], list[Shard], dict[str, dict[str, Any]]]:
    """Summaries of the shards done earlier, the shards to filter, and each file's fingerprint."""
    done: list[FilterSummary] = []
    todo: list[Shard] = []
    prints: dict[str, dict[str, Any]] = {}
    for f in files:
        prints[str(f.resolve())] = {**input_fingerprint(f), "shard_lines": shard_lines}
        for shard in cut_shards(f, shard_lines):
            marker = out / "shards" / f"{shard.name}.json"
            if not (resume and marker.exists()):
                todo.append(shard)
                continue
            old = json.loads(marker.read_text(encoding="utf-8"))
            same = {k: old["summary"].get(k) for k in ("guard", "threshold", "text_field")} == {
                k: settings[k] for k in ("guard", "threshold", "text_field")
            }
            if old.get("fingerprint") != prints[shard.path] or not same:
                raise InvalidInputError(
                    f"cannot resume: {marker} was written for another input, guard, threshold or shard size",
                    hint="rerun with the same input and settings, or pass --no-resume to start over",
                )
            done.append(FilterSummary.from_dict(old["summary"]))
    log(f"{len(done)} shard(s) done earlier, {len(todo)} to filter")
    return done, todo, prints


def _drain(
    batches: Iterator[dict[str, Any]],
    todo: list[Shard],
    out: Path,
    settings: dict[str, Any],
    prints: dict[str, dict[str, Any]],
    log: Callable[[str], None],
) -> list[FilterSummary]:
    """Write the scored lines, arriving in input order, shard by shard; finish each shard as the next begins."""
    finished: list[FilterSummary] = []
    pending = iter(todo)
    writer: _ShardWriter | None = None

    def next_writer(name: str | None) -> _ShardWriter | None:
        nonlocal writer
        if writer is not None:
            finished.append(writer.finish(prints[writer.shard.path]))
            log(f"shard {writer.shard.name} done ({len(finished)}/{len(todo)})")
        writer = None
        for shard in pending:  # shards that produced no rows (an empty Parquet file) finish empty
            writer = _ShardWriter(out, shard, settings)
            if shard.name == name:
                return writer
            finished.append(writer.finish(prints[shard.path]))
            writer = None
        return None

    try:
        for batch in batches:
            names, raws, docs = list(batch["shard"]), list(batch["raw"]), list(batch["doc"])
            i = 0
            while i < len(names):
                j = i
                while j < len(names) and names[j] == names[i]:
                    j += 1
                if writer is None or writer.shard.name != names[i]:
                    if next_writer(str(names[i])) is None:
                        raise RuntimeError(f"rows of shard {names[i]} arrived out of order")
                assert writer is not None
                writer.add([(bytes(r), str(d)) for r, d in zip(raws[i:j], docs[i:j], strict=True)], log)
                i = j
        next_writer(None)
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    return finished


def _score_on_ray(
    todo: list[Shard],
    out: Path,
    settings: dict[str, Any],
    prints: dict[str, dict[str, Any]],
    guard: str | Path | None,
    cache_dir: str | Path | None,
    actors: int | None,
    address: str | None,
    progress: bool | None,
    log: Callable[[str], None],
) -> list[FilterSummary]:
    """Read the shards with Ray Data, score them on an actor pool, write them on the driver, in order."""
    from layerguard.progress import progress_enabled

    ray = require_ray()
    cluster = connect(address, log=log)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the driver writes each shard's lines in input order
        ctx.enable_progress_bars = progress_enabled(progress)
        res = cluster.actor_resources(1.0)
        n = actors or cluster.max_actors(1.0)
        log(f"{len(todo)} shard(s) on {n} scoring actor(s), each {res}")
        items = [{**s.__dict__, "name": s.name, "kind": FORMATS[Path(s.path).suffix]} for s in todo]
        ds = (
            ray.data.from_items(items, override_num_blocks=len(items))
            # reading is I/O: it declares no CPU, so a pool holding every CPU cannot starve it
            .flat_map(_read_shard, num_cpus=0)
            .map_batches(
                _ScoreActor,
                fn_constructor_kwargs={
                    "guard": str(guard) if guard is not None else None,
                    "cache_dir": str(cache_dir) if cache_dir is not None else None,
                    "text_field": settings["text_field"],
                    "env": forwarded_env(),
                },
                concurrency=n,
                batch_size=settings["batch_size"],
                batch_format="numpy",
                **res,
            )
        )
        return _drain(ds.iter_batches(batch_size=None, batch_format="numpy"), todo, out, settings, prints, log)
    finally:
        cluster.close()


def filter_corpus_ray(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    text_field: str = "text",
    guard: str | Path | None = None,
    threshold: float | None = None,
    on_bad_line: str = "fail",
    batch_size: int = 256,
    shard_lines: int = 100_000,
    resume: bool = True,
    actors: int | None = None,
    address: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> FilterSummary:
    """Split JSONL/Parquet inputs into kept and dropped shards on a Ray cluster (see the module docstring).

    Args:
        inputs: JSONL or Parquet files, or a directory of them.
        out_dir: Receives ``kept/``, ``dropped/``, ``shards/`` and ``summary.json``.
        text_field: As in :func:`~layerguard.train.filter.filter_corpus`; so are ``guard``,
            ``threshold``, ``on_bad_line``, ``batch_size`` (documents per actor call) and ``cache_dir``.
        guard: A guard.yaml, or None for the built-in classifier.
        threshold: Drop at this classifier score or above.
        on_bad_line: ``fail`` or ``skip``.
        batch_size: Documents per scoring call.
        shard_lines: Lines of a JSONL file per shard (the unit of resumption).
        resume: Skip the shards done by an earlier run; False redoes every shard.
        actors: Scoring actors (default: one per CPU, or one per GPU).
        address: A Ray cluster (None: Ray on this machine).
        cache_dir: Cache root of the built-in classifier (a path every node sees).
        progress: Ray Data's progress bars.
        log: Receives cluster, shard and per-run messages.

    Raises:
        InvalidInputError: missing or unknown inputs, bad arguments, a bad line under ``fail``,
            or a changed input or setting on resume.
    """
    import shutil

    from layerguard.train.filter import _check_arguments

    t0 = time.perf_counter()
    _check_arguments(on_bad_line, batch_size, threshold, text_field)
    if shard_lines < 1:
        raise InvalidInputError(f"shard_lines must be at least 1, got {shard_lines}")
    files, out = shard_inputs(inputs), Path(out_dir)
    require_ray()
    if address:
        check_reachable(address)
    scorer = load_scorer(guard, cache_dir=cache_dir, log=log)  # the built-in classifier is trained here, once
    settings: dict[str, Any] = {
        "guard": scorer.guard_id,
        "rings": list(scorer.rings),
        "unavailable": list(scorer.unavailable),
        "threshold": float(threshold) if threshold is not None else float(scorer.threshold),
        "text_field": text_field,
        "on_bad_line": on_bad_line,
        "batch_size": batch_size,
    }
    if not resume and (out / "shards").exists():
        shutil.rmtree(out / "shards")
    done, todo, prints = _plan(files, out, settings, shard_lines, resume, log)
    if todo:
        done += _score_on_ray(todo, out, settings, prints, guard, cache_dir, actors, address, progress, log)
    summary = merge_summaries(
        done,
        FilterSummary(
            input=", ".join(str(f) for f in files),
            kept_path=str(out / "kept"),
            dropped_path=str(out / "dropped"),
            **settings,
        ),
    )
    summary.complete = True
    summary.duration_s = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(out / "summary.json", summary.to_dict())
    return summary
