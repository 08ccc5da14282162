"""``layerguard audit``: the main job.

Settings come from the code defaults (:data:`layerguard.defaults.AUDIT`), then ``--config``
(a YAML file; its ``audit:`` section or top level), then ``LAYERGUARD_AUDIT_<SETTING>``
environment variables, then the flags typed on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import ConfigOpt, echo_err, typed_flags
from layerguard.defaults import AUDIT, AuditSettings
from layerguard.errors import InvalidInputError

ENV_PREFIX = "LAYERGUARD_AUDIT_"


def audit(
    ctx: typer.Context,
    config: ConfigOpt = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model under test.")] = AUDIT.model,
    guard: Annotated[Path | None, typer.Option("--guard", "-g", help="guard.yaml (default: build one).")] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory (resumes a run it already holds).")
    ] = AUDIT.out,
    full: Annotated[bool, typer.Option("--full", help="Every attack on every sample.")] = AUDIT.full,
    dataset: Annotated[str, typer.Option(help="Harmful prompts (dataset spec).")] = AUDIT.dataset,
    benign: Annotated[str, typer.Option(help="Borderline-benign prompts for over-refusal.")] = AUDIT.benign,
    n: Annotated[int, typer.Option(min=1, help="Harmful samples in the default suite.")] = AUDIT.n,
    n_benign: Annotated[int, typer.Option(min=0, help="Benign samples in the default suite.")] = AUDIT.n_benign,
    attacks: Annotated[str | None, typer.Option(help="Comma-separated attack names ('a+b' composes).")] = None,
    judge: Annotated[
        str, typer.Option(help="Success judge: refusal (patterns), harm (rubric) or llm (needs --judge-model).")
    ] = AUDIT.judge,
    judge_model: Annotated[
        str | None,
        typer.Option(help="A local model that also judges every answer (the llm judge); recorded beside the others."),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = AUDIT.max_new_tokens,
    batch_size: Annotated[int, typer.Option(min=1)] = AUDIT.batch_size,
    seed: Annotated[int, typer.Option()] = AUDIT.seed,
    direction: Annotated[
        Path | None, typer.Option(help="Refusal direction file: adds the white-box attacks (ablation, subtraction).")
    ] = None,
    rebuild_guard: Annotated[
        bool,
        typer.Option(
            "--rebuild-guard",
            help="Build the guard from the current code even if the guard cache holds one for this model, data "
            "and code, or layerguard publishes one for this model (the embedded qwen2.5-coder-0.5b).",
        ),
    ] = AUDIT.rebuild_guard,
    executor: Annotated[
        str, typer.Option("--executor", help="Where the cells run: local (this process) or ray (a Ray cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster address host:port (default: start Ray on this machine)."),
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option("--ray-actors", min=1, help="Model replicas (default: one per GPU, else per CPU).")
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store-url", help="SQLAlchemy URL of the run store (default: OUT/run.sqlite).")
    ] = None,
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the resolved settings as JSON and exit.")
    ] = (False),
) -> None:
    """Attack the model with and without a guard; write report.html, summary.json and results.jsonl.

    Every option may also be set in --config FILE (YAML, e.g. `audit: {n: 8, seed: 1}`) or as
    LAYERGUARD_AUDIT_<OPTION> (e.g. LAYERGUARD_AUDIT_N_BENIGN=0); flags win over both.
    """
    from layerguard.redteam.audit import run_audit
    from layerguard.settings import env_layer, flag_layer, layered, yaml_layer

    flags = typed_flags(ctx, list(AuditSettings.model_fields))
    if "attacks" in flags:
        flags["attacks"] = [a.strip() for a in flags["attacks"].split(",") if a.strip()]
    layers = [yaml_layer(config, "audit")] if config is not None else []
    s = layered(AuditSettings, *layers, env_layer(AuditSettings, ENV_PREFIX), flag_layer(flags))
    if show_config:
        typer.echo(s.model_dump_json(indent=2))
        return
    cells = _executor(executor, ray_address, ray_actors)
    summary = run_audit(
        s.model,
        s.out,
        guard_path=s.guard,
        dataset=s.dataset,
        benign=s.benign,
        n_samples=s.n,
        n_benign=s.n_benign,
        attacks=s.attacks,
        full=s.full,
        judge=s.judge,
        judge_model=s.judge_model,
        max_new_tokens=s.max_new_tokens,
        batch_size=s.batch_size,
        seed=s.seed,
        output_monitor=s.output_monitor,
        direction=s.direction,
        rebuild_guard=s.rebuild_guard,
        executor=cells,
        store_url=store_url,
        log=echo_err,
    )
    _print_times(summary)
    typer.echo(
        json.dumps({"asr": summary["asr"], "over_refusal": summary["over_refusal"], "out": str(s.out)}, indent=2)
    )


def _executor(kind: str, address: str | None, actors: int | None) -> Any:
    """The cell executor named by --executor (None: the runner's own, in this process)."""
    if kind == "local":
        if address is not None or actors is not None:
            raise InvalidInputError("--ray-address and --ray-actors need --executor ray")
        return None
    if kind != "ray":
        raise InvalidInputError(f"--executor must be local or ray, got {kind!r}")
    from layerguard.distributed.audit import RayExecutor

    return RayExecutor(address=address, actors=actors, log=echo_err)


def _print_times(summary: dict[str, Any]) -> None:
    """The stage table and the guard cache's answer, on stderr."""
    from layerguard.progress import stage_table

    echo_err("where the time went (seconds of wall clock; also in summary.json and report.html):")
    echo_err(stage_table(summary["timing"]))
    cache = summary.get("guard_cache") or {}
    if cache.get("key"):
        state = "hit" if cache.get("hit") else "miss"
        echo_err(f"guard cache: {state} (key {str(cache['key'])[:12]}, {cache['path']})")
