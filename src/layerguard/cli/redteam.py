"""``layerguard redteam``: attacker-model attacks (crescendo, pair), agent scenarios (agents), and the report.

Each attack command writes ``summary.json``, ``results.jsonl`` and ``run.sqlite`` into ``--out``;
rerunning the same command resumes the run there. ``report`` renders one HTML report from an
audit run and any number of study directories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import DEFAULT_MODEL, echo_err

app = typer.Typer(
    help="Attacker-model attacks (Crescendo, PAIR/TAP), agent scenarios, the other studies, and their report.",
    no_args_is_help=True,
)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Target model.")]
GuardOpt = Annotated[
    Path | None,
    typer.Option("--guard", "-g", help="guard.yaml: also attack through the guard (default: unguarded only)."),
]
AttackerOpt = Annotated[
    str,
    typer.Option(
        "--attacker",
        "-a",
        help="Attacker: a local model (embedded name, GGUF, directory, hub id) or an OpenAI-compatible URL.",
    ),
]
AttackerModelOpt = Annotated[
    str | None, typer.Option("--attacker-model", help="Model name at the attacker URL (default: the first listed).")
]
AttackerKeyOpt = Annotated[
    str | None, typer.Option("--attacker-key", envvar="LAYERGUARD_ATTACKER_KEY", help="Bearer key of the attacker URL.")
]
JudgeOpt = Annotated[str, typer.Option(help="Success judge against the goal: harm (rubric), refusal, or llm.")]
JudgeModelOpt = Annotated[str | None, typer.Option(help="The llm judge's local model.")]
DatasetOpt = Annotated[str, typer.Option(help="Goals: harmful prompts (dataset spec).")]
NOpt = Annotated[int, typer.Option("--n", min=1, help="Goals, spread over the dataset.")]
TokensOpt = Annotated[int, typer.Option(min=1, help="Target answer length.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Requests per batch.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the attacker's sampling.")]
RetriesOpt = Annotated[int, typer.Option(min=0, help="Retries of a failed request to an attacker URL.")]
TimeoutOpt = Annotated[float, typer.Option(min=0.1, help="Timeout of one request to an attacker URL (s).")]


def _print(summary: dict[str, Any], out: Path) -> None:
    phases = summary.get("phases", {})
    last = {k: v["asr_by_budget"][max(v["asr_by_budget"], key=int)] for k, v in phases.items() if v["asr_by_budget"]}
    short = {k: {"asr": round(v["rate"], 4), "lo": round(v["lo"], 4), "hi": round(v["hi"], 4)} for k, v in last.items()}
    typer.echo(json.dumps({"attack": summary["attack"], "asr_at_budget": short, "out": str(out)}, indent=2))


@app.command()
def crescendo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumes a run it holds).")],
    model: ModelOpt = DEFAULT_MODEL,
    guard: GuardOpt = None,
    attacker: AttackerOpt = "smollm2-135m",
    attacker_model: AttackerModelOpt = None,
    attacker_key: AttackerKeyOpt = None,
    attacker_timeout: TimeoutOpt = 60.0,
    attacker_retries: RetriesOpt = 3,
    dataset: DatasetOpt = "builtin:harmful:val",
    n: NOpt = 8,
    turns: Annotated[int, typer.Option(min=1, max=20, help="Turn budget per conversation.")] = 5,
    judge: JudgeOpt = "harm",
    judge_model: JudgeModelOpt = None,
    max_new_tokens: TokensOpt = 64,
    attacker_temperature: Annotated[float, typer.Option(min=0.0)] = 0.7,
    batch_size: BatchOpt = 8,
    seed: SeedOpt = 0,
) -> None:
    """Crescendo: an attacker model escalates over several turns, against the target unguarded then guarded."""
    from layerguard.redteam.attacker_run import run_adaptive
    from layerguard.redteam.crescendo import CrescendoConfig

    cfg = CrescendoConfig(
        turns=turns,
        max_new_tokens=max_new_tokens,
        attacker_temperature=attacker_temperature,
        judge=judge,
        judge_model=judge_model,
        batch_size=batch_size,
        seed=seed,
    )
    summary = run_adaptive(
        "crescendo", model=model, out=out, guard_path=guard, attacker=attacker, attacker_model=attacker_model,
        attacker_key=attacker_key, attacker_timeout_s=attacker_timeout, attacker_retries=attacker_retries,
        dataset=dataset, n=n, cfg=cfg, log=echo_err,
    )  # fmt: skip
    _print(summary, out)


@app.command()
def pair(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumes a run it holds).")],
    model: ModelOpt = DEFAULT_MODEL,
    guard: GuardOpt = None,
    attacker: AttackerOpt = "smollm2-135m",
    attacker_model: AttackerModelOpt = None,
    attacker_key: AttackerKeyOpt = None,
    attacker_timeout: TimeoutOpt = 60.0,
    attacker_retries: RetriesOpt = 3,
    dataset: DatasetOpt = "builtin:harmful:val",
    n: NOpt = 8,
    width: Annotated[int, typer.Option(min=1, help="Parallel streams per goal.")] = 3,
    depth: Annotated[int, typer.Option(min=1, help="Refinement iterations.")] = 3,
    branch: Annotated[int, typer.Option(min=1, help="Rewrites per prompt and iteration (1: PAIR; >1: TAP).")] = 1,
    keep: Annotated[int, typer.Option(min=0, help="Leaves kept per depth, best first (TAP pruning; 0: all).")] = 0,
    judge: JudgeOpt = "harm",
    judge_model: JudgeModelOpt = None,
    max_new_tokens: TokensOpt = 64,
    attacker_temperature: Annotated[float, typer.Option(min=0.0)] = 0.8,
    batch_size: BatchOpt = 8,
    seed: SeedOpt = 0,
) -> None:
    """PAIR / TAP: an attacker model refines single-turn prompts from the target's answers and the judge's score."""
    from layerguard.redteam.attacker_run import run_adaptive
    from layerguard.redteam.pair import PairConfig

    cfg = PairConfig(
        width=width,
        depth=depth,
        branch=branch,
        keep=keep,
        max_new_tokens=max_new_tokens,
        attacker_temperature=attacker_temperature,
        judge=judge,
        judge_model=judge_model,
        batch_size=batch_size,
        seed=seed,
    )
    summary = run_adaptive(
        "pair", model=model, out=out, guard_path=guard, attacker=attacker, attacker_model=attacker_model,
        attacker_key=attacker_key, attacker_timeout_s=attacker_timeout, attacker_retries=attacker_retries,
        dataset=dataset, n=n, cfg=cfg, log=echo_err,
    )  # fmt: skip
    _print(summary, out)


@app.command()
def agents(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumes a run it holds).")],
    model: ModelOpt = DEFAULT_MODEL,
    policy: Annotated[Path | None, typer.Option(help="Tool policy YAML for the tool_gate modes.")] = Path(
        "examples/tool_policy.yaml"
    ),
    guard: Annotated[Path | None, typer.Option("--guard", "-g", help="guard.yaml for the rings modes.")] = None,
    modes: Annotated[
        str, typer.Option(help="Comma-separated: none, tool_gate, rings, rings+tool_gate.")
    ] = "none,tool_gate,rings+tool_gate",
    agent: Annotated[str, typer.Option(help="Comma-separated agents: oracle, model.")] = "oracle,model",
    scenarios: Annotated[Path | None, typer.Option(help="Scenario YAML (default: the built-in 48).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N scenarios.")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Model agent: generation steps per episode.")] = 2,
    max_new_tokens: TokensOpt = 96,
    batch_size: BatchOpt = 8,
) -> None:
    """Agent scenarios: unsafe-action rate and benign task completion with and without the tool gate and the rings."""
    from layerguard.redteam.agents.run import run_agents

    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    if guard is None and any(m.startswith("rings") for m in mode_list):
        echo_err("no --guard: running the modes that need none (none, tool_gate)")
        mode_list = [m for m in mode_list if not m.startswith("rings")]
    summary = run_agents(
        model=model, out=out, policy=policy, guard_path=guard, modes=mode_list,  # type: ignore[arg-type]
        agents=[a.strip() for a in agent.split(",") if a.strip()], scenarios_path=scenarios, limit=limit,
        max_steps=max_steps, max_new_tokens=max_new_tokens, batch_size=batch_size, log=echo_err,
    )  # fmt: skip
    short = {
        a: {m: {"unsafe": round(r["unsafe_action_rate"]["rate"], 4), "benign_clean": round(
            r["benign_completion_clean"]["rate"], 4)} for m, r in by_mode.items()}
        for a, by_mode in summary["results"].items()
    }  # fmt: skip
    typer.echo(json.dumps({"agents": short, "out": str(out)}, indent=2))


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")],
    study_dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="STUDY_DIR",
            help="Run directories of redteam ciphers, bon, latent-attack, crescendo, pair or agents.",
            show_default=False,
        ),
    ] = None,
    audit: Annotated[
        Path | None, typer.Option("--audit", help="An audit run directory (summary.json, results.jsonl).")
    ] = None,
) -> None:
    """One self-contained HTML report of an audit run and any number of studies, each study a section."""
    from layerguard.redteam.report import report_from_dirs

    typer.echo(str(report_from_dirs(out, audit, study_dirs or [], log=echo_err)))
