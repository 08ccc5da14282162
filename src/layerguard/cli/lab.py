"""``layerguard lab``: extract, select, steer, ablate, export and the full study."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import DEFAULT_MODEL, BatchOpt, ModelOpt
from layerguard.errors import InvalidInputError

app = typer.Typer(help="Read the model: harmfulness and refusal directions, steering, ablation.", no_args_is_help=True)


def _load(model: str) -> Any:
    from layerguard.models import load_model

    return load_model(model)


def _samples(spec: str) -> list[Any]:
    from layerguard.data.loaders import load_dataset

    return load_dataset(spec)


@app.command()
def extract(
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for the direction files.")],
    model: ModelOpt = DEFAULT_MODEL,
    harmful: Annotated[str, typer.Option(help="Dataset spec of harmful prompts.")] = "builtin:harmful:train",
    harmless: Annotated[str, typer.Option(help="Dataset spec of matched harmless prompts.")] = "builtin:harmless:train",
    batch_size: BatchOpt = 8,
) -> None:
    """Difference-in-means directions at every layer: harmfulness (t_inst) and refusal candidates (post-inst)."""
    from layerguard.data.loaders import assert_not_held_out
    from layerguard.directions.extract import extract_directions

    h, b = _samples(harmful), _samples(harmless)
    assert_not_held_out(h + b, "extracting directions")
    if out.exists() and any(out.glob("*.safetensors")):
        raise InvalidInputError(f"{out} already holds directions", hint="choose a new --out directory")
    lm = _load(model)
    dirs = extract_directions(lm, h, b, batch_size=batch_size, progress=None)
    for key, d in dirs.items():
        d.save(out / key.replace("@", "_at_").replace("[", "_").replace("]", ""))
    typer.echo(f"wrote {len(dirs)} directions ({', '.join(dirs)}) to {out}")


@app.command()
def study(
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for results, directions and figures.")],
    model: ModelOpt = DEFAULT_MODEL,
    n_select: Annotated[int, typer.Option(min=2, help="Validation prompts per side for selection.")] = 16,
    n_eval: Annotated[int, typer.Option(min=2, help="Validation prompts per side for the causal tests.")] = 72,
    layers: Annotated[str, typer.Option(help="Layers to try in selection: 'auto' or comma-separated.")] = "auto",
    positions: Annotated[
        str, typer.Option(help="Refusal candidates to select among: 'all' or e.g. post_inst[0],post_inst[4].")
    ] = "all",
    n_token_prompts: Annotated[
        int, typer.Option(min=4, help="Harmful prompts answered to derive refusal tokens.")
    ] = 96,
    n_inversion_train: Annotated[
        int, typer.Option(min=2, help="Train prompts per side fitting the reply-inversion judgement read.")
    ] = 96,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 48,
    batch_size: BatchOpt = 8,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Reproduce the harmfulness-vs-refusal findings on a model (results.json, PNGs, summary.md)."""
    from layerguard.lab.study import StudyConfig, run_study

    cfg = StudyConfig(
        n_select=n_select,
        n_eval=n_eval,
        select_layers=None if layers == "auto" else _ints(layers),
        select_positions=None if positions == "all" else [p.strip() for p in positions.split(",") if p.strip()],
        n_token_prompts=n_token_prompts,
        n_inversion_train=n_inversion_train,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    if (out / "results.json").exists():
        raise InvalidInputError(f"{out} already holds study results", hint="choose a new --out directory")
    lm = _load(model)
    run_study(lm, out, cfg, progress=None, log=lambda m: typer.echo(m, err=True))
    typer.echo((out / "summary.md").read_text())


@app.command("select")
def select_cmd(
    directions: Annotated[Path, typer.Option("--directions", "-d", help="Directory written by `lab extract`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Path (without suffix) for the chosen direction.")],
    model: ModelOpt = DEFAULT_MODEL,
    harmful: Annotated[str, typer.Option(help="Harmful validation prompts.")] = "builtin:harmful:val",
    harmless: Annotated[str, typer.Option(help="Harmless validation prompts.")] = "builtin:harmless:val",
    n: Annotated[int, typer.Option(min=2, help="Prompts per side.")] = 16,
    layers: Annotated[str, typer.Option(help="'auto' or comma-separated layers.")] = "auto",
    batch_size: BatchOpt = 8,
) -> None:
    """Score every refusal candidate (bypass, induce, KL) and save the chosen one."""
    from layerguard.data.loaders import assert_not_held_out
    from layerguard.directions.direction import Direction
    from layerguard.directions.refusal import derive_refusal_tokens
    from layerguard.directions.select import select_refusal_direction

    h, b = _samples(harmful)[:n], _samples(harmless)[:n]
    assert_not_held_out(h + b, "selecting a direction")
    files = sorted(directions.glob("refusal_at_*.safetensors"))
    if not files:
        raise InvalidInputError(f"no refusal candidates in {directions}", hint="run `layerguard lab extract` first")
    lm = _load(model)
    cands = {f"refusal@{d.position}": d for d in (Direction.load(f, model=lm) for f in files)}
    train = _samples("builtin:harmful:train")[:64] + _samples("builtin:harmless:train")[:32]
    tokens = derive_refusal_tokens(lm, [s.prompt for s in train], progress=None)
    sel = select_refusal_direction(
        lm,
        cands,
        [s.prompt for s in h],
        [s.prompt for s in b],
        tokens,
        layers=None if layers == "auto" else _ints(layers),
        batch_size=batch_size,
        progress=None,
    )
    sel.direction.save(out)
    Path(str(out) + ".selection.json").write_text(
        json.dumps(
            {
                "explanation": sel.explanation,
                "baseline": sel.baseline,
                "candidates": [c.as_dict() for c in sel.candidates],
                "tokens": list(tokens.strings),
            },
            indent=2,
        )
    )
    typer.echo(sel.explanation)


def _direction(path: Path, lm: Any, layer: int | None) -> Any:
    from layerguard.directions.direction import Direction

    d = Direction.load(path, model=lm)
    return d.with_layer(layer) if layer is not None else d


@app.command()
def steer(
    direction: Annotated[Path, typer.Option("--direction", "-d", help="A direction file.")],
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="Prompt(s) to answer.")],
    model: ModelOpt = DEFAULT_MODEL,
    layer: Annotated[int | None, typer.Option(help="Layer (default: the direction's selected layer).")] = None,
    alpha: Annotated[float, typer.Option(help="Multiple of the direction vector to add.")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Answer prompts with and without adding the direction at one layer."""
    from layerguard.activations.interventions import add_vector
    from layerguard.models.generate import generate

    lm = _load(model)
    d = _direction(direction, lm, layer)
    assert d.layer is not None
    base = generate(lm, prompt, max_new_tokens=max_new_tokens)
    with add_vector(lm, d.at(), d.layer, alpha):
        steered = generate(lm, prompt, max_new_tokens=max_new_tokens)
    for p, a, s in zip(prompt, base, steered, strict=True):
        typer.echo(json.dumps({"prompt": p, "baseline": a, f"steered(alpha={alpha}, layer={d.layer})": s}, indent=2))


@app.command()
def ablate(
    direction: Annotated[Path, typer.Option("--direction", "-d", help="A direction file.")],
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="Prompt(s) to answer.")],
    model: ModelOpt = DEFAULT_MODEL,
    layer: Annotated[int | None, typer.Option(help="Layer whose vector is ablated (default: selected).")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Answer prompts with and without ablating the direction from every residual write."""
    from layerguard.activations.interventions import ablate_direction
    from layerguard.models.generate import generate

    lm = _load(model)
    d = _direction(direction, lm, layer)
    base = generate(lm, prompt, max_new_tokens=max_new_tokens)
    with ablate_direction(lm, d.at()):
        ablated = generate(lm, prompt, max_new_tokens=max_new_tokens)
    for p, a, s in zip(prompt, base, ablated, strict=True):
        typer.echo(json.dumps({"prompt": p, "baseline": a, "ablated": s}, indent=2))


@app.command()
def export(
    direction: Annotated[Path, typer.Option("--direction", "-d", help="A direction file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for the orthogonalized model.")],
    model: ModelOpt = DEFAULT_MODEL,
    layer: Annotated[int | None, typer.Option(help="Layer whose vector is removed (default: selected).")] = None,
) -> None:
    """Fold the ablation into the weights and write a new Hugging Face model directory."""
    from layerguard.activations.interventions import export_model, orthogonalize_weights

    if out.exists() and any(out.iterdir()):
        raise InvalidInputError(f"{out} is not empty", hint="choose a new directory; nothing was overwritten")
    lm = _load(model)
    d = _direction(direction, lm, layer)
    export_model(orthogonalize_weights(lm, d.at()), out)
    typer.echo(f"wrote the orthogonalized model to {out} (load it with --model {out})")


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(f"expected comma-separated integers, got {text!r}") from None


@app.command("ai-modification")
def ai_modification(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for results.jsonl and summary.json.")],
    model: ModelOpt = DEFAULT_MODEL,
    guard: Annotated[
        Path | None, typer.Option("--guard", "-g", help="guard.yaml built for the model (also measure guarded).")
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="Scenarios with label legitimate|malicious.")
    ] = "builtin:ai_modification:val",
    n: Annotated[int | None, typer.Option(min=1, help="At most this many scenarios per side.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
    batch_size: BatchOpt = 8,
) -> None:
    """Refusal on legitimate oversight requests (should be low) vs malicious ones (should be high)."""
    import sys

    from layerguard.lab.ai_modification import format_summary, run_ai_modification, side_of

    samples = _samples(dataset)
    if n is not None:
        samples = [s for side in ("legitimate", "malicious") for s in [x for x in samples if side_of(x) == side][:n]]
    if guard is not None and not guard.is_file():
        raise InvalidInputError(f"no guard at {guard}", hint="build one: layerguard guard build --model ... -o DIR")
    lm = _load(model)
    summary = run_ai_modification(
        lm,
        samples,
        out,
        guard_path=guard,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=None,
        log=lambda m: typer.echo(m, err=True),
        extra_meta={"dataset": dataset, "command": " ".join(sys.argv)},
    )
    typer.echo(format_summary(summary))


@app.command()
def cliff(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for cliff.json, cliff.png, curves, signal/.")],
    model: ModelOpt = DEFAULT_MODEL,
    layer: Annotated[
        int | None, typer.Option(help="Probe layer (default: chosen on an inner holdout of the training prompts).")
    ] = None,
    n: Annotated[int, typer.Option(min=4, help="Training prompts per side (harmful, harmless).")] = 64,
    n_val: Annotated[int, typer.Option(min=2, help="Validation prompts per side for the shown curves.")] = 48,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Answer length (training labels and curves).")] = 32,
    attacks: Annotated[
        str, typer.Option(help="Attacks tried, in order, on refused validation prompts (comma-separated).")
    ] = "refusal_suppression,prefix_injection,roleplay,authority,dan,forged_turns",
    batch_size: BatchOpt = 8,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Refusal-intention probe at every token; curves for refused, complied and jailbroken prompts."""
    import sys

    from layerguard.lab.cliff import CliffConfig, run_cliff_study
    from layerguard.redteam.attacks import get_attack

    names = tuple(a.strip() for a in attacks.split(",") if a.strip())
    for a in names:
        get_attack(a)  # unknown names fail before the model loads
    if (out / "cliff.json").exists():
        raise InvalidInputError(f"{out} already holds a cliff study", hint="choose a new --out directory")
    lm = _load(model)
    if layer is not None:
        from layerguard.activations.hooks import check_layers

        layer = check_layers([layer], lm.n_layers)[0]
    cfg = CliffConfig(
        n_train=n,
        n_val=n_val,
        layer=layer,
        max_new_tokens=max_new_tokens,
        attacks=names,
        batch_size=batch_size,
        seed=seed,
    )
    res = run_cliff_study(
        lm, out, cfg, log=lambda m: typer.echo(m, err=True), extra_meta={"command": " ".join(sys.argv)}
    )

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    for g, v in res["groups"].items():
        typer.echo(
            f"{g:17s} n={v['n']:3d}  t_inst {f(v['mean_score_t_inst'])}  last template "
            f"{f(v['mean_score_last_template_token'])}  first16 {f(v['mean_score_first16_generated'])}"
            f"  cliff(gen) {f(v['cliff_rate_generation']['rate'])}  signal {f(v['signal_fire_rate']['rate'])}"
        )
    typer.echo(f"wrote {out / 'cliff.json'}, {out / 'cliff.png'} and the signal in {out / 'signal'}")


@app.command()
def inversion(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for inversion.json.")],
    model: ModelOpt = DEFAULT_MODEL,
    layer: Annotated[
        int | None,
        typer.Option(
            help="Steering layer (default: three quarters of the depth; 18 on qwen, the layer lab study chose)."
        ),
    ] = None,
    position: Annotated[
        str, typer.Option(help="Refusal direction's position (a post_inst[k] label; default: the last one).")
    ] = "last",
    n_train: Annotated[int, typer.Option(min=4, help="Training pairs for the directions and the read.")] = 128,
    n: Annotated[int, typer.Option(min=4, help="Validation requests per side.")] = 48,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many validation prompts (the study's selection).")] = 12,
    batch_size: BatchOpt = 8,
) -> None:
    """Reply inversion with the judgement read as a projection of the hidden state, not from Yes/No tokens.

    Directions from the training pairs (harmfulness at t_inst, refusal at POSITION), the
    refusal vector and the harmfulness direction at the same norm added at LAYER; the
    judgement read at a later layer along the harmful-minus-harmless direction of judge-framed
    training requests, with both steering vectors projected out of it.
    """
    from layerguard.data.builtin import load_builtin
    from layerguard.directions.extract import extract_directions
    from layerguard.lab.inversion import projection_inversion

    target = out / "inversion.json"
    if target.exists():
        raise InvalidInputError(f"{target} already exists", hint="choose a new --out directory")
    tr_h = load_builtin("harmful", "train")[:n_train]
    tr_b = load_builtin("harmless", "train")[:n_train]
    va_h = load_builtin("harmful", "val")[offset : offset + n]
    va_b = load_builtin("harmless", "val")[offset : offset + n]
    if min(len(va_h), len(va_b)) < 4:
        raise InvalidInputError(
            f"only {min(len(va_h), len(va_b))} validation prompts after --offset {offset}", hint="lower --offset or --n"
        )
    lm = _load(model)
    steer_layer = layer if layer is not None else (3 * lm.n_layers) // 4
    dirs = extract_directions(lm, tr_h, tr_b, batch_size=batch_size, progress=None)
    refusals = sorted(k for k in dirs if k.startswith("refusal@"))
    key = refusals[-1] if position == "last" else f"refusal@{position}"
    if key not in dirs:
        raise InvalidInputError(f"no refusal direction at {position!r}", hint=f"choose one of {', '.join(refusals)}")
    res = projection_inversion(
        lm,
        refusal=dirs[key].at(steer_layer),
        harmfulness=dirs["harmfulness"].unit(steer_layer),
        layer=steer_layer,
        train_harmful=[s.prompt for s in tr_h],
        train_harmless=[s.prompt for s in tr_b],
        eval_harmful=[s.prompt for s in va_h],
        eval_harmless=[s.prompt for s in va_b],
        batch_size=batch_size,
        log=typer.echo,
    )
    res = {"model": lm.describe(), "refusal_direction": key, "offset": offset, **res}
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(res, indent=2, default=float))
    for c, v in res["conditions"].items():
        j = v["judged_harmful"]
        typer.echo(
            f"{c:16s} judged harmful {j['k']}/{j['n']} [{j['lo']:.2f}, {j['hi']:.2f}]"
            f"  shift {v['shift_of_gap']:+.2f} of the gap"
        )
    d = res["harmfulness_minus_refusal"]
    typer.echo(
        f"harmfulness - refusal: {d['mean_diff_of_gap']:+.2f} of the gap, p = {d['p_sign_flip']:.4f}; wrote {target}"
    )


def _register_circuit_commands() -> None:
    from layerguard.cli import lab_circuits

    app.command("patch")(lab_circuits.patch)
    app.command("heads")(lab_circuits.heads)
    app.command("interchange")(lab_circuits.interchange)
    app.command("cipher")(lab_circuits.cipher)


_register_circuit_commands()
