"""Corpus filter: the outermost, training-time ring.

Before a model is trained, the documents of its corpus are scored with the guard's *text*
rings (the decode ring, the constitutional classifier and any other ring that reads text)
and split into a kept file and a dropped file. No model forward pass is involved: the
classifier reads frozen MiniLM sentence embeddings.

Streaming and resuming:

- The input is read line by line and the outputs are written line by line; memory stays
  bounded by one batch (``batch_size`` documents, at most ``MAX_BATCH_BYTES`` of raw lines)
  however large the file is.
- After each batch the outputs are flushed and fsync'ed, then a sidecar state file
  (``<kept>.state.json``: byte offset and line number in the input, committed sizes of both
  outputs, running counts, an input fingerprint and the settings) is replaced atomically.
  A run that is killed resumes from the last committed batch: the outputs are truncated to
  their committed sizes and reading continues at the committed offset. Batches are cut at
  the same documents whether or not the run was interrupted, so a resumed run writes the
  same bytes as an uninterrupted one.
- A changed input (size, modification time, or a digest of its first and last MiB) or
  changed settings (text field, guard, threshold, batch size) refuse to resume.

Output format:

- Kept lines are the input lines, byte for byte (a last line without a newline gets one).
- Dropped lines are the input record with a ``layerguard`` object added (replacing any
  existing one): ``score``, ``threshold``, ``category``, ``rings`` (score per ring),
  ``flagged_by`` and ``line``.
- Bad lines (not JSON, not an object, not UTF-8, no usable text field) either stop the run
  (``on_bad_line="fail"``: :class:`~layerguard.errors.InvalidInputError` naming the line,
  after committing everything before it) or, with ``on_bad_line="skip"``, go to the dropped
  file as ``{"layerguard": {"bad_line": true, "line": N, "error": ..., "raw": ...}}`` so
  every input line lands in exactly one output. Blank lines are counted and not written.

This module holds :func:`filter_corpus`, which ties the pieces together, and re-exports the
public names of the others: scoring (:mod:`layerguard.train.filter_scoring`), streaming
input/output, bad lines and the resume state (:mod:`layerguard.train.filter_io`), and the
summary (:mod:`layerguard.train.filter_summary`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, NoReturn

from layerguard.errors import InvalidInputError
from layerguard.train.filter_io import (
    _bad_line_hint,
    _check_paths,
    _Line,
    _lines_json,
    _load_state,
    _parse,
    _read_batch,
    _record_bad_line,
    _refuse_overwrite,
    _save_state,
    _truncate_to_committed,
    _write_json_atomic,
    input_fingerprint,
    state_path_for,
)
from layerguard.train.filter_scoring import (
    DocScore,
    DocumentScorer,
    GuardScorer,
    default_classifier,
    guard_id_for,
    load_scorer,
)
from layerguard.train.filter_summary import FilterSummary

__all__ = [
    "DocScore",
    "DocumentScorer",
    "FilterSummary",
    "GuardScorer",
    "default_classifier",
    "filter_corpus",
    "guard_id_for",
    "input_fingerprint",
    "load_scorer",
    "state_path_for",
]

OnBadLine = Literal["skip", "fail"]


def filter_corpus(
    input_path: str | Path,
    kept_path: str | Path,
    dropped_path: str | Path,
    *,
    text_field: str = "text",
    guard: str | Path | None = None,
    scorer: DocumentScorer | None = None,
    threshold: float | None = None,
    on_bad_line: OnBadLine = "fail",
    resume: bool = True,
    summary_path: str | Path | None = None,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> FilterSummary:
    """Split a JSONL corpus into kept and dropped documents by the guard's text rings.

    Args:
        input_path: JSONL, one document (a JSON object) per line.
        kept_path: Receives the kept lines unchanged.
        dropped_path: Receives dropped records with a ``layerguard`` field (and bad lines under ``skip``).
        text_field: The field holding the document text (a string, or a list of ``{"content"}`` messages).
        guard: A ``guard.yaml``; its text rings score (latent rings are skipped). Default: the
            packaged constitution's classifier, trained on the builtin train sets once and cached.
        scorer: Use this scorer instead (``guard`` is then ignored).
        threshold: Drop documents whose classifier score is at least this (default: the
            classifier's calibrated threshold).
        on_bad_line: ``"fail"``: stop at a malformed line (after committing the lines before it);
            ``"skip"``: write it to the dropped file, count it and go on.
        resume: Continue an interrupted run from ``<kept>.state.json``; ``False`` starts over
            and overwrites the outputs.
        summary_path: Also write the summary there as JSON.
        batch_size: Documents scored and committed together.
        cache_dir: Cache root for the built-in classifier.
        progress: Show a progress bar (default: when stderr is a terminal).
        log: Receives warnings and progress messages.

    Returns:
        The summary, cumulative over resumed runs.

    Raises:
        InvalidInputError: a missing input, an output that is the input, an input changed since
            the interrupted run, a bad line under ``fail``, an out-of-range argument.
    """
    t_start = time.perf_counter()
    inp, kept, dropped = Path(input_path), Path(kept_path), Path(dropped_path)
    summ = Path(summary_path) if summary_path is not None else None
    _check_arguments(on_bad_line, batch_size, threshold, text_field)
    _check_paths(inp, kept, dropped, summ)
    fingerprint = input_fingerprint(inp)
    state_file = state_path_for(kept)
    state = _load_state(state_file, inp, kept, dropped, fingerprint, text_field, batch_size) if resume else None
    if state is None:
        _refuse_overwrite(resume, kept, dropped)
    else:
        # refuse before loading any model: a resumed run must score like the interrupted one
        _check_same_scoring(state["summary"], scorer.guard_id if scorer is not None else guard_id_for(guard), threshold)
        if state["summary"].get("complete"):
            log(f"{inp} was already filtered completely (state {state_file}); pass --no-resume to redo it")
            done = FilterSummary.from_dict(state["summary"])
            if summ is not None:
                _write_json_atomic(summ, done.to_dict())
            return done

    if scorer is None:
        scorer = load_scorer(guard, cache_dir=cache_dir, log=log)
    if state is not None:
        summary = FilterSummary.from_dict(state["summary"])
        summary.runs += 1
        summary.on_bad_line = on_bad_line
        offset, lineno = int(state["offset"]), int(state["line"])
        _truncate_to_committed(state, kept, dropped)
        log(f"resuming {inp} at line {lineno + 1} (byte {offset}; {summary.documents} documents done)")
    else:
        summary = FilterSummary(
            input=str(inp),
            kept_path=str(kept),
            dropped_path=str(dropped),
            guard=scorer.guard_id,
            rings=list(scorer.rings),
            unavailable=list(scorer.unavailable),
            threshold=float(threshold) if threshold is not None else float(scorer.threshold),
            text_field=text_field,
            on_bad_line=on_bad_line,
            batch_size=batch_size,
        )
        offset = lineno = 0
        _start_outputs(kept, dropped, state_file)

    _Pass(inp, kept, dropped, state_file, fingerprint, summary, scorer, log, offset, lineno, t_start).run(progress)
    if summ is not None:
        summ.parent.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(summ, summary.to_dict())
    return summary


def _start_outputs(kept: Path, dropped: Path, state_file: Path) -> None:
    """Empty (or create) both outputs and forget any earlier state."""
    for p in (kept, dropped):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    state_file.unlink(missing_ok=True)


def _check_arguments(on_bad_line: str, batch_size: int, threshold: float | None, text_field: str) -> None:
    if on_bad_line not in ("skip", "fail"):
        raise InvalidInputError(f"on_bad_line must be 'skip' or 'fail', got {on_bad_line!r}")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    if threshold is not None and not (0.0 <= threshold <= 1.0):
        raise InvalidInputError(f"threshold must be in [0, 1], got {threshold}", hint="e.g. --threshold 0.5")
    if not text_field:
        raise InvalidInputError("the text field name is empty", hint="e.g. --text-field text")


def _check_same_scoring(old: dict[str, Any], guard_id: str, threshold: float | None) -> None:
    """Refuse to resume a run that scored with another guard or threshold."""
    if old.get("guard") != guard_id or (
        threshold is not None and not math.isclose(float(old.get("threshold", -1)), threshold, abs_tol=1e-12)
    ):
        raise InvalidInputError(
            f"cannot resume: the earlier run used guard {old.get('guard')} at threshold {old.get('threshold')}, "
            f"this one {guard_id} at {'its default' if threshold is None else threshold}",
            hint="rerun with the same --guard and --threshold, or pass --no-resume to start over",
        )


class _Pass:
    """One pass over the input from a committed position: read a batch, score it, write it, commit.

    Args:
        inp: The input file.
        kept: The kept-lines file (opened for appending).
        dropped: The dropped-records file (opened for appending).
        state_file: The sidecar state file replaced after every batch.
        fingerprint: The input's fingerprint (recorded in the state).
        summary: The running summary (its threshold, text field and bad-line policy are used).
        scorer: Scores the documents.
        log: Receives warnings.
        offset: Byte offset in the input to start at.
        lineno: Number of input lines before ``offset``.
        t_start: When the run started (``time.perf_counter()``), for the duration.
    """

    def __init__(
        self,
        inp: Path,
        kept: Path,
        dropped: Path,
        state_file: Path,
        fingerprint: dict[str, Any],
        summary: FilterSummary,
        scorer: DocumentScorer,
        log: Callable[[str], None],
        offset: int,
        lineno: int,
        t_start: float,
    ) -> None:
        self.inp, self.kept, self.dropped, self.state_file = inp, kept, dropped, state_file
        self.fingerprint, self.summary, self.scorer, self.log = fingerprint, summary, scorer, log
        self.offset, self.lineno, self.t_start = offset, lineno, t_start
        self.t_loop = time.perf_counter()
        # earlier runs' totals, which this pass adds to
        self.prior_duration, self.prior_scoring = summary.duration_s, summary.scoring_s
        self.docs_before = summary.documents

    def run(self, progress: bool | None) -> None:
        """Filter from the committed position to the end of the input, committing after every batch."""
        from layerguard.progress import progress_bar

        bar = progress_bar(
            enabled=progress,
            total=self.fingerprint["size"],
            initial=self.offset,
            unit="B",
            unit_scale=True,
            desc="filter",
        )
        try:
            with self.inp.open("rb") as fh, self.kept.open("ab") as kf, self.dropped.open("ab") as df:
                fh.seek(self.offset)
                while self._batch(fh, kf, df, bar):
                    pass
                self._commit(kf, df, complete=True)
        finally:
            bar.close()

    def _batch(self, fh: BinaryIO, kf: BinaryIO, df: BinaryIO, bar: Any) -> bool:
        """Filter and commit the next batch; False at the end of the input."""
        summary = self.summary
        lines, end_line, end_offset = _read_batch(fh, self.lineno, self.offset, summary.batch_size)
        if end_line == self.lineno:
            return False
        parsed = [_parse(ln.raw, ln.lineno, summary.text_field, ln.start) for ln in lines]
        bad_at = next((i for i, ln in enumerate(parsed) if ln.error), None)
        if summary.on_bad_line == "fail" and bad_at is not None:
            self._stop_at_bad_line(parsed, bad_at, kf, df)
        _process(parsed, self.scorer, summary.threshold, summary, kf, df, self.log)
        summary.blank_lines += (end_line - self.lineno) - len(lines)
        bar.update(end_offset - self.offset)
        self.lineno, self.offset = end_line, end_offset
        summary.lines = self.lineno
        self._commit(kf, df, complete=False)
        elapsed = time.perf_counter() - self.t_loop
        bar.set_postfix(
            docs_s=f"{(summary.documents - self.docs_before) / elapsed:.1f}" if elapsed > 0 else "-",
            kept=summary.kept,
            dropped=summary.dropped,
            bad=summary.bad_lines,
        )
        return True

    def _stop_at_bad_line(self, parsed: list[_Line], bad_at: int, kf: BinaryIO, df: BinaryIO) -> NoReturn:
        """Commit the lines before the bad one, so a rerun with --on-bad-line skip goes on from it, and stop."""
        summary, bad = self.summary, parsed[bad_at]
        _process(parsed[:bad_at], self.scorer, summary.threshold, summary, kf, df, self.log)
        summary.blank_lines += (bad.lineno - 1 - self.lineno) - bad_at
        self.lineno, self.offset = bad.lineno - 1, bad.start
        summary.lines = self.lineno
        self._commit(kf, df, complete=False)
        raise InvalidInputError(
            f"{self.inp}:{bad.lineno}: {bad.error}",
            hint=_bad_line_hint(bad.error or "", summary.text_field)
            + f"; the {self.lineno} line(s) before it are written: after fixing the input rerun "
            "with --no-resume, or rerun with --on-bad-line skip to write bad lines to the dropped file",
        )

    def _commit(self, kf: BinaryIO, df: BinaryIO, complete: bool) -> None:
        """Make the outputs durable, then atomically record how far they go."""
        for fh in (kf, df):
            fh.flush()
            os.fsync(fh.fileno())
        now = time.perf_counter()
        self.summary.scoring_s = self.prior_scoring + (now - self.t_loop)
        self.summary.duration_s = self.prior_duration + (now - self.t_start)
        self.summary.complete = complete
        _save_state(
            self.state_file,
            inp=self.inp,
            fingerprint=self.fingerprint,
            dropped=self.dropped,
            offset=self.offset,
            line=self.lineno,
            kept_bytes=kf.tell(),
            dropped_bytes=df.tell(),
            summary=self.summary.to_dict(),
        )


def _process(
    lines: list[_Line],
    scorer: DocumentScorer,
    threshold: float,
    summary: FilterSummary,
    kf: BinaryIO,
    df: BinaryIO,
    log: Callable[[str], None],
) -> None:
    """Score the good lines of a batch and write every line to kept or dropped, in input order."""
    good = [ln for ln in lines if ln.error is None]
    scores: Iterator[DocScore] = iter(scorer.score([ln.text or "" for ln in good]) if good else [])
    for ln in lines:
        if ln.error is not None:
            _record_bad_line(ln, summary, df, log)
            continue
        doc = next(scores)
        flagged = (["classifier"] if doc.score >= threshold else []) + list(doc.vetoes)
        summary.add(doc, bool(flagged), flagged)
        if not flagged:
            kf.write(ln.raw if ln.raw.endswith(b"\n") else ln.raw + b"\n")
            continue
        assert ln.record is not None
        record = dict(ln.record)
        record["layerguard"] = {
            "score": round(doc.score, 6),
            "threshold": round(threshold, 6),
            "category": doc.category,
            "rings": {k: round(v, 6) for k, v in doc.rings.items()},
            "flagged_by": flagged,
            "line": ln.lineno,
        }
        df.write(_lines_json(record))
