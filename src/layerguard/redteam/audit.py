"""``layerguard audit``: build or load a guard, attack the model with and without it, report.

The default suite fits in about 20 minutes for a 0.5B model on a 2-core CPU; ``full``
runs every registered attack on every sample.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layerguard.data.samples import spread
from layerguard.errors import InvalidInputError
from layerguard.redteam.attacks import REGISTRY, get_attack
from layerguard.redteam.judges import get_judge
from layerguard.redteam.metrics import summarize
from layerguard.redteam.report import write_report, write_summary
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


def _refusal_tokens(lm: Any, guard_path: Path, batch_size: int, log: Callable[[str], None]) -> list[int] | None:
    """The model's refusal tokens: from the guard's build, else derived from 48 training prompts."""
    from layerguard.data.builtin import load_builtin
    from layerguard.directions.refusal import derive_refusal_tokens
    from layerguard.guard.config import GuardConfig

    ids = (GuardConfig.load(guard_path).build.get("refusal_tokens") or {}).get("ids")
    if ids:
        return [int(i) for i in ids]
    log("deriving the model's refusal tokens from its answers to 48 training prompts")
    prompts = [
        s.conversation() for s in load_builtin("harmful", "train")[::10] + load_builtin("harmless", "train")[::10]
    ]
    try:
        return list(derive_refusal_tokens(lm, prompts, batch_size=batch_size).ids)
    except InvalidInputError as exc:  # a model that never refuses has no refusal tokens
        log(f"no refusal score: {exc}")
        return None


def run_audit(
    model: str,
    out: Path,
    *,
    guard_path: Path | None = None,
    dataset: str = "builtin:harmful:val",
    benign: str = "builtin:borderline:val",
    n_samples: int | None = 24,
    n_benign: int | None = 32,
    attacks: list[str] | None = None,
    full: bool = False,
    judge: str = "refusal",
    judge_model: str | None = None,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    seed: int = 0,
    output_monitor: bool = True,
    direction: Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Run the audit and write ``summary.json``, ``results.jsonl`` and ``report.html`` into ``out``.

    Args:
        model: The model under test (embedded name, GGUF, directory or hub id).
        out: The run directory (a run it already holds is resumed).
        guard_path: ``guard.yaml``; None builds one into ``out/guard`` (reused on resume).
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
        progress: Show progress bars.
        log: Receives progress messages.

    Raises:
        InvalidInputError: unknown attack or judge, empty dataset, a guard built for another
            model, or an output directory holding a different run.
    """
    from layerguard.data.loaders import load_dataset
    from layerguard.guard.build import build_guard, load_guard
    from layerguard.models import load_model

    t0 = time.time()
    attacks = list(attacks or (full_attacks() if full else DEFAULT_ATTACKS))
    if direction is not None and not any(a.startswith("whitebox_") for a in attacks):
        attacks += ["whitebox_ablate", "whitebox_subtract"]
    for a in attacks:
        get_attack(a)  # unknown names fail before a model is loaded or a guard built
    if judge == "llm" and judge_model is None:
        raise InvalidInputError("the llm judge needs a judge model", hint="pass --judge-model NAME")
    if judge != "llm":
        get_judge(judge)
    harmful = load_dataset(dataset)
    benign_set = load_dataset(benign) if benign else []
    if not full:
        # spread over the file: the project's sets are sorted by category, and the first n
        # prompts would cover only a few hazard categories (or borderline kinds)
        harmful = spread(harmful, n_samples) if n_samples is not None else harmful
        benign_set = spread(benign_set, n_benign) if n_benign is not None else benign_set
    if not harmful:
        raise InvalidInputError(f"dataset {dataset!r} is empty")
    benign_set = [s.model_copy(update={"label": "borderline"}) for s in benign_set]
    lm = load_model(model)
    if guard_path is None:
        guard_path = out / "guard" / "guard.yaml"
        if not guard_path.exists():
            log(f"building a guard for {lm.model_id} in {guard_path.parent}")
            from layerguard.data.builtin import load_builtin

            build_guard(
                lm,
                guard_path.parent,
                harmful=load_builtin("harmful", "train"),
                benign=load_builtin("harmless", "train") + load_builtin("borderline", "train"),
                batch_size=batch_size,
                seed=seed,
                progress=progress,
                log=log,
                output_monitor=output_monitor,
            )
    guard = load_guard(guard_path, lm)
    cfg = RunConfig(
        attacks=attacks,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        judge=judge,
        direction=str(direction) if direction is not None else None,
        refusal_tokens=_refusal_tokens(lm, guard_path, batch_size, log),
        judge_model=judge_model,
    )
    guard_id = f"{guard_path}@{hashlib.sha256(guard_path.read_bytes()).hexdigest()[:12]}"
    runner = Runner(lm, guard, guard_id, out, cfg, progress=progress)
    runner.open(harmful, benign_set)
    log(f"running {len(attacks)} attacks x {len(harmful)} samples + {len(benign_set)} benign, guarded and not")
    rows = runner.run(harmful, benign_set)
    meta = run_metadata(lm, guard_id, cfg)
    summary = summarize(
        rows,
        judge,
        {
            **meta,
            "guard": guard_id,
            "dataset": dataset,
            "benign_dataset": benign,
            "command": " ".join(sys.argv),
            "duration_s": round(time.time() - t0, 1),
        },
    )
    write_results(rows, out / "results.jsonl")
    write_summary(summary, out)
    write_report(summary, rows, out)
    return summary
