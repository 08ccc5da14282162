"""``layerguard audit``: build or load a guard, attack the model with and without it, report.

``full`` runs every registered attack on every sample. Every stage's wall time (model load,
guard build and its steps, generation and the guard per attack, judges, the live turns,
report) goes into ``summary.json`` as ``timing``; the guard comes from the guard cache
(:mod:`layerguard.guard.cache`) unless one is given.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layerguard.data.samples import spread
from layerguard.defaults import AUDIT, GUARD_BUILD
from layerguard.errors import InvalidInputError
from layerguard.progress import StageTimes
from layerguard.redteam.attacks import REGISTRY, get_attack
from layerguard.redteam.executors import CellExecutor
from layerguard.redteam.judges import get_judge
from layerguard.redteam.metrics import summarize
from layerguard.redteam.report import write_report, write_summary
from layerguard.redteam.report.timing import precision
from layerguard.redteam.runner import RunConfig, Runner, run_metadata, write_results

DEFAULT_ATTACKS = [
    "direct",
    "roleplay",
    "dan",
    "refusal_suppression",
    "prefix_injection",
    "forged_turns",
    "base64",
    "past_tense",
    "authority",
    "many_shot_1",
    "many_shot_4",
    "many_shot_16",
]


def full_attacks() -> list[str]:
    """Every registered attack plus two compositions."""
    return sorted(a for a in REGISTRY if a != "escalation" and REGISTRY[a].family != "whitebox") + [
        "base64+roleplay",
        "leetspeak+dan",
    ]


def _refusal_tokens(
    lm: Any, guard_path: Path, batch_size: int, log: Callable[[str], None], progress: bool | None = None
) -> list[int] | None:
    """The model's refusal tokens: from the guard's build, else derived from 48 training prompts."""
    from layerguard.data.builtin import load_builtin
    from layerguard.directions.refusal import derive_refusal_tokens
    from layerguard.guard.config import GuardConfig

    ids = (GuardConfig.load(guard_path).build.get("refusal_tokens") or {}).get("ids")
    if ids:
        return [int(i) for i in ids]
    log("deriving the model's refusal tokens from its answers to 48 training prompts")
    sets = [load_builtin("harmful", "train"), load_builtin("harmless", "train")]
    prompts = [s.conversation() for x in sets for s in x[:: max(1, len(x) // 24)][:24]]  # spread over categories
    try:
        return list(derive_refusal_tokens(lm, prompts, batch_size=batch_size, progress=progress).ids)
    except InvalidInputError as exc:  # a model that never refuses has no refusal tokens
        log(f"no refusal score: {exc}")
        return None


def _attack_list(attacks: list[str] | None, full: bool, direction: Path | None) -> list[str]:
    """The attacks to run; unknown names fail here, before a model is loaded or a guard built."""
    names = list(attacks or (full_attacks() if full else DEFAULT_ATTACKS))
    if direction is not None and not any(a.startswith("whitebox_") for a in names):
        names += ["whitebox_ablate", "whitebox_subtract"]
    for a in names:
        get_attack(a)
    return names


def _check_judge(judge: str, judge_model: str | None) -> None:
    if judge == "llm" and judge_model is None:
        raise InvalidInputError("the llm judge needs a judge model", hint="pass --judge-model NAME")
    if judge != "llm":
        get_judge(judge)


def _samples(
    dataset: str, benign: str, n_samples: int | None, n_benign: int | None, full: bool
) -> tuple[list[Any], list[Any]]:
    """The harmful prompts and the borderline-benign ones (labelled ``borderline``)."""
    from layerguard.data.loaders import load_dataset

    harmful = load_dataset(dataset)
    benign_set = load_dataset(benign) if benign else []
    if not full:
        # spread over the file: the project's sets are sorted by category, and the first n
        # prompts would cover only a few hazard categories (or borderline kinds)
        harmful = spread(harmful, n_samples) if n_samples is not None else harmful
        benign_set = spread(benign_set, n_benign) if n_benign is not None else benign_set
    if not harmful:
        raise InvalidInputError(f"dataset {dataset!r} is empty")
    return harmful, [s.model_copy(update={"label": "borderline"}) for s in benign_set]


def _guard_build_args(batch_size: int, seed: int, output_monitor: bool) -> dict[str, Any]:
    """The arguments of ``layerguard guard build`` with its defaults (:data:`GUARD_BUILD`): the same guard."""
    from layerguard.data.loaders import load_dataset

    g = GUARD_BUILD
    return {
        "harmful": load_dataset(g.harmful),
        "benign": [sample for spec in g.benign for sample in load_dataset(spec)],
        "target_fpr": g.target_fpr,
        "category_fpr": dict(g.category_fpr),
        "variant": g.variant,
        "batch_size": batch_size,
        "seed": seed,
        "output_monitor": output_monitor,
        "classifier": g.classifier,
        "tool_policy": g.tool_policy,
        "monitor_prompts": g.monitor_prompts,
        "conversation": g.conversation,
        "augment": g.augment,
        "release": g.release,
        "second_opinion_fpr": g.second_opinion_fpr,
    }


def _ensure_guard(
    lm: Any,
    out: Path,
    guard_path: Path | None,
    *,
    batch_size: int,
    seed: int,
    output_monitor: bool,
    rebuild: bool,
    progress: bool | None,
    log: Callable[[str], None],
    times: StageTimes,
) -> tuple[Path, dict[str, Any]]:
    """The guard to audit and where it came from (recorded in the summary as ``guard_cache``).

    ``guard_path`` if given; else the run's own copy in ``out/guard`` (a resumed run); else
    the guard the cache holds for this model, data, settings and code, built on a miss and
    copied into ``out/guard`` so the run directory keeps the guard it measured.
    """
    if guard_path is not None:
        return guard_path, {"status": "given"}
    local = out / "guard" / "guard.yaml"
    if local.exists() and not rebuild:
        log(f"using the guard of the run in {out} ({local})")
        return local, {"status": "resumed"}
    from layerguard.guard.cache import cached_guard

    args = _guard_build_args(batch_size, seed, output_monitor)
    clock = times.parts("guard build", log)
    try:
        published = None if rebuild else _published(lm, args, log)
        if published is not None:
            source, info = published.path, {"status": "published", **published.as_dict()}
        else:
            got = cached_guard(lm, rebuild=rebuild, progress=progress, log=clock, **args)
            source, info = got.path, {"status": "hit" if got.hit else "miss", **got.as_dict()}
    finally:
        clock.close()
    if local.parent.exists():
        shutil.rmtree(local.parent)
    shutil.copytree(source.parent, local.parent)
    return local, info


def _published(lm: Any, args: dict[str, Any], log: Callable[[str], None]) -> Any:
    """The published guard for this model and build, unless the cache holds one built by the current code."""
    from layerguard.guard.build import build_guard
    from layerguard.guard.cache import cache_hit, key_inputs
    from layerguard.guard.published import published_guard

    if cache_hit(lm, **args) is not None:
        return None
    got = published_guard(lm, key_inputs(lm, build_guard, args)["arguments"], log=log)
    if got is not None:
        built = got.provenance.get("built") or {}
        log(
            f"using the guard published for {lm.name} (built {built.get('date', '?')} by the code of commit "
            f"{built.get('commit', '?')}; measured in {got.provenance.get('evaluation', '?')}); "
            "--rebuild-guard builds one from the current code"
        )
    return got


def _write_outputs(rows: list[dict[str, Any]], summary: dict[str, Any], out: Path, times: StageTimes) -> None:
    """results.jsonl, report.html, then summary.json with every stage's time (the report's own included)."""
    with times.stage("results file"):
        write_results(rows, out / "results.jsonl")
    summary["timing"] = times.as_dict()
    summary["duration_s"] = summary["timing"]["total_s"]
    with times.stage("report"):
        write_report(summary, rows, out)
    summary["timing"] = times.as_dict()
    summary["duration_s"] = summary["timing"]["total_s"]
    write_summary(summary, out)


def run_audit(
    model: str,
    out: Path,
    *,
    guard_path: Path | None = AUDIT.guard,
    dataset: str = AUDIT.dataset,
    benign: str = AUDIT.benign,
    n_samples: int | None = AUDIT.n,
    n_benign: int | None = AUDIT.n_benign,
    attacks: list[str] | None = AUDIT.attacks,
    full: bool = AUDIT.full,
    judge: str = AUDIT.judge,
    judge_model: str | None = AUDIT.judge_model,
    max_new_tokens: int = AUDIT.max_new_tokens,
    batch_size: int = AUDIT.batch_size,
    seed: int = AUDIT.seed,
    output_monitor: bool = AUDIT.output_monitor,
    direction: Path | None = AUDIT.direction,
    rebuild_guard: bool = AUDIT.rebuild_guard,
    executor: CellExecutor | None = None,
    store_url: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Run the audit and write ``summary.json``, ``results.jsonl`` and ``report.html`` into ``out``.

    The defaults are :data:`layerguard.defaults.AUDIT` (the CLI's, too).

    Args:
        model: The model under test (embedded name, GGUF, directory or hub id).
        out: The run directory (a run it already holds is resumed).
        guard_path: ``guard.yaml``; None takes the guard cache's for this model, data and settings
            (built on a miss, as ``layerguard guard build`` builds it) and copies it into ``out/guard``
            (reused on resume).
        dataset: Harmful prompts (dataset spec).
        benign: Borderline-benign prompts for over-refusal (dataset spec; "" for none).
        n_samples: Harmful prompts in the default suite.
        n_benign: Benign prompts in the default suite.
        attacks: Attack names (``a+b`` composes); default: the default suite.
        full: Every attack on every sample.
        judge: The success judge: ``refusal``, ``harm`` or ``llm``.
        judge_model: A local model that also judges every answer (``judge="llm"`` makes it the success judge).
        max_new_tokens: Answer length.
        batch_size: Prompts per generation batch.
        seed: Recorded seed (generation is greedy).
        output_monitor: Train the output monitor when building a guard.
        direction: Refusal direction file; adds the white-box attacks.
        executor: Where the cells are computed (default: in this process; e.g.
            :class:`layerguard.distributed.audit.RayExecutor` on a Ray cluster).
        store_url: A SQLAlchemy URL for the run store (default: ``out/run.sqlite``).
        rebuild_guard: Build the guard even if the guard cache holds one for these inputs.
        progress: Show progress bars.
        log: Receives progress messages.

    Raises:
        InvalidInputError: unknown attack or judge, empty dataset, a guard built for another
            model, or an output directory holding a different run.
    """
    from layerguard.guard.build import load_guard
    from layerguard.models import load_model

    times = StageTimes()
    with times.stage("setup"):
        attacks = _attack_list(attacks, full, direction)
        _check_judge(judge, judge_model)
        harmful, benign_set = _samples(dataset, benign, n_samples, n_benign, full)
    with times.stage("model load"):
        lm = load_model(model, progress=progress)
    guard_path, cache_info = _ensure_guard(
        lm, out, guard_path, batch_size=batch_size, seed=seed, output_monitor=output_monitor,
        rebuild=rebuild_guard, progress=progress, log=log, times=times,
    )  # fmt: skip
    with times.stage("guard load"):
        guard = load_guard(guard_path, lm)
    with times.stage("refusal tokens"):
        tokens = _refusal_tokens(lm, guard_path, batch_size, log, progress)
    cfg = RunConfig(
        attacks=attacks,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        judge=judge,
        direction=str(direction) if direction is not None else None,
        refusal_tokens=tokens,
        judge_model=judge_model,
    )
    guard_id = f"{guard_path}@{hashlib.sha256(guard_path.read_bytes()).hexdigest()[:12]}"
    runner = Runner(
        lm, guard, guard_id, out, cfg, progress=progress, executor=executor, store_url=store_url, times=times
    )
    runner.open(harmful, benign_set)
    log(f"running {len(attacks)} attacks x {len(harmful)} samples + {len(benign_set)} benign, guarded and not")
    rows = runner.run(harmful, benign_set)
    extra = {"guard": guard_id, "guard_cache": cache_info, "dataset": dataset, "benign_dataset": benign}
    return _finish(rows, judge, {**run_metadata(lm, guard_id, cfg), **extra}, out, times)


def _finish(
    rows: list[dict[str, Any]], judge: str, meta: dict[str, Any], out: Path, times: StageTimes
) -> dict[str, Any]:
    """Summarize the cells (with the precision of their rates) and write every output."""
    with times.stage("summary"):
        summary = summarize(rows, judge, {**meta, "command": " ".join(sys.argv)})
        summary["precision"] = precision(summary)
    _write_outputs(rows, summary, out, times)
    return summary
