"""``layerguard guard``: build, score and evaluate guards.

``guard build`` settings come from the code defaults (:data:`layerguard.defaults.GUARD_BUILD`),
then ``--config`` (YAML; its ``guard_build:`` section or top level), then
``LAYERGUARD_GUARD_BUILD_<SETTING>`` environment variables, then the flags typed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import ConfigOpt, ModelOpt, echo_err, typed_flags
from layerguard.defaults import BENIGN_TRAIN, GUARD_BUILD, GuardBuildSettings
from layerguard.errors import InvalidInputError

app = typer.Typer(help="Defend: build a layered guard, score prompts, evaluate rings.", no_args_is_help=True)

ENV_PREFIX = "LAYERGUARD_GUARD_BUILD_"


@app.command()
def build(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for guard.yaml and artefacts.")],
    config: ConfigOpt = None,
    model: ModelOpt = GUARD_BUILD.model,
    harmful: Annotated[str, typer.Option(help="Harmful training prompts (dataset spec).")] = GUARD_BUILD.harmful,
    benign: Annotated[
        list[str] | None, typer.Option(help="Benign training prompts (repeatable; default harmless + borderline).")
    ] = None,
    target_fpr: Annotated[
        float, typer.Option(help="False-positive rate allowed on benign training prompts.")
    ] = GUARD_BUILD.target_fpr,
    category_fpr: Annotated[
        list[str] | None, typer.Option(help="Per-category target, e.g. S11_suicide_self_harm=0.01 (repeatable).")
    ] = None,
    variant: Annotated[
        str, typer.Option(help="Latent ring variant: centroid, probe, or auto (best on an inner holdout).")
    ] = GUARD_BUILD.variant,
    batch_size: Annotated[int, typer.Option(min=1)] = GUARD_BUILD.batch_size,
    seed: Annotated[int, typer.Option()] = GUARD_BUILD.seed,
    output_monitor: Annotated[
        bool, typer.Option("--output-monitor/--no-output-monitor", help="Also train the output monitor.")
    ] = GUARD_BUILD.output_monitor,
    classifier: Annotated[
        bool, typer.Option("--classifier/--no-classifier", help="Also train the constitutional classifier.")
    ] = GUARD_BUILD.classifier,
    tool_policy: Annotated[Path | None, typer.Option(help="Tool-call policy YAML (enables the tool gate).")] = None,
    monitor_prompts: Annotated[
        int, typer.Option(min=4, help="Harmful prompts (and as many benign) answered to train the output monitor.")
    ] = GUARD_BUILD.monitor_prompts,
    conversation: Annotated[
        bool, typer.Option("--conversation/--no-conversation", help="Add the multi-turn conversation ring.")
    ] = GUARD_BUILD.conversation,
    augment: Annotated[
        int, typer.Option(min=0, help="Wrapped copies of each training prompt (training-family wrappers).")
    ] = GUARD_BUILD.augment,
    release: Annotated[
        bool,
        typer.Option(
            "--release/--no-release",
            help="Answer benign requests the model would refuse with its refusal direction ablated.",
        ),
    ] = GUARD_BUILD.release,
    second_opinion_fpr: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="Cascade: a classifier block stands only where the latent ring's score reaches the one "
            "that flags this share of benign training prompts out of fold (0: either ring blocks alone).",
        ),
    ] = GUARD_BUILD.second_opinion_fpr,
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the resolved settings as JSON and exit.")
    ] = (False),
) -> None:
    """Build and calibrate a guard on the project's own sets (never on held-out benchmarks).

    Every option but --out may also be set in --config FILE (YAML, e.g. `guard_build: {target_fpr: 0.03}`)
    or as LAYERGUARD_GUARD_BUILD_<OPTION> (e.g. LAYERGUARD_GUARD_BUILD_SEED=1); flags win over both.
    """
    from layerguard.settings import env_layer, flag_layer, layered, yaml_layer

    flags = typed_flags(ctx, list(GuardBuildSettings.model_fields))
    if "category_fpr" in flags:
        flags["category_fpr"] = _category_fpr(flags["category_fpr"])
    layers = [yaml_layer(config, "guard_build")] if config is not None else []
    s = layered(GuardBuildSettings, *layers, env_layer(GuardBuildSettings, ENV_PREFIX), flag_layer(flags))
    if show_config:
        typer.echo(s.model_dump_json(indent=2))
        return
    from layerguard.data.loaders import load_dataset
    from layerguard.guard.build import build_guard
    from layerguard.models import load_model

    h = load_dataset(s.harmful)
    b = [sample for spec in s.benign for sample in load_dataset(spec)]
    lm = load_model(s.model)
    path = build_guard(
        lm,
        out,
        harmful=h,
        benign=b,
        target_fpr=s.target_fpr,
        category_fpr=dict(s.category_fpr),
        variant=s.variant,
        batch_size=s.batch_size,
        seed=s.seed,
        log=echo_err,
        output_monitor=s.output_monitor,
        classifier=s.classifier,
        tool_policy=s.tool_policy,
        monitor_prompts=s.monitor_prompts,
        conversation=s.conversation,
        augment=s.augment,
        release=s.release,
        second_opinion_fpr=s.second_opinion_fpr,
    )
    typer.echo(f"wrote {path}")


def _category_fpr(items: list[str]) -> dict[str, float]:
    """``CATEGORY=RATE`` items as a mapping."""
    out: dict[str, float] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            raise InvalidInputError(f"--category-fpr expects CATEGORY=RATE, got {item!r}") from None
    return out


@app.command("train-classifier")
def train_classifier_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for the classifier artefacts.")],
    constitution: Annotated[Path | None, typer.Option(help="Constitution YAML (default: the packaged one).")] = None,
    harmful: Annotated[str, typer.Option(help="Harmful training prompts.")] = "builtin:harmful:train",
    benign: Annotated[
        list[str] | None, typer.Option(help="Benign training prompts (repeatable; default harmless + borderline).")
    ] = None,
    target_fpr: Annotated[float, typer.Option(help="False-positive rate allowed on benign training prompts.")] = 0.05,
) -> None:
    """Train the constitutional classifier (MiniLM embeddings + sigmoid head) from a constitution file."""
    from layerguard.data.loaders import load_dataset
    from layerguard.guard.rings.classifier import Constitution, train_classifier

    if (out / "classifier.json").exists() or (out.exists() and any(out.iterdir())):
        raise InvalidInputError(f"{out} is not empty", hint="choose a new --out directory")
    const = Constitution.load(constitution)
    b = [s for spec in (benign or BENIGN_TRAIN) for s in load_dataset(spec)]
    model = train_classifier(const, load_dataset(harmful), b, target_fpr=target_fpr)
    model.save(out)
    typer.echo(json.dumps(model.stats, indent=2, default=float))
    typer.echo(f"wrote {out}; add it to a guard.yaml as: - {{name: classifier, params: {{path: {out}}}}}")


def _exchanges(path: Path) -> list[tuple[str, Any]]:
    from layerguard.data.io import read_prompt_records
    from layerguard.guard.types import Exchange, Message

    out = []
    for rid, item in read_prompt_records(path):
        if isinstance(item, str):
            out.append((rid, Exchange.from_prompt(item)))
            continue
        try:
            out.append((rid, Exchange(messages=[Message.model_validate(m) for m in item])))
        except Exception as exc:  # pydantic's message names the bad field
            raise InvalidInputError(f"{path}: record {rid}: bad messages: {exc}") from None
    return out


@app.command()
def score(
    guard: Annotated[Path, typer.Option("--guard", "-g", help="guard.yaml written by `guard build`.")],
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL: prompt or messages, optional id.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL output (default stdout).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model (default: the guard's).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    """Score prompts: one line per input with id, decision, score, category and per-ring scores."""
    from layerguard.guard.config import GuardConfig
    from layerguard.guard.guarded import GuardedModel
    from layerguard.models import load_model

    rows = _exchanges(input)
    cfg = GuardConfig.load(guard)
    lm = load_model(model or cfg.model.name)
    guarded = GuardedModel.load(guard, lm)
    outcomes = guarded.score_many([ex for _, ex in rows], [None] * len(rows), batch_size=batch_size, record_all=False)
    lines = []
    for (rid, _), o in zip(rows, outcomes, strict=True):
        v = o.verdict
        lines.append(
            json.dumps(
                {
                    "id": rid,
                    "decision": o.decision,
                    "score": round(v.score, 6),
                    "category": v.category,
                    "rings": {k: round(s, 6) for k, s in v.ring_scores.items()},
                }
            )
        )
    text = "\n".join(lines) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"scored {len(lines)} prompts -> {output}", err=True)


@app.command("eval")
def eval_cmd(
    guard: Annotated[Path, typer.Option("--guard", "-g", help="guard.yaml written by `guard build`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for eval.json and eval.md.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model (default: the guard's).")] = None,
    wrappers: Annotated[
        str, typer.Option(help="Comma-separated wrappers (or attacks); default: the evaluation wrapper family.")
    ] = "",
    max_per_set: Annotated[
        int | None, typer.Option(min=1, help="Spread prompts scored per plain set (default: all).")
    ] = None,
    max_per_wrapped_set: Annotated[int, typer.Option(min=1, help="Spread prompts scored per wrapped set.")] = 64,
    answers_per_set: Annotated[
        int,
        typer.Option(
            min=0, help="Prompts per plain set the model answers, for its own refusal (borderline: all; 0: skip)."
        ),
    ] = 64,
    answers_per_wrapped_set: Annotated[int, typer.Option(min=0, help="Prompts per wrapped set the model answers.")] = 8,
    no_harmbench: Annotated[bool, typer.Option("--no-harmbench", help="Skip HarmBench val.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    """Measure each ring alone and stacked, against baselines, on plain and wrapped validation prompts."""
    from layerguard.data.builtin import load_builtin
    from layerguard.directions.refusal import derive_refusal_tokens
    from layerguard.guard.build import load_guard
    from layerguard.guard.config import GuardConfig
    from layerguard.guard.guarded import GuardedModel
    from layerguard.guard.pipeline import Guard
    from layerguard.guard.rings.keyword import KeywordRing
    from layerguard.models import load_model
    from layerguard.redteam.guard_eval import evaluate_guard, markdown_at_model_fpr, markdown_release, markdown_table
    from layerguard.redteam.guard_roc import write_roc_figure

    if (out / "eval.json").exists():
        raise InvalidInputError(f"{out} already holds an evaluation", hint="choose a new --out directory")
    cfg = GuardConfig.load(guard)
    lm = load_model(model or cfg.model.name)
    g = load_guard(guard, lm)
    # the rings that judge a request; answers, tool calls and conversations are measured by the audit
    cascade = g.second_opinions
    guarded = GuardedModel(
        Guard(g.at("input"), stop_early=g.stop_early, release=g.release, second_opinions=cascade), lm=lm
    )
    train = load_builtin("harmful", "train")[:64] + load_builtin("harmless", "train")[:32]
    typer.echo("deriving the model's refusal tokens for the refusal baseline ...", err=True)
    try:
        tokens = derive_refusal_tokens(lm, [s.prompt for s in train])
    except InvalidInputError as exc:  # a model that rarely refuses: the first-token baseline is left out
        echo_err(f"no first-token refusal baseline: {exc}")
        tokens = None
    result = evaluate_guard(
        lm,
        guarded,
        baselines=[KeywordRing()],
        target_fpr=float(cfg.build.get("target_fpr", GUARD_BUILD.target_fpr)),
        wrappers=[w for w in wrappers.split(",") if w] or None,
        max_per_set=max_per_set,
        max_per_wrapped_set=max_per_wrapped_set,
        answers_per_set=answers_per_set,
        answers_per_wrapped_set=answers_per_wrapped_set,
        include_harmbench=not no_harmbench,
        refusal_tokens=tokens,
        batch_size=batch_size,
        answering=GuardedModel(g, lm=lm),
    )
    result["command"] = " ".join(["layerguard", *sys.argv[1:]])
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["guard"] = str(guard)
    result["model"] = lm.model_id
    result["refusal_tokens"] = list(tokens.strings) if tokens is not None else []
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2, default=float))
    table = markdown_table(result) + markdown_release(result) + markdown_at_model_fpr(result)
    (out / "eval.md").write_text(table)
    write_roc_figure(result, out / "roc.png")
    typer.echo(table)
    echo_err(f"wrote {out / 'eval.json'}, {out / 'eval.md'} and {out / 'roc.png'}")


@app.command("roc")
def roc_cmd(
    evaluation: Annotated[Path, typer.Argument(help="eval.json written by `guard eval`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("roc.png"),
) -> None:
    """Draw the ROC curves of a guard evaluation (every ring, the stack, the baselines, the model itself)."""
    from layerguard.redteam.guard_roc import write_roc_figure

    hint = "pass the eval.json written by `layerguard guard eval`"
    if not evaluation.is_file():
        raise InvalidInputError(f"no file at {evaluation}", hint=hint)
    try:
        result = json.loads(evaluation.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInputError(f"{evaluation} is not JSON", hint=hint) from None
    if not isinstance(result, dict) or "scores" not in result:
        raise InvalidInputError(f"{evaluation} holds no raw scores", hint=hint)
    echo_err(f"wrote {write_roc_figure(result, out)}")
