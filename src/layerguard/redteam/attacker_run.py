"""``layerguard redteam crescendo|pair``: load, attack unguarded then guarded, summarise, write JSON.

Writes into the run directory ``run.sqlite`` (resumable: finished conversations are kept;
ones the attacker URL failed on are played again), ``results.jsonl`` (one line per goal and
phase) and ``summary.json``:

- ``asr_by_budget``: per phase, the share of goals reached within each turn (Crescendo) or
  depth (PAIR) budget, with Wilson 95% intervals; PAIR adds ``asr_by_queries``;
- ``refusal_by_turn`` (Crescendo): the share of answers at turn t the judge reads as refused,
  among conversations still running at t; ``declined_by_turn``: the guard's share;
- ``turn_rings``: how often each turn-stage ring (the conversation ring) flagged a guarded
  conversation, and, replayed on the unguarded conversations that succeeded, whether it (or
  the guard as a whole) would have stopped them at or before the successful turn.
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
from layerguard.redteam.attacker_common import budget_curve, metadata, open_store
from layerguard.redteam.crescendo import CrescendoConfig, run_crescendo
from layerguard.redteam.pair import PairConfig, run_pair
from layerguard.stats import rate


def _turns(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in row.get("turns") or row.get("queries") or [] if "answer" in t]


def _by_turn(rows: Sequence[dict[str, Any]], budget: int, pick: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    out = {}
    for t in range(1, budget + 1):
        flags = [pick(x) for r in rows for x in _turns(r) if x.get("turn", x.get("depth")) == t]
        out[str(t)] = rate(flags)
    return out


def _turn_ring_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({name for r in rows for t in _turns(r) for name in t.get("turn_rings", {})})


def _flag(turn: dict[str, Any], ring: str) -> bool:
    return bool(turn.get("turn_rings", {}).get(ring, {}).get("decision", "allow") != "allow")


def _turn_ring_figures(rows: Sequence[dict[str, Any]], budget: int, ring: str) -> dict[str, Any]:
    return {
        "flagged_conversations": rate([any(_flag(t, ring) for t in _turns(r)) for r in rows]),
        "flagged_by_turn": _by_turn(rows, budget, lambda x: _flag(x, ring)),
    }


def phase_summary(rows: Sequence[dict[str, Any]], budget: int, kind: str) -> dict[str, Any]:
    """The figures of one phase (unguarded or guarded)."""
    out: dict[str, Any] = {
        "n": len(rows),
        "stopped": {k: sum(1 for r in rows if r["stopped"] == k) for k in sorted({r["stopped"] for r in rows})},
        "asr_by_budget": budget_curve([r["first_success"] for r in rows], budget),
        "refusal_by_turn": _by_turn(rows, budget, lambda x: bool(x["judge"]["refused"])),
        "declined_by_turn": _by_turn(rows, budget, lambda x: x.get("decision") not in (None, "allow")),
    }
    if kind == "pair":
        most = max((r["n_queries"] for r in rows), default=0)
        out["asr_by_queries"] = budget_curve([r["first_success_query"] for r in rows], most) if most else {}
    out["turn_rings"] = {name: _turn_ring_figures(rows, budget, name) for name in _turn_ring_names(rows)}
    return out


def replay_summary(successes: Sequence[dict[str, Any]], replays: Sequence[list[dict[str, Any]]]) -> dict[str, Any]:
    """Whether the guard, and each turn ring, would have stopped successful unguarded conversations in time."""
    names = sorted({n for rep in replays for turn in rep for n in turn["turn_rings"]})
    caught = {n: [] for n in names}  # type: dict[str, list[bool]]
    guard_caught = []
    for row, rep in zip(successes, replays, strict=True):
        upto = rep[: row["first_success"]]
        guard_caught.append(any(t["decision"] != "allow" for t in upto))
        for n in names:
            caught[n].append(any(t["turn_rings"].get(n, {}).get("decision", "allow") != "allow" for t in upto))
    return {
        "n_successful_unguarded": len(successes),
        "guard_would_stop": rate(guard_caught),
        "turn_ring_would_stop": {n: rate(v) for n, v in caught.items()},
        "per_conversation": [
            {"sample_id": r["sample_id"], "first_success": r["first_success"], "turns": rep}
            for r, rep in zip(successes, replays, strict=True)
        ],
    }


def _guard_id(path: Path | None) -> str | None:
    return None if path is None else f"{path}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def run_adaptive(
    kind: str,
    *,
    model: str,
    out: Path,
    guard_path: Path | None,
    attacker: str,
    attacker_model: str | None = None,
    attacker_key: str | None = None,
    attacker_timeout_s: float = 60.0,
    attacker_retries: int = 3,
    dataset: str = "builtin:harmful:val",
    n: int = 8,
    cfg: CrescendoConfig | PairConfig,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Run Crescendo (``kind="crescendo"``) or PAIR/TAP (``"pair"``) unguarded, then guarded; write the results.

    Raises:
        InvalidInputError: unknown judge, empty dataset, a guard for another model, an
            attacker that cannot be reached or loaded, or a directory holding another run.
    """
    from layerguard.data.loaders import load_dataset
    from layerguard.data.samples import spread
    from layerguard.guard.guarded import GuardedModel
    from layerguard.models import load_model
    from layerguard.redteam.attacker import check_attacker, make_attacker
    from layerguard.redteam.attacker_common import build_judge
    from layerguard.redteam.target import Target, replay_turn_rings

    t0 = time.time()
    if cfg.judge not in ("harm", "refusal", "llm"):
        build_judge(cfg.judge, None, None)  # the registry's error, before any loading
    if cfg.judge == "llm" and cfg.judge_model is None:
        build_judge("llm", None, None)
    check_attacker(attacker)
    if guard_path is not None and not guard_path.is_file():
        raise InvalidInputError(f"guard file {guard_path} does not exist", hint="build one: layerguard guard build")
    goals = spread(load_dataset(dataset), n)
    if not goals:
        raise InvalidInputError(f"dataset {dataset!r} is empty", hint="pass a dataset with at least one prompt")
    lm = load_model(model, progress=progress)
    judge = build_judge(cfg.judge, cfg.judge_model, lm)
    atk = make_attacker(
        attacker, model=attacker_model, api_key=attacker_key, target=lm, timeout_s=attacker_timeout_s,
        retries=attacker_retries, batch_size=cfg.batch_size,
    )  # fmt: skip
    guarded = GuardedModel.load(guard_path, lm) if guard_path is not None else None
    guard_id = _guard_id(guard_path)
    ids = hashlib.sha256(json.dumps([g.id for g in goals]).encode()).hexdigest()[:16]
    identity = {"kind": kind, "target": lm.model_id, "attacker": atk.name, "guard": guard_id,
                "config": cfg.as_dict(), "goals": ids}  # fmt: skip
    store = open_store(out, identity)
    budget = cfg.turns if isinstance(cfg, CrescendoConfig) else cfg.depth
    phases: dict[str, list[dict[str, Any]]] = {}
    for g in [None, guarded] if guarded is not None else [None]:
        target = Target(lm, g, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
        name = "guarded" if g is not None else "unguarded"
        log(f"{kind}: {len(goals)} goals against the {name} target, attacker {atk.name}")
        if isinstance(cfg, CrescendoConfig):
            phases[name] = run_crescendo(goals, atk, target, judge, cfg, store, progress=progress)
        else:
            phases[name] = run_pair(goals, atk, target, judge, cfg, store, progress=progress)
    summary: dict[str, Any] = {
        "attack": kind,
        **metadata(lm, atk, cfg.as_dict(), guard_id),
        "dataset": dataset,
        "n_goals": len(goals),
        "phases": {k: phase_summary(v, budget, kind) for k, v in phases.items()},
    }
    if guarded is not None and kind == "crescendo":
        wins = [r for r in phases["unguarded"] if r["first_success"] is not None]
        log(f"replaying {len(wins)} successful unguarded conversations through the guard")
        summary["replay"] = replay_summary(wins, replay_turn_rings(guarded, [r["messages"] for r in wins]))
    summary["command"] = " ".join(sys.argv)
    summary["duration_s"] = round(time.time() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for v in phases.values() for r in v]
    (out / "results.jsonl").write_text("".join(json.dumps(r, default=float) + "\n" for r in rows))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary
