"""``layerguard train best-of-n``: best-of-n selection with the safety rewards (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import DEFAULT_MODEL, echo_err
from layerguard.errors import InvalidInputError


def best_of_n(
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for summary.json and candidates.jsonl.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Embedded name, GGUF file, Hugging Face directory or hub id.")
    ] = DEFAULT_MODEL,
    n: Annotated[int, typer.Option("--n", min=1, help="Candidates sampled per prompt.")] = 4,
    per_set: Annotated[int, typer.Option(min=1, help="Prompts taken (evenly spread) from each set.")] = 24,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Dataset spec (repeatable; default builtin harmful/harmless/borderline val)."),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 48,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (> 0).")] = 0.8,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass, in (0, 1].")] = 0.95,
    seed: Annotated[int, typer.Option()] = 0,
    tau: Annotated[float, typer.Option(help="Harm tolerated before the penalty starts.")] = 0.1,
    lam: Annotated[float, typer.Option("--lambda", help="Fixed lambda of the safety-constrained reward.")] = 10.0,
    budget: Annotated[float, typer.Option(help="Mean r_harm allowed (the dual-ascent constraint).")] = 0.05,
    dual_lr: Annotated[float, typer.Option(help="Dual-ascent step size of the adaptive lambda.")] = 10.0,
    dual_batch: Annotated[int, typer.Option(min=1, help="Prompts per dual-ascent update.")] = 8,
    prompt_labels: Annotated[
        bool,
        typer.Option(
            "--prompt-labels/--classifier",
            help="Give the rewards the prompts' labels, or let the classifier ring judge the prompts (default).",
        ),
    ] = False,
    classifier: Annotated[
        Path | None,
        typer.Option(help="Trained classifier (or guard) folder; default: train one on the builtin train sets."),
    ] = None,
    prompt_threshold: Annotated[
        float | None,
        typer.Option(help="Flag a prompt at this classifier score instead of the ring's calibrated verdict."),
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Constitutional rules YAML (default: the built-in rules).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Sequences per forward pass.")] = 8,
    from_run: Annotated[
        Path | None,
        typer.Option(
            help="Select again from an earlier run's candidates (no model; its prompts and sampling settings are kept)."
        ),
    ] = None,
) -> None:
    """Sample n answers per prompt, keep one by each strategy, and judge harm and helpfulness.

    Strategies: greedy, random-of-n, best-of-n by r_help, by the safety-constrained reward
    (fixed and dual-ascent lambda) and by the constitutional reward. Never uses held-out sets.
    """
    from layerguard.train.best_of_n import DEFAULT_SETS, BestOfNSettings, select_prompts
    from layerguard.train.rewards import load_rules

    _check_args(out, prompt_labels, classifier, prompt_threshold)
    settings = BestOfNSettings(
        n=n,
        per_set=per_set,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        tau=tau,
        lam=lam,
        budget=budget,
        dual_lr=dual_lr,
        dual_batch=dual_batch,
        batch_size=batch_size,
        prompt_labels=prompt_labels,
        sets=tuple(sets or DEFAULT_SETS),
    )
    rule_list = load_rules(rules) if rules is not None else None
    previous = _previous_run(from_run, settings) if from_run is not None else None
    samples = previous[0] if previous is not None else select_prompts(settings.sets, per_set)
    judge = None if prompt_labels else _prompt_judge(classifier, settings.seed, prompt_threshold)
    if previous is not None:
        summary, records = _select_again(previous, settings, judge, rule_list)
        summary["settings"]["from_run"] = str(from_run)
    else:
        summary, records = _sample_and_select(model, samples, settings, judge, rule_list)
    if rules is not None:
        summary["settings"]["rules_file"] = str(rules)
    if classifier is not None:
        summary["settings"]["classifier"] = str(classifier)
    summary["settings"]["prompt_threshold"] = prompt_threshold
    _write_run(out, summary, records)
    typer.echo(format_table(summary))
    typer.echo(f"wrote {out / 'summary.json'} and {out / 'candidates.jsonl'}")


def _check_args(out: Path, prompt_labels: bool, classifier: Path | None, prompt_threshold: float | None) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"{out} exists and is not an empty directory", hint="choose a new --out directory")
    if prompt_labels and (classifier is not None or prompt_threshold is not None):
        raise InvalidInputError(
            "--classifier PATH and --prompt-threshold have no effect with --prompt-labels", hint="drop one of them"
        )


def _prompt_judge(classifier: Path | None, seed: int, threshold: float | None) -> Any:
    """The classifier ring judging the prompts: loaded from ``classifier`` or trained on the builtin sets."""
    from layerguard.train.rewards import ClassifierPromptJudge

    echo_err("loading the classifier ring" if classifier else "training the classifier ring (~10 s)")
    return ClassifierPromptJudge.load(classifier, seed=seed, threshold=threshold)


def _previous_run(from_run: Path, settings: Any) -> Any:
    """An earlier run (prompts, greedy answers, candidates, summary); its sampling settings replace ours."""
    from layerguard.train.best_of_n import load_run

    previous = load_run(from_run)
    old = previous[3]["settings"]
    for key in ("n", "per_set", "max_new_tokens", "temperature", "top_p", "seed", "batch_size", "target_words"):
        setattr(settings, key, old[key])
    settings.sets = tuple(old["sets"])
    return previous


def _select_again(previous: Any, settings: Any, judge: Any, rules: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Select again from an earlier run's candidates (no model)."""
    from layerguard.train.best_of_n import select_and_evaluate

    samples, greedy, cands, old = previous
    return select_and_evaluate(
        samples,
        greedy,
        cands,
        settings,
        model_id=old["model"],
        prompt_judge=judge,
        rules=rules,
        seconds={f"{k}_of_the_earlier_run": v for k, v in old["seconds"].items() if k != "scoring"},
    )


def _sample_and_select(
    model: str, samples: Any, settings: Any, judge: Any, rules: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from layerguard.models import load_model
    from layerguard.progress import progress_enabled
    from layerguard.train.best_of_n import run_best_of_n

    return run_best_of_n(
        load_model(model),
        samples,
        settings,
        prompt_judge=judge,
        rules=rules,
        progress=progress_enabled(None),
        log=echo_err,
    )


def _write_run(out: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    with (out / "candidates.jsonl").open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, default=float) + "\n")


def _pct(r: dict[str, float]) -> str:
    return f"{100 * r['rate']:5.1f}% [{100 * r['lo']:4.1f}, {100 * r['hi']:5.1f}]"


def format_table(summary: dict[str, Any]) -> str:
    """The results as a plain-text table: rates with Wilson 95% intervals."""
    res = summary["results"]
    labels = [lab for lab in ("harmful", "harmless", "borderline") if lab in next(iter(res.values()))]
    head = f"{'strategy':32}"
    if "harmful" in labels:
        head += f" {'harmful: harm rate':28} {'harmful: complied':28}"
    for lab in labels:
        if lab != "harmful":
            head += f" {lab + ': answered':28} {lab + ': helpful':28}"
    lines = [head]
    for name, r in res.items():
        row = f"{name:32}"
        if "harmful" in labels:
            row += f" {_pct(r['harmful']['harmful']):28} {_pct(r['harmful']['answered']):28}"
        for lab in labels:
            if lab != "harmful":
                row += f" {_pct(r[lab]['answered']):28} {_pct(r[lab]['helpful']):28}"
        lines.append(row)
    return "\n".join(lines)
