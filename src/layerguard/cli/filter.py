"""``layerguard filter``: split a JSONL corpus into kept and dropped documents (a thin wrapper)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from layerguard.errors import InvalidInputError

EXIT_INTERRUPTED = 130
ExecutorOpt = Annotated[
    str, typer.Option("--executor", help="local (this process, --kept/--dropped) or ray (Ray Data, --out).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="ray: directory for kept/, dropped/, shards/...")]
AddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="ray: cluster address host:port (default: Ray on this machine).")
]
ActorsOpt = Annotated[int | None, typer.Option("--ray-actors", min=1, help="ray: scoring actors.")]
ShardLinesOpt = Annotated[
    int, typer.Option("--shard-lines", min=1, help="ray: JSONL lines per shard (the unit of resumption).")
]


def filter_corpus_cmd(
    input: Annotated[
        Path,
        typer.Argument(help="JSONL corpus, one document (JSON object) per line (ray: also Parquet, or a directory)."),
    ],
    kept: Annotated[
        Path | None, typer.Option("--kept", help="Output: kept lines, byte-identical to the input.")
    ] = None,
    dropped: Annotated[
        Path | None,
        typer.Option("--dropped", help="Output: dropped records with a 'layerguard' field; bad lines under skip."),
    ] = None,
    text_field: Annotated[
        str, typer.Option("--text-field", help="Field holding the text (a string or a list of messages).")
    ] = "text",
    guard: Annotated[
        Path | None,
        typer.Option("--guard", "-g", help="guard.yaml whose text rings score (default: the built-in classifier)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Drop at this classifier score or above (default: the classifier's calibrated threshold)."),
    ] = None,
    on_bad_line: Annotated[
        str, typer.Option("--on-bad-line", help="fail: stop at a malformed line (exit 2); skip: drop it and go on.")
    ] = "fail",
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume", help="Continue an interrupted run from <kept>.state.json; --no-resume starts over."
        ),
    ] = True,
    summary: Annotated[Path | None, typer.Option("--summary", help="Also write the summary as JSON.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Documents scored and committed together.")] = (
        256
    ),
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Cache for the built-in classifier (default $LAYERGUARD_CACHE_DIR)."),
    ] = None,
    executor: ExecutorOpt = "local",
    out: OutOpt = None,
    ray_address: AddressOpt = None,
    ray_actors: ActorsOpt = None,
    shard_lines: ShardLinesOpt = 100_000,
) -> None:
    """Score each document with the guard's text rings (no model forward pass) and split the corpus.

    Streams in constant memory, commits after every batch and resumes after an interruption.
    """
    from layerguard.train.filter import filter_corpus, state_path_for

    if on_bad_line not in ("skip", "fail"):
        raise InvalidInputError(f"--on-bad-line must be skip or fail, got {on_bad_line!r}")
    if executor == "ray":
        common = (text_field, guard, threshold, on_bad_line, resume, batch_size, cache_dir)
        return _filter_ray(input, out, *common, ray_address, ray_actors, shard_lines)
    if executor != "local":
        raise InvalidInputError(f"--executor must be local or ray, got {executor!r}")
    if kept is None or dropped is None or out is not None:
        raise InvalidInputError(
            "the local filter writes --kept FILE and --dropped FILE", hint="or pass --executor ray --out DIR"
        )
    try:
        result = filter_corpus(
            input,
            kept,
            dropped,
            text_field=text_field,
            guard=guard,
            threshold=threshold,
            on_bad_line=on_bad_line,  # type: ignore[arg-type]
            resume=resume,
            summary_path=summary,
            batch_size=batch_size,
            cache_dir=cache_dir,
            log=lambda m: typer.echo(m, err=True),
        )
    except KeyboardInterrupt:
        typer.echo(
            f"\ninterrupted; everything up to the last committed batch is saved in {state_path_for(kept)}: "
            "rerun the same command (without --no-resume) to resume",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    typer.echo(result.table())
    typer.echo(f"kept -> {kept}; dropped -> {dropped}" + (f"; summary -> {summary}" if summary else ""))


def _filter_ray(
    input: Path,
    out: Path | None,
    text_field: str,
    guard: Path | None,
    threshold: float | None,
    on_bad_line: str,
    resume: bool,
    batch_size: int,
    cache_dir: Path | None,
    address: str | None,
    actors: int | None,
    shard_lines: int,
) -> None:
    """``--executor ray``: the filter on Ray Data, into ``--out``."""
    if out is None:
        raise InvalidInputError("--executor ray writes its shards under --out DIR", hint="e.g. --out runs/filtered")
    from layerguard.distributed.filter import filter_corpus_ray

    result = filter_corpus_ray(
        input,
        out,
        text_field=text_field,
        guard=guard,
        threshold=threshold,
        on_bad_line=on_bad_line,
        batch_size=batch_size,
        shard_lines=shard_lines,
        resume=resume,
        actors=actors,
        address=address,
        cache_dir=cache_dir,
        log=lambda m: typer.echo(m, err=True),
    )
    typer.echo(result.table())
    typer.echo(f"kept -> {out / 'kept'}; dropped -> {out / 'dropped'}; summary -> {out / 'summary.json'}")
