"""``layerguard train``: safety rewards and refusal tokens (the training-time rings)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Training-time rings: safety rewards (best-of-n) and refusal tokens (LoRA).",
    no_args_is_help=True,
)

# Commands are registered below, one line each, from their own modules.
from layerguard.cli.train_rewards import best_of_n  # noqa: E402

app.command("best-of-n")(best_of_n)
from layerguard.cli.train_tokens import refusal_tokens, refusal_tokens_sweep  # noqa: E402

app.command("refusal-tokens")(refusal_tokens)
app.command("refusal-tokens-sweep")(refusal_tokens_sweep)
