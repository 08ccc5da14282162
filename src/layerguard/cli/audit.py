"""``layerguard audit``: the main job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def audit(
    model: Annotated[str, typer.Option("--model", "-m", help="Model under test.")] = "qwen2.5-coder-0.5b",
    guard: Annotated[Path | None, typer.Option("--guard", "-g", help="guard.yaml (default: build one).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumes a run it already holds).")] = Path(
        "runs/audit"
    ),
    full: Annotated[bool, typer.Option("--full", help="Every attack on every sample.")] = False,
    dataset: Annotated[str, typer.Option(help="Harmful prompts (dataset spec).")] = "builtin:harmful:val",
    benign: Annotated[str, typer.Option(help="Borderline-benign prompts for over-refusal.")] = "builtin:borderline:val",
    n: Annotated[int, typer.Option(min=1, help="Harmful samples in the default suite.")] = 24,
    n_benign: Annotated[int, typer.Option(min=0, help="Benign samples in the default suite.")] = 32,
    attacks: Annotated[str | None, typer.Option(help="Comma-separated attack names ('a+b' composes).")] = None,
    judge: Annotated[
        str, typer.Option(help="Success judge: refusal (patterns), harm (rubric) or llm (needs --judge-model).")
    ] = "refusal",
    judge_model: Annotated[
        str | None,
        typer.Option(help="A local model that also judges every answer (the llm judge); recorded beside the others."),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 48,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    direction: Annotated[
        Path | None, typer.Option(help="Refusal direction file: adds the white-box attacks (ablation, subtraction).")
    ] = None,
) -> None:
    """Attack the model with and without a guard; write report.html, summary.json and results.jsonl."""
    from layerguard.redteam.audit import run_audit

    summary = run_audit(
        model,
        out,
        guard_path=guard,
        dataset=dataset,
        benign=benign,
        n_samples=n,
        n_benign=n_benign,
        attacks=[a.strip() for a in attacks.split(",") if a.strip()] if attacks else None,
        full=full,
        judge=judge,
        judge_model=judge_model,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        direction=direction,
        log=lambda m: typer.echo(m, err=True),
    )
    asr = summary["asr"]
    typer.echo(json.dumps({"asr": asr, "over_refusal": summary["over_refusal"], "out": str(out)}, indent=2))
