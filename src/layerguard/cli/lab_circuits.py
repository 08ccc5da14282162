"""``layerguard lab patch|heads|interchange|cipher``: the circuit tools (registered on the ``lab`` app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import DEFAULT_MODEL, BatchOpt, ModelOpt, echo_err
from layerguard.errors import InvalidInputError

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Directory for the JSON results and figures.")]
PairsOpt = Annotated[int, typer.Option("--n", min=1, help="Matched harmful/harmless validation pairs.")]
OffsetOpt = Annotated[int, typer.Option(min=0, help="Skip this many pairs first (disjoint runs).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the random head sets.")]


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in _split(text)]
    except ValueError:
        raise InvalidInputError(f"expected comma-separated integers, got {text!r}") from None


def _setup(model: str, n: int, offset: int, out: Path, result: str) -> tuple[Any, Any, Any]:
    from layerguard.lab.circuits.run import check_out, default_data, refusal_tokens
    from layerguard.models import load_model

    check_out(out, result)
    data = default_data(n, offset)
    lm = load_model(model)
    return lm, data, refusal_tokens(lm, data, log=echo_err)


def patch(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    n: PairsOpt = 16,
    offset: OffsetOpt = 0,
    kinds: Annotated[
        str, typer.Option(help="resid_pre, resid_post, attn_out, mlp_out (layer x position), heads, heads_by_pos.")
    ] = "resid_pre,attn_out,mlp_out,heads",
    positions: Annotated[str, typer.Option(help="Columns to patch: t_inst, post_inst, post_inst[k], -k.")] = (
        "t_inst,post_inst"
    ),
    layers: Annotated[str, typer.Option(help="'all' or comma-separated layers.")] = "all",
    batch_size: BatchOpt = 64,
) -> None:
    """Activation patching, harmful -> matched harmless, at every hook type; metric: refusal log-odds."""
    from layerguard.lab.circuits.patching import _check_kinds
    from layerguard.lab.circuits.run import run_patch
    from layerguard.models.positions import parse_position

    kind_list = _check_kinds(_split(kinds))
    pos_list = _split(positions)
    for p in pos_list:
        parse_position(p)
    lm, data, tokens = _setup(model, n, offset, out, "patch.json")
    run_patch(
        lm,
        out,
        data,
        tokens,
        kinds=kind_list,
        positions=pos_list,
        layers=None if layers == "all" else _ints(layers),
        batch_size=batch_size,
        log=echo_err,
    )
    typer.echo(f"wrote {out / 'patch.json'} and the heatmaps in {out}")


def heads(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    n: PairsOpt = 24,
    offset: OffsetOpt = 0,
    ks: Annotated[str, typer.Option(help="'auto' (1, 2, 4, ... up to a quarter of the heads) or e.g. 1,2,4,8.")] = (
        "auto"
    ),
    n_random: Annotated[int, typer.Option(min=1, help="Random head sets per k.")] = 20,
    ablation: Annotated[str, typer.Option(help="zero, or mean (over the harmless prompts).")] = "zero",
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 32,
) -> None:
    """Direct logit attribution of every head and MLP, and the knock-out cascade (top-k vs k random heads)."""
    from layerguard.lab.circuits.run import run_heads

    if ablation not in ("zero", "mean"):
        raise InvalidInputError(f"unknown ablation {ablation!r}", hint="use zero or mean")
    k_list = None if ks == "auto" else _ints(ks)
    lm, data, tokens = _setup(model, n, offset, out, "heads.json")
    body = run_heads(
        lm,
        out,
        data,
        tokens,
        ks=k_list,
        n_random=n_random,
        mode=ablation,
        seed=seed,
        batch_size=batch_size,
        log=echo_err,
    )
    k = body["knockout"]
    for j, kk in enumerate(k["ks"]):
        typer.echo(f"k={kk:3d}  top-k {k['top'][j]:7.3f} (refusal {k['top_rate'][j]:.2f})  p={k['p_values'][j]:.3f}")
    typer.echo(f"wrote {out / 'heads.json'}, {out / 'dla_heads.png'} and {out / 'knockout.png'}")


def interchange(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    head_list: Annotated[
        str | None, typer.Option("--heads", help="Candidate heads as LAYER.HEAD, comma-separated.")
    ] = None,
    from_heads: Annotated[
        Path | None, typer.Option("--from", help="A heads.json from `lab heads`: use its top --top heads.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many top heads to take from --from.")] = 4,
    n: PairsOpt = 24,
    offset: OffsetOpt = 24,
    positions: Annotated[str, typer.Option(help="Columns where the outputs are swapped.")] = "t_inst,post_inst",
    n_random: Annotated[int, typer.Option(min=1, help="Random head sets for the permutation p-value.")] = 100,
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 64,
) -> None:
    """Swap candidate heads' outputs between matched harmful and harmless prompts; p-value vs random sets."""
    from layerguard.activations.heads import HeadLayout, parse_heads
    from layerguard.lab.circuits.run import run_interchange

    if (head_list is None) == (from_heads is None):
        raise InvalidInputError(
            "give the candidate heads with --heads or --from (one of them)",
            hint="e.g. --heads 12.3,14.0 or --from runs/heads/heads.json --top 4",
        )
    if from_heads is not None:
        if not from_heads.is_file():
            raise InvalidInputError(f"no file {from_heads}", hint="run `layerguard lab heads -o DIR` first")
        head_list = ",".join(h["head"] for h in json.loads(from_heads.read_text())["attribution"]["top_heads"][:top])
    assert head_list is not None
    lm, data, tokens = _setup(model, n, offset, out, "interchange.json")
    chosen = parse_heads(head_list, HeadLayout.of(lm))
    run_interchange(
        lm,
        out,
        data,
        tokens,
        chosen,
        positions=_split(positions),
        n_random=n_random,
        seed=seed,
        batch_size=batch_size,
        log=echo_err,
    )
    typer.echo(f"wrote {out / 'interchange.json'} and {out / 'interchange.png'}")


def cipher(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    n: PairsOpt = 24,
    offset: OffsetOpt = 0,
    encodings: Annotated[str, typer.Option(help="Encoding attacks, comma-separated.")] = "rot13,cipher,base64",
    n_train: Annotated[int, typer.Option(min=2, help="Training prompts per side for the harmfulness direction.")] = 64,
    batch_size: BatchOpt = 8,
) -> None:
    """Plaintext vs encoded requests: harmfulness read, refusal, and plaintext activations injected per layer."""
    from layerguard.lab.circuits.cipher import ENCODINGS
    from layerguard.lab.circuits.run import run_cipher
    from layerguard.redteam.attacks import get_attack

    enc = _split(encodings)
    for e in enc:
        if get_attack(e).family != "encoding":
            raise InvalidInputError(f"{e!r} is not an encoding attack", hint=f"use any of {', '.join(ENCODINGS)}")
    lm, data, tokens = _setup(model, n, offset, out, "cipher.json")
    run_cipher(lm, out, data, tokens, encodings=enc, n_train=n_train, batch_size=batch_size, log=echo_err)
    typer.echo(f"wrote {out / 'cipher.json'}, {out / 'cipher_read.png'} and {out / 'cipher_inject.png'}")
