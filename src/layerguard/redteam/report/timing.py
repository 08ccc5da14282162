"""The report's accounting sections: where the run's time went, and how precise its rates are."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from layerguard.redteam.report.formatting import _e, _fmt_duration, _get, _map, _not_run, _num, _pct, _rate

Z95 = 1.959964
Z80 = 0.841621  # one-sided z of 80% power


def worst_half_width(n: int) -> float:
    """Half-width of the Wilson 95% interval at a 50% rate (its widest) for ``n`` trials."""
    if n <= 0:
        return math.nan
    z2 = Z95 * Z95
    return Z95 * math.sqrt(0.25 / n + z2 / (4 * n * n)) / (1 + z2 / n)


def detectable_difference(n: int) -> float:
    """Smallest difference between two rates of ``n`` trials each found with 80% power (two-sided 5%, at 50%)."""
    return (Z95 + Z80) * math.sqrt(2 * 0.25 / n) if n > 0 else math.nan


def _observed(rates: list[Any]) -> float | None:
    """Widest observed half-width among rate dicts."""
    widths = []
    for r in rates:
        rr = _rate(r)
        if rr is not None and _num(rr.get("lo")) is not None and _num(rr.get("hi")) is not None:
            widths.append((float(rr["hi"]) - float(rr["lo"])) / 2)
    return max(widths) if widths else None


def _n_of(rates: list[Any]) -> int | None:
    ns = [int(r["n"]) for r in (_rate(x) for x in rates) if r is not None and isinstance(r.get("n"), int | float)]
    return min(ns) if ns else None


def precision(s: Mapping[str, Any]) -> dict[str, Any]:
    """How precise the summary's rates are, kind by kind.

    For each kind of rate: its n, the widest observed 95% half-width, the worst-case
    half-width at that n and the smallest difference it can detect.

    Returns:
        ``{kind: {"n", "observed_half_width", "worst_half_width", "detectable_difference"}}`` for
        ``asr`` (all attacks pooled), ``asr_per_attack``, ``asr_per_category`` and ``over_refusal``.
    """
    sides = ("unguarded", "guarded")
    kinds: dict[str, list[Any]] = {
        "asr": [_get(s, "asr", k) for k in sides],
        "asr_per_attack": [_get(v, k) for v in _map(s, "asr_by_attack").values() for k in sides],
        "asr_per_category": [_get(v, k) for v in _map(s, "asr_by_category").values() for k in sides],
        "over_refusal": [_get(s, "over_refusal", k) for k in sides],
    }
    out: dict[str, Any] = {}
    for kind, rates in kinds.items():
        n = _n_of(rates)
        if n is None:
            continue
        out[kind] = {
            "n": n,
            "observed_half_width": _observed(rates),
            "worst_half_width": round(worst_half_width(n), 4),
            "detectable_difference": round(detectable_difference(n), 4),
        }
    return out


_KIND_TEXT = {
    "asr": "attack success, all attacks pooled",
    "asr_per_attack": "attack success of one attack",
    "asr_per_category": "attack success in one harm category (fewest trials)",
    "over_refusal": "over-refusal on benign prompts",
}


def _precision_section(s: Mapping[str, Any]) -> str:
    p = s.get("precision") if isinstance(s.get("precision"), Mapping) else precision(s)
    parts = ['<section id="precision"><h2>How precise these rates are</h2>']
    if not p:
        return "".join(parts) + _not_run("No rates in this summary.") + "</section>"
    rows = "".join(
        f"<tr><td>{_e(_KIND_TEXT.get(k, k))}</td><td class='n'>{_e(v.get('n'))}</td>"
        f"<td class='n'>&plusmn;{_pct(_num(v.get('observed_half_width')))}</td>"
        f"<td class='n'>&plusmn;{_pct(_num(v.get('worst_half_width')))}</td>"
        f"<td class='n'>{_pct(_num(v.get('detectable_difference')), 0)}</td></tr>"
        for k, v in p.items()
        if isinstance(v, Mapping)
    )
    parts.append(
        "<table><tr><th>rate</th><th class='n'>trials n</th><th class='n'>widest 95% CI here</th>"
        "<th class='n'>95% CI at a 50% rate</th><th class='n'>smallest difference detected</th></tr>"
        f"{rows}</table>"
        "<p class='muted'>Half-widths of the Wilson 95% intervals. The last column is the difference between two "
        "rates of n trials each that a two-sided 5% test finds with 80% power (near a 50% rate; less near 0 or "
        "100%). A smaller suite answers only coarser questions: compare attacks whose rates differ by less than "
        "this with a larger <code>--n</code>.</p>"
    )
    return "".join(parts) + "</section>"


def _timing_section(s: Mapping[str, Any]) -> str:
    t = _map(s, "timing")
    parts = ['<section id="timing"><h2>Where the time went</h2>']
    stages = t.get("stages")
    if not isinstance(stages, list) or not stages:
        return "".join(parts) + _not_run("This summary has no stage times.") + "</section>"
    total = _num(t.get("total_s")) or 0.0
    rows = []
    for st in stages:
        if not isinstance(st, Mapping):
            continue
        name = str(st.get("stage", ""))
        depth = name.count("/")
        sec = _num(st.get("seconds")) or 0.0
        share = sec / total if total > 0 else 0.0
        bar = f"<span class='tbar' style='width:{min(100.0, 100 * share):.1f}%'></span>"
        label = _e(name.rsplit("/", 1)[-1])
        rows.append(
            f"<tr class='d{min(depth, 2)}'><td style='padding-left:{0.5 + 1.4 * depth:.1f}em'>{label}</td>"
            f"<td class='n'>{sec:,.1f} s</td><td class='n'>{_pct(share)}</td><td class='tb'>{bar}</td>"
            f"<td class='n'>{_e(st.get('count'))}</td></tr>"
        )
    acc = _num(t.get("accounted_s")) or 0.0
    rows.append(
        f"<tr><td><b>total (wall clock)</b></td><td class='n'><b>{_fmt_duration(total)}</b></td>"
        f"<td class='n'>100%</td><td></td><td></td></tr>"
        f"<tr><td class='muted'>not in any stage</td><td class='n muted'>{max(0.0, total - acc):,.1f} s</td>"
        "<td></td><td></td><td></td></tr>"
    )
    parts.append(
        "<table class='timing'><tr><th>stage</th><th class='n'>wall time</th><th class='n'>share</th><th></th>"
        f"<th class='n'>count</th></tr>{''.join(rows)}</table>"
    )
    cache = _map(s, "guard_cache")
    note = ""
    if cache.get("status") in ("hit", "miss"):
        how = "reused from the guard cache" if cache.get("hit") else f"built now ({_e(cache.get('reason'))})"
        note = f" The guard was {how}; cache key <code>{_e(str(cache.get('key'))[:16])}</code>."
    elif cache.get("status") == "resumed":
        note = " The guard was the one this run directory already held."
    parts.append(
        "<p class='muted'>Wall time of this invocation, stage by stage (indented rows are parts of the row above; "
        "count is answers, cells or calls). A resumed run times only the cells it ran. The report's own writing "
        f"is recorded in <code>summary.json</code>.{note}</p>"
    )
    return "".join(parts) + "</section>"
