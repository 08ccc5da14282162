"""The report's curve sections: the many-shot curve, refusal by turn and latency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from layerguard.redteam.report.charts import _many_shot_chart, _turn_chart
from layerguard.redteam.report.formatting import _e, _fmt_ms, _map, _not_run, _num, _pct, _rate, _rate_cell


def _many_shot_section(s: Mapping[str, Any]) -> str:
    ms = s.get("many_shot")
    parts = ['<section id="many-shot"><h2>Many-shot curve</h2>']
    if not isinstance(ms, Mapping) or not ms.get("k"):
        parts.append(_not_run("No many-shot attacks in this run."))
        return "".join(parts) + "</section>"
    by_attack = _map(s, "asr_by_attack")
    chart = _many_shot_chart(ms, by_attack)
    fit = ms.get("fit") if isinstance(ms.get("fit"), Mapping) else None
    if fit is not None:
        a, b, r2 = _num(fit.get("a")), _num(fit.get("b")), _num(fit.get("r2"))
        cap = (
            f"Log-log axes. Power-law fit ASR = {a:.3g} &middot; k<sup>{b:.2f}</sup>"
            if a is not None and b is not None
            else "Log-log axes."
        )
        if r2 is not None:
            cap += f", R<sup>2</sup> = {r2:.2f}"
        cap += ". Points with zero ASR cannot be drawn on a log axis and are left out of the fit."
    else:
        cap = "Too few points with a non-zero ASR for a power-law fit; linear axes."
    if chart:
        parts.append(f"<figure>{chart}<figcaption>{cap}</figcaption></figure>")
    ks = ms.get("k") or []
    ys = ms.get("asr") or []
    gs = ms.get("asr_guarded") or [None] * len(ks)
    ps = ms.get("refusal_prob") or [None] * len(ks)

    def pad(vals: Sequence[Any]) -> list[Any]:
        return list(vals) + [None] * (len(ks) - len(vals))

    rows = "".join(
        f"<tr><td class='n'>{_e(k)}</td><td class='n'>{_pct(_num(y))}</td><td class='n'>{_pct(_num(g))}</td>"
        f"<td class='n'>{_pct(_num(p))}</td></tr>"
        for k, y, g, p in zip(ks, pad(ys), pad(gs), pad(ps), strict=False)
    )
    parts.append(
        f"<table style='max-width:560px'><tr><th class='n'>shots k</th><th class='n'>ASR unguarded</th>"
        f"<th class='n'>ASR guarded</th><th class='n'>model's refusal probability</th></tr>{rows}</table>"
    )
    pfit = ms.get("refusal_prob_fit") if isinstance(ms.get("refusal_prob_fit"), Mapping) else None
    if pfit is not None and _num(pfit.get("a")) is not None and _num(pfit.get("b")) is not None:
        parts.append(
            f"<p class='muted'>The model's own probability of opening with a refusal token (first answer "
            f"position, unguarded) against k: power-law fit p = {_num(pfit.get('a')):.3g} &middot; "
            f"k<sup>{_num(pfit.get('b')):.2f}</sup>, R<sup>2</sup> = {_num(pfit.get('r2')) or 0:.2f}. It keeps "
            "moving after the judged ASR saturates.</p>"
        )
    return "".join(parts) + "</section>"


def _turn_and_latency_section(s: Mapping[str, Any]) -> str:
    rbt = s.get("refusal_by_turn")
    left = ["<h2>Refusal by turn</h2>"]
    if isinstance(rbt, Mapping) and rbt.get("turn"):
        turns = list(rbt.get("turn") or [])
        refusals = [_rate(r) for r in rbt.get("refusal") or []]
        chart = _turn_chart(turns, refusals)
        if chart:
            left.append(
                f"<figure>{chart}<figcaption>Refusal rate of the unguarded model at each turn of a scripted, "
                "escalating conversation (whiskers: 95% Wilson CI). A falling curve means the model is "
                "talked out of refusing.</figcaption></figure>"
            )
        rows = "".join(
            f"<tr><td class='n'>{_e(t)}</td>{_rate_cell(r)}</tr>" for t, r in zip(turns, refusals, strict=False)
        )
        left.append(f"<table><tr><th class='n'>turn</th><th class='n'>refusal rate</th></tr>{rows}</table>")
    else:
        left.append(_not_run("No live multi-turn run."))
    lat = _map(s, "latency_ms")
    right = ["<h2>Latency</h2>"]
    if lat:
        right.append(
            "<table><tr><th>stage</th><th class='n'>median</th><th class='n'>p95</th></tr>"
            f"<tr><td>generation</td><td class='n'>{_fmt_ms(lat.get('generation_p50'))}</td>"
            f"<td class='n'>{_fmt_ms(lat.get('generation_p95'))}</td></tr>"
            f"<tr><td>guard (added)</td><td class='n'>{_fmt_ms(lat.get('guard_p50'))}</td>"
            f"<td class='n'>{_fmt_ms(lat.get('guard_p95'))}</td></tr></table>"
            "<p class='muted'>Per cell, on the machine of this run. Generation is the unguarded model's answer; "
            "guard is the time the guard adds to a request.</p>"
        )
    else:
        right.append(_not_run("No latency recorded."))
    return (
        f'<div class="two"><section id="turns">{"".join(left)}</section>'
        f'<section id="latency">{"".join(right)}</section></div>'
    )
