"""``layerguard redteam ciphers|bon|latent-attack``: the cipher, best-of-N and latent-ring studies.

Each writes its JSON into ``--out`` (``ciphers.json``, ``bon.json``, ``latent_attack.json``);
``ciphers`` and ``bon`` resume an interrupted run there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import DEFAULT_MODEL

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Target model.")]
GuardOpt = Annotated[Path | None, typer.Option("--guard", "-g", help="guard.yaml: also measure through the guard.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory.")]
DatasetOpt = Annotated[str, typer.Option(help="Harmful prompts (dataset spec).")]
NOpt = Annotated[int, typer.Option("--n", min=1, help="Prompts, spread over the dataset.")]
TokensOpt = Annotated[int, typer.Option(min=1, help="Answer length.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Prompts per batch.")]


def _load(model: str, guard: Path | None) -> tuple[Any, Any, str | None]:
    from layerguard.guard.guarded import GuardedModel
    from layerguard.models import load_model

    lm = load_model(model)
    if guard is None:
        return lm, None, None
    return lm, GuardedModel.load(guard, lm), hashlib.sha256(guard.read_bytes()).hexdigest()[:16]


def _samples(dataset: str, n: int) -> list[Any]:
    from layerguard.data.loaders import load_dataset
    from layerguard.data.samples import spread

    return spread(load_dataset(dataset), n)


def _write(out: Path, name: str, obj: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(obj, indent=2, default=float) + "\n")
    typer.echo(str(out / name))


def ciphers(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    guard: GuardOpt = None,
    dataset: DatasetOpt = "builtin:harmful:val",
    n: NOpt = 24,
    max_new_tokens: TokensOpt = 48,
    batch_size: BatchOpt = 8,
) -> None:
    """Base64, ROT13, leetspeak, in-context substitution cipher and Morse: ASR with/without the guard, decoding."""
    from layerguard.redteam.ciphers import cipher_study

    lm, guarded, gid = _load(model, guard)
    cipher_study(lm, guarded, gid, _samples(dataset, n), out, max_new_tokens=max_new_tokens, batch_size=batch_size)
    typer.echo(str(out / "ciphers.json"))


def bon(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    guard: GuardOpt = None,
    dataset: DatasetOpt = "builtin:harmful:val",
    n: NOpt = 24,
    n_max: Annotated[int, typer.Option(min=1, help="Draws per prompt at most (N).")] = 32,
    sigma: Annotated[float, typer.Option(min=0.0, max=1.0, help="Augmentation strength.")] = 0.4,
    max_new_tokens: TokensOpt = 48,
    batch_size: BatchOpt = 8,
) -> None:
    """Best-of-N augmentation (scrambling, capitalisation, character noise): ASR vs N and its power-law fit."""
    from layerguard.redteam.bon_run import run_bon

    lm, guarded, gid = _load(model, guard)
    summary = run_bon(
        lm,
        guarded,
        _samples(dataset, n),
        out,
        guard_id=gid,
        n_max=n_max,
        sigma=sigma,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    _write(out, "bon.json", {**summary, "meta": {**summary["meta"], "weights_sha256": lm.weights_sha256}})


def latent_attack(
    out: OutOpt,
    guard: Annotated[Path, typer.Option("--guard", "-g", help="guard.yaml with a latent ring (the target).")],
    model: ModelOpt = DEFAULT_MODEL,
    dataset: DatasetOpt = "builtin:harmful:val",
    n: NOpt = 8,
    steps: Annotated[int, typer.Option(min=1, help="Search steps per prompt.")] = 30,
    n_tokens: Annotated[int, typer.Option(min=1, help="Suffix length (tokens).")] = 12,
    n_candidates: Annotated[int, typer.Option(min=1, help="Swaps scored per step.")] = 48,
    refusal_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the model's refusal in the loss.")] = 0.0,
    max_new_tokens: TokensOpt = 48,
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
) -> None:
    """Adaptive white-box attack on the latent ring: a GCG-style suffix against its score, vs a random suffix."""
    from layerguard.guard.config import GuardConfig
    from layerguard.redteam.latent_suffix import attack_latent_ring, summarize_latent_attack
    from layerguard.version import __version__

    lm, guarded, gid = _load(model, guard)
    tokens = None
    if refusal_weight > 0:
        ids = (GuardConfig.load(guard).build.get("refusal_tokens") or {}).get("ids")
        tokens = [int(i) for i in ids] if ids else None
    samples = _samples(dataset, n)
    result = attack_latent_ring(
        guarded,
        [s.prompt for s in samples],
        steps=steps,
        max_new_tokens=max_new_tokens,
        n_tokens=n_tokens,
        n_candidates=n_candidates,
        refusal_tokens=tokens,
        refusal_weight=refusal_weight,
        seed=seed,
    )
    meta = {
        "model": lm.model_id,
        "weights_sha256": lm.weights_sha256,
        "guard": gid,
        "dataset": dataset,
        "sample_ids": [s.id for s in samples],
        "steps": steps,
        "n_tokens": n_tokens,
        "n_candidates": n_candidates,
        "refusal_weight": refusal_weight,
        "seed": seed,
        "layerguard_version": __version__,
    }
    _write(out, "latent_attack.json", {"meta": meta, "summary": summarize_latent_attack(result), **result})


def register(app: typer.Typer) -> None:
    """Add the three study commands to the ``redteam`` command group."""
    app.command("ciphers")(ciphers)
    app.command("bon")(bon)
    app.command("latent-attack")(latent_attack)
