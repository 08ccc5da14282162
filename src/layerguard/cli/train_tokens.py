"""``layerguard train refusal-tokens`` and ``refusal-tokens-sweep``: thin commands over :mod:`layerguard.train`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.defaults import BENIGN_TRAIN
from layerguard.errors import InvalidInputError


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


def _cap(samples: list[Any], n: int | None, seed: int) -> list[Any]:
    if n is None or len(samples) <= n:
        return samples
    return random.Random(seed).sample(samples, n)


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file", hint="give a directory (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _parse_thresholds(items: list[str] | None) -> float | dict[str, float]:
    """``0.3`` (shared) or ``CATEGORY=0.3`` items (repeatable); range is checked against the adapter."""
    if not items:
        return 0.5
    shared: float | None = None
    per: dict[str, float] = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        try:
            t = float(value)
        except ValueError:
            raise InvalidInputError(
                f"--threshold expects a number or CATEGORY=NUMBER, got {item!r}", hint="e.g. --threshold 0.3"
            ) from None
        if sep:
            per[key] = t
        else:
            shared = t
    if per:
        return {"__default__": 0.5 if shared is None else shared, **per}
    assert shared is not None
    return shared


def refusal_tokens(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the adapter and refusal_tokens.json.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Base model (embedded name, path or hub id).")] = (
        "smollm2-135m"
    ),
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 240,
    max_train: Annotated[
        int | None, typer.Option("--max-train", min=1, help="At most N prompts from each training set (seeded).")
    ] = None,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate (the tag rows use 10x).")] = 2e-3,
    seed: Annotated[int, typer.Option()] = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    answer_tokens: Annotated[
        int, typer.Option(min=0, help="Tokens of the base model's own answer trained after the respond tag.")
    ] = 12,
    harmful: Annotated[
        str, typer.Option(help="Harmful prompts with hazard categories (dataset spec).")
    ] = "builtin:harmful:train",
    benign: Annotated[
        list[str] | None, typer.Option(help="Benign prompts (repeatable; default harmless + borderline train).")
    ] = None,
) -> None:
    """LoRA-train the model to open each answer with a refusal-category tag or the respond tag."""
    from layerguard.data.loaders import load_dataset
    from layerguard.models import load_model
    from layerguard.train.refusal_tokens import build_examples, save_adapter, train_refusal_tokens

    benign_specs = benign or list(BENIGN_TRAIN)
    h = _cap(load_dataset(harmful), max_train, seed)
    b = [s for spec in benign_specs for s in _cap(load_dataset(spec), max_train, seed)]
    build_examples(h, b)  # data errors surface before the model loads
    out = _out_dir(out)
    lm = load_model(model)
    res = train_refusal_tokens(
        lm,
        h,
        b,
        steps=steps,
        batch_size=batch_size,
        rank=rank,
        lr=lr,
        seed=seed,
        answer_tokens=answer_tokens,
        data_specs=[harmful, *benign_specs],
        log=_echo,
    )
    res.meta["max_train"] = max_train
    res.meta["tag_losses"] = [round(x, 4) for x in res.losses]
    save_adapter(res, out)
    typer.echo(
        json.dumps(
            {
                k: res.meta[k]
                for k in ("model_id", "tags", "steps", "duration_seconds", "tag_loss_first", "tag_loss_last")
            },
            indent=2,
        )
    )
    typer.echo(f"wrote {out}")


def refusal_tokens_sweep(
    adapter: Annotated[Path, typer.Option("--adapter", "-a", help="Directory written by `train refusal-tokens`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for sweep.json and sweep.png.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Base model (default: the adapter's; must have its weights).")
    ] = None,
    harmful: Annotated[str, typer.Option(help="Harmful evaluation prompts.")] = "builtin:harmful:val",
    borderline: Annotated[str, typer.Option(help="Borderline-benign evaluation prompts.")] = "builtin:borderline:val",
    harmless: Annotated[str, typer.Option(help="Harmless evaluation prompts ('' to skip).")] = "builtin:harmless:val",
    grid: Annotated[
        str | None, typer.Option(help="Comma-separated thresholds in [0, 1] (default 0, 0.05, ..., 1).")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(help="Thresholds for the text sample: 0.5, or CATEGORY=T (repeatable)."),
    ] = None,
    text_sample: Annotated[
        int, typer.Option(min=0, help="Generate text for N prompts of each set at --threshold (0: skip).")
    ] = 16,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also measure the untrained model's own refusals.")
    ] = True,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    """Sweep the refusal-token thresholds on val sets: refusal on harmful vs over-refusal on borderline."""
    from layerguard.data.loaders import load_dataset
    from layerguard.models import load_model
    from layerguard.train.refusal_tokens import load_adapter, read_meta
    from layerguard.train.refusal_tokens_eval import baseline_refusal, plot_sweep, sweep

    meta = read_meta(adapter)
    values = _grid(grid, meta["categories"])
    th = _text_thresholds(threshold, meta["categories"])
    sets = {
        "harmful": load_dataset(harmful),
        "borderline": load_dataset(borderline),
        "harmless": load_dataset(harmless) if harmless else [],
    }
    out = _out_dir(out)
    lm = load_model(model or meta["model"])
    res = load_adapter(adapter, lm)
    result: dict[str, Any] = {
        "model_id": meta["model_id"],
        "adapter": str(adapter),
        "adapter_meta": {k: v for k, v in meta.items() if k != "tag_losses"},
        "eval_specs": {"harmful": harmful, "borderline": borderline, "harmless": harmless},
        "seed": meta["seed"],
    }
    result.update(
        sweep(
            res,
            harmful=sets["harmful"],
            borderline=sets["borderline"],
            harmless=sets["harmless"],
            grid=values,
            batch_size=batch_size,
        )
    )
    if text_sample:
        result["text_sample"] = _text_sample(res, sets, th, text_sample, batch_size)
    if baseline:
        result["baseline"] = baseline_refusal(lm, sets, batch_size=batch_size)
    (out / "sweep.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_sweep(result, out / "sweep.png")
    summary = [
        {
            "threshold": r["threshold"],
            **{
                k: round(r[f"{k}_refusal"]["rate"], 3)
                for k in ("harmful", "borderline", "harmless")
                if f"{k}_refusal" in r
            },
        }
        for r in result["shared"]
    ]
    typer.echo(json.dumps({"shared": summary, "baseline": result.get("baseline")}, indent=2))
    typer.echo(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")


def _grid(grid: str | None, categories: list[str]) -> list[float] | None:
    """The ``--grid`` thresholds (each checked), or None for the default grid."""
    from layerguard.train.refusal_tokens_eval import resolve_thresholds

    if grid is None:
        return None
    try:
        values = [float(x) for x in grid.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(f"--grid {grid!r} is not a list of numbers", hint="e.g. --grid 0,0.25,0.5") from None
    if not values:
        raise InvalidInputError("--grid is empty", hint="e.g. --grid 0,0.25,0.5,0.75,1")
    for v in values:
        resolve_thresholds(categories, v)
    return values


def _text_thresholds(items: list[str] | None, categories: list[str]) -> Any:
    """The per-category thresholds of the text sample, from ``--threshold`` items."""
    from layerguard.train.refusal_tokens_eval import resolve_thresholds

    parsed = _parse_thresholds(items)
    if isinstance(parsed, dict):
        default = parsed.pop("__default__")
        return resolve_thresholds(categories, parsed, default=default)
    return resolve_thresholds(categories, parsed)


def _text_sample(res: Any, sets: dict[str, list[Any]], th: Any, n: int, batch_size: int) -> dict[str, Any]:
    """Generate text for ``n`` prompts of each set: tag refusal vs text refusal, and examples."""
    from layerguard.directions.refusal import is_refusal_text
    from layerguard.stats import rate
    from layerguard.train.refusal_tokens import RESPOND
    from layerguard.train.refusal_tokens_eval import generate_with_tags

    texts: dict[str, Any] = {"thresholds": th, "n_per_set": n}
    for name, samples in sets.items():
        sub = samples[:n]
        if not sub:
            continue
        pairs = generate_with_tags(res, [s.conversation() for s in sub], th, batch_size=batch_size)
        texts[name] = {
            "tag_refusal": rate([tag != RESPOND for tag, _ in pairs]),
            "text_refusal": rate([is_refusal_text(t) for _, t in pairs]),
            "tag_text_agree": rate([(tag != RESPOND) == is_refusal_text(t) for tag, t in pairs]),
            "examples": [{"id": s.id, "tag": tag, "text": t} for s, (tag, t) in zip(sub[:3], pairs, strict=False)],
        }
    return texts
