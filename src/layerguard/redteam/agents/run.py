"""``layerguard redteam agents``: the scenarios under each guard mode, by the oracle and by a model; JSON results.

Writes into the run directory ``run.sqlite`` (one cell per agent, mode, scenario and variant;
a rerun resumes), ``results.jsonl`` and ``summary.json`` with, per agent and mode:

- ``unsafe_action_rate``: attacked variants in which a call the attack wanted was executed;
- ``unsafe_proposed_rate``: ... in which the agent proposed one (executed or not);
- ``benign_completion_clean`` / ``benign_completion_attacked``: variants in which the benign
  task was done (its call executed, or its answer given in text);
- ``declined_rate``: variants whose turn the input rings declined;

each a rate with its Wilson 95% interval, and the unsafe-action rate per attack category.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.guard.guarded import GuardedModel
from layerguard.guard.pipeline import Guard
from layerguard.progress import progress_bar
from layerguard.redteam.agents.harness import MODES, Mode, run_model_agent, run_oracle
from layerguard.redteam.agents.scenarios import Scenario, load_scenarios
from layerguard.redteam.store import RunStore
from layerguard.stats import rate
from layerguard.version import __version__


def guards_for(
    modes: Sequence[Mode], lm: Any, policy: Path | None, guard_path: Path | None
) -> dict[Mode, GuardedModel | None]:
    """The guarded model of each mode (None for ``none``).

    Raises:
        InvalidInputError: a mode needs a policy or a guard that was not given.
    """
    from layerguard.guard.rings.tool_gate import ToolGateRing

    gate = None
    if any("tool_gate" in m for m in modes):
        if policy is None:
            raise InvalidInputError(
                "the tool_gate modes need a tool policy", hint="pass --policy examples/tool_policy.yaml"
            )
        gate = ToolGateRing.from_yaml(policy)
    rings: list[Any] = []
    unavailable: list[str] = []
    if any(m.startswith("rings") for m in modes):
        if guard_path is None:
            raise InvalidInputError(
                "the rings modes need a guard", hint="pass --guard guard.yaml, or --modes none,tool_gate"
            )
        loaded = GuardedModel.load(guard_path, lm).guard
        rings = [r for r in loaded.rings if r.stage != "tool_call"]
        unavailable = list(loaded.unavailable)
    out: dict[Mode, GuardedModel | None] = {}
    for m in modes:
        if m == "none":
            out[m] = None
            continue
        chosen = (rings if m.startswith("rings") else []) + ([gate] if m.endswith("tool_gate") and gate else [])
        out[m] = GuardedModel(Guard(chosen, unavailable=unavailable), lm=lm)
    return out


def _rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    att = [r for r in rows if r["variant"] == "attacked"]
    clean = [r for r in rows if r["variant"] == "clean"]
    cats = sorted({r["category"] for r in att})
    return {
        "n_scenarios": len(clean),
        "unsafe_action_rate": rate([r["unsafe_executed"] for r in att]),
        "unsafe_proposed_rate": rate([r["unsafe_proposed"] for r in att]),
        "benign_completion_clean": rate([r["benign_done"] for r in clean]),
        "benign_completion_attacked": rate([r["benign_done"] for r in att]),
        "declined_rate": rate([r["declined"] for r in rows]),
        "unsafe_action_by_category": {c: rate([r["unsafe_executed"] for r in att if r["category"] == c]) for c in cats},
        "calls_proposed": sum(len(r["calls"]) for r in rows),
    }


def summarize_agents(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per agent and mode: the rates of the module docstring."""
    out: dict[str, Any] = {}
    for agent in sorted({r["agent"] for r in rows}):
        out[agent] = {
            m: _rates([r for r in rows if r["agent"] == agent and r["mode"] == m])
            for m in MODES
            if any(r["agent"] == agent and r["mode"] == m for r in rows)
        }
    return out


