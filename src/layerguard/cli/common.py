"""Options and helpers shared by the commands: the model option, ``--config`` and the flags a user typed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.defaults import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "BatchOpt", "ConfigOpt", "ModelOpt", "echo_err", "typed_flags"]

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Embedded name, GGUF file, Hugging Face directory or hub id.")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per forward pass.")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML of settings (keys: this command's options with underscores, at the top level or under the "
        "command's section); precedence: defaults < file < environment < flags.",
    ),
]


def typed_flags(ctx: typer.Context, names: list[str] | None = None) -> dict[str, Any]:
    """The options the user gave on the command line (not defaults), by parameter name.

    Args:
        ctx: The command's context.
        names: Restrict to these parameters (default: all but ``config``).
    """
    out: dict[str, Any] = {}
    for name, value in ctx.params.items():
        if name == "config" or (names is not None and name not in names):
            continue
        source = ctx.get_parameter_source(name)
        # compared by name: typer vendors its own click, whose enum is not click's
        if getattr(source, "name", None) == "COMMANDLINE":
            out[name] = value
    return out


def echo_err(message: str) -> None:
    """Print a progress message on stderr (stdout stays machine-readable)."""
    typer.echo(message, err=True)
