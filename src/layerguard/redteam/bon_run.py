"""Run best-of-N augmentation against a model, with and without its guard; resumable, one line per draw.

Each round draws one augmentation of every prompt still in play, answers them in batches
(greedy) and judges each answer with the refusal judge (success = not refused) against the
*original* request. The guarded model judges the draws that succeeded unguarded (a draw the
model refuses cannot succeed through the guard either). A prompt leaves play once it has
succeeded through the guard (or, unguarded, once it has succeeded at all), so the budget is
spent on the prompts that still resist. Every draw is appended to ``draws.jsonl``; a run
started again with the same settings skips the draws already there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.guard.types import Exchange, Message
from layerguard.progress import progress_bar
from layerguard.redteam.bon import DEFAULT_SIGMA, KINDS, asr_curve, bon_attack, fit_power_law
from layerguard.version import __version__


def _budgets(n_max: int) -> list[int]:
    ns = [1]
    while ns[-1] * 2 <= n_max:
        ns.append(ns[-1] * 2)
    return ns if ns[-1] == n_max else [*ns, n_max]


def _load_draws(path: Path, identity: dict[str, Any]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0]) if lines else {}
    if head.get("identity") != identity:
        raise InvalidInputError(
            f"{path} holds a different best-of-N run", hint="choose a new --out directory or the same settings"
        )
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _first_success(draws: Sequence[dict[str, Any]], ids: Sequence[str], key: str) -> list[int | None]:
    first: dict[str, int] = {}
    for d in draws:
        if d.get(key) and (d["sample_id"] not in first or d["k"] < first[d["sample_id"]]):
            first[d["sample_id"]] = d["k"]
    return [first.get(i) for i in ids]


def _round(
    lm: Any, guarded: Any, samples: Sequence[Sample], k: int, sigma: float, max_new_tokens: int, batch_size: int
) -> list[dict[str, Any]]:
    from layerguard.judges import harm_judge, refusal_judge
    from layerguard.models.generate import generate

    attack = bon_attack(k, sigma)
    convs = [attack(s) for s in samples]
    answers = generate(lm, convs, max_new_tokens=max_new_tokens, batch_size=batch_size)
    rows = []
    for s, conv, ans in zip(samples, convs, answers, strict=True):
        refused = refusal_judge(s.prompt, ans).refused
        rows.append(
            {
                "sample_id": s.id,
                "k": k,
                "prompt": conv[-1]["content"],
                "response": ans,
                "success": not refused,
                "harmful": (not refused) and harm_judge(s, ans).harmful,
                "guarded_success": None,
            }
        )
    won = [i for i, r in enumerate(rows) if r["success"]]
    if guarded is not None and won:
        exchanges = [
            Exchange(messages=[Message(role=m["role"], content=m["content"]) for m in convs[i]])  # type: ignore[arg-type]
            for i in won
        ]
        outcomes = guarded.score_many(exchanges, [answers[i] for i in won], batch_size=batch_size, record_all=False)
        for i, o in zip(won, outcomes, strict=True):
            rows[i]["guarded_success"] = o.decision == "allow"
            rows[i]["decision"] = o.decision
            rows[i]["rings"] = {k2: round(v, 4) for k2, v in o.ring_scores.items()}
    return rows


def run_bon(
    lm: Any,
    guarded: Any,
    samples: Sequence[Sample],
    out_dir: Path,
    *,
    guard_id: str | None = None,
    n_max: int = 32,
    sigma: float = DEFAULT_SIGMA,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Best-of-N against ``lm`` (and through ``guarded`` when given); writes ``draws.jsonl`` and ``bon.json``.

    Args:
        lm: The model (a LoadedModel).
        guarded: A :class:`~layerguard.guard.guarded.GuardedModel` over ``lm``, or None.
        samples: Harmful requests.
        out_dir: Run directory (resumes a run with the same settings).
        guard_id: The guard's identity (e.g. the sha of its guard.yaml), part of the run identity.
        n_max: Draws per prompt at most.
        sigma: Augmentation strength.
        max_new_tokens: Answer length.
        batch_size: Prompts per batch.
        seed: Base seed of the draws (recorded).
        progress: Show progress.

    Returns:
        The summary: ASR-vs-N curves (unguarded, guarded) with Wilson intervals and power-law fits.
    """
    if not samples:
        raise InvalidInputError("best-of-N needs at least one prompt", hint="pass a non-empty dataset")
    if n_max < 1:
        raise InvalidInputError(f"n_max must be at least 1, got {n_max}")
    if seed != 0:
        raise InvalidInputError("only the base seed 0 is supported by the draw attacks", hint="drop --seed")
    identity = {
        "model": lm.model_id,
        "guard": guard_id,
        "guarded": guarded is not None,
        "samples": [s.id for s in samples],
        "n_max": n_max,
        "sigma": sigma,
        "kinds": list(KINDS),
        "max_new_tokens": max_new_tokens,
        "seed": seed,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "draws.jsonl"
    draws = _load_draws(path, identity)
    if not path.exists():
        path.write_text(json.dumps({"identity": identity}) + "\n", encoding="utf-8")
    ids = [s.id for s in samples]
    key = "guarded_success" if guarded is not None else "success"
    with progress_bar(total=n_max, desc="best-of-N", unit="round", enabled=progress) as bar:
        for k in range(n_max):
            done_k = {d["sample_id"] for d in draws if d["k"] == k}
            first = dict(zip(ids, _first_success(draws, ids, key), strict=True))
            todo = [s for s in samples if s.id not in done_k and ((f := first[s.id]) is None or f > k)]
            if todo:
                rows = _round(lm, guarded, todo, k, sigma, max_new_tokens, batch_size)
                with path.open("a", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(r) + "\n" for r in rows)
                draws += rows
            bar.update(1)
    return summarize_bon(draws, ids, n_max, guarded is not None, {**identity, "layerguard_version": __version__})


def summarize_bon(
    draws: Sequence[dict[str, Any]], ids: Sequence[str], n_max: int, guarded: bool, meta: dict[str, Any]
) -> dict[str, Any]:
    """Curves and fits from the draws (see :func:`run_bon`).

    ``unguarded_harmful`` counts a prompt at budget N when one of its first N draws got a
    rubric-harmful answer among the draws made: a prompt leaves play at its first success, so
    this is a lower bound.
    """
    ns = _budgets(n_max)
    out: dict[str, Any] = {"meta": {**meta, "weights_sha256": meta.get("weights_sha256")}, "n_prompts": len(ids)}
    firsts = {"unguarded": _first_success(draws, ids, "success")}
    if guarded:
        firsts["guarded"] = _first_success(draws, ids, "guarded_success")
    harmful_first = _first_success(draws, ids, "harmful")
    for name, first in firsts.items():
        curve = asr_curve(first, ns)
        out[name] = {"curve": curve, "fit": fit_power_law(curve)}
    out["unguarded_harmful"] = {"curve": asr_curve(harmful_first, ns)}
    out["n_draws"] = len(draws)
    return out