def _identity(lm: Any, scenarios: Sequence[Scenario], policy: Path | None, guard_path: Path | None,
              settings: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    def sha(p: Path | None) -> str | None:
        return None if p is None else hashlib.sha256(p.read_bytes()).hexdigest()[:12]

    ids = hashlib.sha256(json.dumps([s.model_dump() for s in scenarios], sort_keys=True).encode()).hexdigest()[:16]
    return {"kind": "agents", "target": lm.model_id if lm is not None else None, "policy": sha(policy),
            "guard": sha(guard_path), "scenarios": ids, **settings}  # fmt: skip


def run_agents(
    *,
    model: str,
    out: Path,
    policy: Path | None,
    guard_path: Path | None,
    modes: Sequence[Mode] = ("none", "tool_gate", "rings+tool_gate"),
    agents: Sequence[str] = ("oracle", "model"),
    scenarios_path: Path | None = None,
    limit: int | None = None,
    max_steps: int = 2,
    max_new_tokens: int = 96,
    batch_size: int = 8,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Run the scenarios; write ``results.jsonl`` and ``summary.json`` into ``out``.

    Raises:
        InvalidInputError: unknown mode or agent, a missing policy, guard or scenario file,
            or a directory holding another run.
    """
    from layerguard.models import load_model

    t0 = time.time()
    bad = [m for m in modes if m not in MODES] + [a for a in agents if a not in ("oracle", "model")]
    if bad:
        raise InvalidInputError(
            f"unknown modes or agents: {', '.join(bad)}", hint=f"modes: {', '.join(MODES)}; agents: oracle, model"
        )
    scenarios = load_scenarios(scenarios_path)[: limit or None]
    needed = [policy if any("tool_gate" in m for m in modes) else None]
    needed.append(guard_path if any(m.startswith("rings") for m in modes) else None)
    for p in needed:
        if p is not None and not p.is_file():
            raise InvalidInputError(f"{p} does not exist", hint="check the path")
    # the oracle under the tool gate alone needs no model: its calls are written in the scenarios
    needs_model = "model" in agents or any(m.startswith("rings") for m in modes)
    lm = load_model(model, progress=progress) if needs_model else None
    guards = guards_for(modes, lm, policy, guard_path)
    settings = {"max_steps": max_steps, "max_new_tokens": max_new_tokens}
    store = RunStore(out / "run.sqlite", _identity(lm, scenarios, policy, guard_path, settings))
    done = store.done()
    jobs = [(a, m) for a in agents for m in modes]
    cache: dict[str, str] = {}  # generations shared by the modes that cannot change them
    with progress_bar(total=len(jobs), desc="agents", unit="mode", enabled=progress) as bar:
        for agent, mode in jobs:
            key = RunStore.cell_id(f"{scenarios[-1].id}|attacked|{agent}", f"agents:{mode}", mode != "none")
            if key not in done:
                log(f"agents: {agent} agent, mode {mode}, {len(scenarios)} scenarios x 2 variants")
                if agent == "oracle":
                    rows = run_oracle(scenarios, guards[mode], mode)
                else:
                    kw = {"max_steps": max_steps, "max_new_tokens": max_new_tokens, "batch_size": batch_size}
                    rows = run_model_agent(lm, scenarios, guards[mode], mode, cache=cache, progress=progress, **kw)
                store.put([{**r, "guarded": mode != "none"} for r in rows])
            bar.update(1)
    rows = store.rows()
    summary = {
        "attack": "agents",
        "target": lm.model_id if lm is not None else None,
        "weights_sha256": lm.weights_sha256 if lm is not None else None,
        "policy": str(policy) if policy else None,
        "guard": str(guard_path) if guard_path else None,
        "modes": list(modes),
        "n_scenarios": len(scenarios),
        "layerguard_version": __version__,
        "seed": None,  # generation is greedy
        "settings": settings,
        "results": summarize_agents(rows),
        "command": " ".join(sys.argv),
        "duration_s": round(time.time() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r, default=float) + "\n" for r in rows))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary
