"""``layerguard interop``: results to and from Inspect and garak."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Exchange results with Inspect (inspect-ai) and garak.", no_args_is_help=True)


def _read_rows(path: Path) -> list[dict[str, object]]:
    from layerguard.errors import InvalidInputError

    if not path.is_file():
        raise InvalidInputError(f"no results file at {path}", hint="pass the results.jsonl of an audit or run")
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError:
        raise InvalidInputError(f"{path} is not JSONL", hint="pass the results.jsonl of an audit or run") from None


@app.command("inspect-log")
def inspect_log(
    log: Annotated[Path, typer.Argument(help="An Inspect eval log (.eval or .json).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for results.jsonl and summary.json.")],
    judge: Annotated[str, typer.Option(help="Success judge of the summary: refusal or harm.")] = "refusal",
) -> None:
    """Read an Inspect eval log as layerguard results (every answer judged by layerguard's judges)."""
    from layerguard.interop.inspect_bridge import eval_log_rows
    from layerguard.redteam.metrics import summarize

    rows = eval_log_rows(log)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    summary = summarize(rows, judge, {"source": str(log), "judge": judge})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    typer.echo(str(out / "summary.json"))


@app.command("garak-export")
def garak_export(
    results: Annotated[Path, typer.Argument(help="A layerguard results.jsonl.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The garak report.jsonl to write.")],
    guarded: Annotated[bool, typer.Option(help="Export the guarded cells instead of the unguarded ones.")] = False,
) -> None:
    """Write layerguard results as a garak report.jsonl (read it with python -m garak.analyze.analyze_log)."""
    from layerguard.interop.garak import write_garak_report

    typer.echo(str(write_garak_report(_read_rows(results), out, guarded=guarded)))


@app.command("garak-prompts")
def garak_prompts(
    report: Annotated[Path, typer.Argument(help="A garak report.jsonl.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The layerguard dataset (JSONL) to write.")],
) -> None:
    """Turn the prompts of a garak report into a layerguard dataset (pass the file to any --dataset)."""
    from layerguard.interop.garak import load_garak_report

    samples = load_garak_report(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(s.model_dump_json() + "\n" for s in samples))
    typer.echo(f"{out} ({len(samples)} prompts)")


@app.command("garak-config")
def garak_config(
    url: Annotated[str, typer.Option(help="The OpenAI base URL of `layerguard serve`.")] = "http://127.0.0.1:8000/v1",
    model: Annotated[str, typer.Option(help="The served model's name.")] = "layerguard",
    out: Annotated[Path, typer.Option("--out", "-o", help="The garak generator option file to write.")] = Path(
        "garak-generator.json"
    ),
) -> None:
    """Write a garak generator option file that points openai.OpenAICompatible at `layerguard serve`."""
    from layerguard.interop.garak import garak_generator_config

    out.write_text(json.dumps(garak_generator_config(url, model), indent=2) + "\n")
    typer.echo(str(out))
