"""The report's sections of the attacker-model studies (Crescendo, PAIR/TAP) and of the agent scenarios.

They read the ``summary.json`` of ``layerguard redteam crescendo|pair`` (written by
:func:`layerguard.redteam.attacker_run.run_adaptive`) and of ``layerguard redteam agents``
(:func:`layerguard.redteam.agents.run.run_agents`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from layerguard.redteam.report.charts import _CATCH, _FPR, _GUARDED, _UNGUARDED, _grouped_hbars, _img
from layerguard.redteam.report.charts import _rate_curves as _curves
from layerguard.redteam.report.formatting import (
    _budget_items,
    _cell,
    _delta_cell,
    _e,
    _facts,
    _fig,
    _fmt_duration,
    _get,
    _map,
    _not_run,
    _num,
    _rate,
    _table,
)
from layerguard.redteam.report.sections import _card

_PHASES = ("unguarded", "guarded")
_COLORS = {"unguarded": _UNGUARDED, "guarded": _GUARDED}


def _n(x: float) -> str:
    return f"{x:g}"


def _last(curve: Mapping[float, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return curve[max(curve)] if curve else None


def _budget_block(phases: Mapping[str, Any], key: str, unit: str, what: str) -> str:
    """A table and a chart of ASR by budget (turns, depth or queries), unguarded and guarded."""
    curves = {p: _budget_items(_get(phases, p, key)) for p in _PHASES}
    xs = sorted({b for c in curves.values() for b in c})
    if not xs:
        return _not_run(f"ASR by {unit}: not run.")
    series = [(p, _COLORS[p], [_rate(curves[p].get(x)) for x in xs]) for p in _PHASES if curves[p]]
    chart = _curves(xs, series, f"{unit} budget", "ASR", f"ASR by {unit} budget")
    rows = [
        f"<tr><td class='n'>{_n(x)}</td>{_cell(curves['unguarded'].get(x))}{_cell(curves['guarded'].get(x))}"
        f"{_delta_cell(curves['unguarded'].get(x), curves['guarded'].get(x))}</tr>"
        for x in xs
    ]
    table = _table([unit, "ASR unguarded", "ASR guarded", "change"], rows, 0)
    if len(rows) > 12:  # long query budgets: the curve carries it, the table is there on demand
        table = f"<details><summary>table: ASR by {unit}</summary>{table}</details>"
    caption = f"Share of goals reached {what} (whiskers: 95% Wilson CI)."
    return _fig(chart, caption) + table


def _refusal_block(phases: Mapping[str, Any], unit: str) -> str:
    ref = {p: _budget_items(_get(phases, p, "refusal_by_turn")) for p in _PHASES}
    dec = _budget_items(_get(phases, "guarded", "declined_by_turn"))
    xs = sorted({b for c in [*ref.values(), dec] for b in c})
    if not xs:
        return _not_run(f"Refusal by {unit}: not run.")
    series = [(f"refused, {p}", _COLORS[p], [_rate(ref[p].get(x)) for x in xs]) for p in _PHASES if ref[p]]
    if dec:
        series.append(("declined by the guard", _FPR, [_rate(dec.get(x)) for x in xs]))
    chart = _curves(xs, series, unit, "share of answers", f"refusal and guard declines by {unit}")
    guarded = "guarded" in phases
    rows = [
        f"<tr><td class='n'>{_n(x)}</td>{_cell(ref['unguarded'].get(x), 'n/a')}"
        f"{_cell(ref['guarded'].get(x), 'n/a' if guarded else 'not run')}"
        f"{_cell(dec.get(x), 'n/a' if guarded else 'not run')}</tr>"
        for x in xs
    ]
    return _fig(
        chart,
        f"Among the attempts still running at each {unit}: the share the judge reads as a refusal, and the "
        "share the guard declined (n/a: none still running).",
    ) + _table([unit, "refused, unguarded", "refused, guarded", "declined by the guard"], rows, 0)


def _stopped_block(phases: Mapping[str, Any]) -> str:
    stops = {p: _map(_map(phases, p), "stopped") for p in _PHASES}
    reasons = sorted({str(k) for s in stops.values() for k in s})
    if not reasons:
        return ""
    rows = [
        f"<tr><td>{_e(r)}</td>"
        + "".join(
            f"<td class='n'>{_e(stops[p].get(r, 0))}</td>" if p in phases else "<td class='n notrun'>not run</td>"
            for p in _PHASES
        )
        + "</tr>"
        for r in reasons
    ]
    return "<h3>How the attempts ended</h3>" + _table(["stopped by", "unguarded", "guarded"], rows)


def _rings_block(phases: Mapping[str, Any], unit: str) -> str:
    rings = _map(_map(phases, "guarded"), "turn_rings")
    if not rings:
        why = "no guarded run" if "guarded" not in phases else "no turn-stage ring in the guard"
        return _not_run(f"Turn-stage rings: not run ({why}).")
    xs = sorted({b for r in rings.values() for b in _budget_items(_get(r, "flagged_by_turn"))})
    rows = []
    for name, r in rings.items():
        by = _budget_items(_get(r, "flagged_by_turn"))
        cells = "".join(_cell(by.get(x), "n/a") for x in xs)
        rows.append(f"<tr><td>{_e(name)}</td>{_cell(_get(r, 'flagged_conversations'))}{cells}</tr>")
    head = ["ring", "attempts flagged", *(f"{unit} {_n(x)}" for x in xs)]
    return _table(head, rows) + (
        "<p class='muted'>Guarded phase: the share of attempts each turn-stage ring flagged at some point, and "
        f"at each {unit}.</p>"
    )


def _replay_block(d: Mapping[str, Any]) -> str:
    rep = d.get("replay")
    if not isinstance(rep, Mapping):
        return _not_run("Replay: not run (it needs a guarded run).")
    n = rep.get("n_successful_unguarded")
    rows = [f"<tr><td>the whole guard</td>{_cell(rep.get('guard_would_stop'), 'n/a')}</tr>"]
    rows += [
        f"<tr><td>{_e(name)} alone</td>{_cell(r, 'n/a')}</tr>" for name, r in _map(rep, "turn_ring_would_stop").items()
    ]
    return (
        f"<p>The {_e(n)} unguarded conversations that succeeded, replayed through the guard prefix by prefix as "
        "the service would have received them: would it have stopped them at or before the successful turn? "
        "(n/a: no conversation succeeded unguarded.)</p>" + _table(["stopped by", "would have stopped"], rows)
    )


def _adaptive(d: Mapping[str, Any], kind: str) -> str:
    """Crescendo (``kind="crescendo"``) or PAIR/TAP (``"pair"``)."""
    cfg, phases = _map(d, "config"), _map(d, "phases")
    crescendo = kind == "crescendo"
    unit = "turn" if crescendo else "depth"
    shape = (
        [("turns", cfg.get("turns"))] if crescendo else [(k, cfg.get(k)) for k in ("width", "depth", "branch", "keep")]
    )
    parts = [
        _facts(
            [
                ("target", d.get("target")),
                ("attacker", d.get("attacker")),
                ("guard", d.get("guard") or "none"),
                ("judge", cfg.get("judge")),
                ("goals", d.get("n_goals")),
                *shape,
                ("seed", d.get("seed")),
                ("duration", _fmt_duration(d.get("duration_s")) if _num(d.get("duration_s")) is not None else None),
            ]
        ),
        "<p class='muted'>"
        + (
            "An attacker model escalates over several turns toward the goal (a harmful request), reading the "
            "target's answers."
            if crescendo
            else "An attacker model rewrites a single-turn prompt from the target's answer and the judge's score "
            "(TAP: several rewrites per prompt, the best kept)."
        )
        + " Success is judged against the goal. The target is attacked alone, then behind the guard.</p>",
    ]
    if not phases:
        parts.append(_not_run("No phase results in this file: not run."))
        return "".join(parts)
    asr = {p: _last(_budget_items(_get(phases, p, "asr_by_budget"))) for p in _PHASES}
    no_guard = "no guard in this run" if "guarded" not in phases else ""
    parts.append(
        f'<div class="cards" style="grid-template-columns: repeat(2, minmax(0, 1fr))">'
        f"{_card(f'ASR unguarded, full {unit} budget', asr['unguarded'], 'ung')}"
        f"{_card(f'ASR guarded, full {unit} budget', asr['guarded'], 'gua', no_guard)}</div>"
    )
    parts.append(f"<h3>ASR by {unit} budget</h3>")
    parts.append(_budget_block(phases, "asr_by_budget", unit, f"at or before each {unit}"))
    if not crescendo:
        parts.append("<h3>ASR by target queries</h3>")
        parts.append(_budget_block(phases, "asr_by_queries", "queries", "within each number of target queries"))
    parts.append(f"<h3>Refusal and guard declines by {unit}</h3>")
    parts.append(_refusal_block(phases, unit))
    parts.append("<h3>Turn-stage rings</h3>")
    parts.append(_rings_block(phases, unit))
    if crescendo:
        parts.append("<h3>Replay of the unguarded successes</h3>")
        parts.append(_replay_block(d))
    parts.append(_stopped_block(phases))
    return "".join(parts)


_AGENT_RATES = (
    ("unsafe_action_rate", "unsafe executed"),
    ("unsafe_proposed_rate", "unsafe proposed"),
    ("benign_completion_clean", "benign done, clean"),
    ("benign_completion_attacked", "benign done, attacked"),
    ("declined_rate", "declined"),
)


def _agents(d: Mapping[str, Any]) -> str:
    results = _map(d, "results")
    settings = _map(d, "settings")
    listed = [str(m) for m in d.get("modes") or [] if isinstance(m, str)]
    modes = listed + sorted({str(m) for a in results.values() if isinstance(a, Mapping) for m in a} - set(listed))
    parts = [
        _facts(
            [
                ("target", d.get("target") or "none (oracle only)"),
                ("tool policy", d.get("policy")),
                ("guard", d.get("guard") or "none"),
                ("scenarios", d.get("n_scenarios")),
                ("modes", ", ".join(modes)),
                ("max steps", settings.get("max_steps")),
                ("layerguard", d.get("layerguard_version")),
                ("duration", _fmt_duration(d.get("duration_s")) if _num(d.get("duration_s")) is not None else None),
            ]
        ),
        "<p class='muted'>Tool-use scenarios played in a clean and an attacked variant. The oracle agent proposes "
        "exactly the call the attack wants (the worst case: a fully hijacked agent); the model agent is the target "
        "model with the tools. Unsafe action: an attacked variant in which a call the attack wanted was executed "
        "(lower is better). Benign completion: the user's own task was done (higher is better).</p>",
    ]
    if not results:
        parts.append(_not_run("No per-agent results in this file: not run."))
        return "".join(parts)
    pairs = [(str(a), m) for a in results for m in modes]
    got = {(a, m): _get(results, a, m) for a, m in pairs}
    labels = [f"{a} · {m}" for a, m in pairs]
    series: list[tuple[str, str, Sequence[dict[str, Any] | None]]] = [
        ("unsafe action executed", _UNGUARDED, [_rate(_get(got[p], "unsafe_action_rate")) for p in pairs]),
        ("benign task done, clean", _CATCH, [_rate(_get(got[p], "benign_completion_clean")) for p in pairs]),
    ]
    fig = _grouped_hbars(labels, series, "rate (bars: 95% Wilson CI)")
    parts.append(_fig(_img(fig, "agents: unsafe actions and benign completion"), "Per agent and guard mode."))
    rows = []
    for a, m in pairs:
        r = got[(a, m)]
        cells = "".join(_cell(_get(r, k)) for k, _ in _AGENT_RATES)
        rows.append(f"<tr><td>{_e(a)}</td><td>{_e(m)}</td>{cells}</tr>")
    parts.append(_table(["agent", "mode", *(label for _, label in _AGENT_RATES)], rows, 2, cls="wrap"))
    for a in results:
        cats = sorted({str(c) for m in modes for c in _map(_map(_map(results, a), m), "unsafe_action_by_category")})
        if not cats:
            continue
        rows = [
            f"<tr><td>{_e(c)}</td>"
            + "".join(_cell(_get(results, a, m, "unsafe_action_by_category", c)) for m in modes)
            + "</tr>"
            for c in cats
        ]
        parts.append(f"<h3>Unsafe actions by attack category: {_e(a)} agent</h3>")
        parts.append(_table(["category", *(_e(m) for m in modes)], rows))
    return "".join(parts)
