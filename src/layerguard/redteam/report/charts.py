"""The report's plots: matplotlib figures on an Agg canvas, inlined as base64 PNGs."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from layerguard.redteam.report.formatting import _e, _get, _num, _rate

_UNGUARDED = "#c0392b"
_GUARDED = "#2563a6"
_CATCH = "#2f855a"
_FPR = "#d97706"
_GREY = "#6b7280"


def _figure(width: float, height: float) -> Any:
    """A matplotlib figure on an Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)
    ax.grid(axis="x", color="#e5e7eb", lw=0.8)
    ax.set_axisbelow(True)


def _img(fig: Any, alt: str) -> str:
    """The figure as an inline ``<img>`` (base64 PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _whiskers(r: Mapping[str, Any] | None) -> tuple[float, float]:
    """Distances from a rate down to its lower and up to its upper bound (0 when unknown)."""
    if r is None:
        return (0.0, 0.0)
    v = float(r["rate"])
    lo, hi = _num(r.get("lo")), _num(r.get("hi"))
    return (max(0.0, v - lo) if lo is not None else 0.0, max(0.0, hi - v) if hi is not None else 0.0)


def _xerr(rates: Sequence[Mapping[str, Any] | None]) -> list[list[float]]:
    w = [_whiskers(r) for r in rates]
    return [[a for a, _ in w], [b for _, b in w]]


def _grouped_hbars(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[dict[str, Any] | None]]],
    xlabel: str,
    refs: Sequence[tuple[str, float, str]] = (),
) -> Any:
    """Horizontal grouped bars (one group per label, one bar per series) with Wilson CI error bars."""
    from matplotlib.ticker import PercentFormatter

    n, m = len(labels), len(series)
    fig = _figure(8.6, max(2.2, 0.23 * n * max(m, 2) + 0.9))
    ax = fig.add_subplot()
    h = 0.8 / m
    for j, (name, color, rates) in enumerate(series):
        ys = [i - 0.4 + h * (j + 0.5) for i in range(n)]
        vals = [float(r["rate"]) if r else 0.0 for r in rates]
        ax.barh(
            ys,
            vals,
            height=h * 0.92,
            color=color,
            label=name,
            xerr=_xerr(rates),
            error_kw={"ecolor": "#374151", "elinewidth": 0.9, "capsize": 2.5},
        )
        for y, r in zip(ys, rates, strict=True):
            if r is None:
                ax.text(0.005, y, "not run", va="center", fontsize=7, color=_GREY)
    for name, x, color in refs:
        ax.axvline(x, color=color, ls="--", lw=1, label=name)
    ax.set_yticks(range(n), [str(s) for s in labels], parse_math=False)  # names come from the data
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(xlabel, fontsize=9)
    _style(ax)
    ax.legend(fontsize=8, loc="lower right", frameon=True, framealpha=0.9)
    return fig


def _asr_chart(by_attack: Mapping[str, Any], order: Sequence[str]) -> str:
    ung = [_rate(_get(by_attack, a, "unguarded")) for a in order]
    gua = [_rate(_get(by_attack, a, "guarded")) for a in order]
    series: list[tuple[str, str, Sequence[dict[str, Any] | None]]] = [("unguarded", _UNGUARDED, ung)]
    if any(gua):
        series.append(("guarded", _GUARDED, gua))
    fig = _grouped_hbars(order, series, "attack success rate (bars: 95% Wilson CI)")
    return _img(fig, "attack success rate per attack, unguarded vs guarded")


def _rings_chart(rings: Mapping[str, Any], asr_unguarded: float | None) -> str:
    names = list(rings)
    series: list[tuple[str, str, Sequence[dict[str, Any] | None]]] = [
        ("catch rate", _CATCH, [_rate(_get(rings, n, "catch_rate")) for n in names]),
        ("false-positive rate", _FPR, [_rate(_get(rings, n, "fpr")) for n in names]),
        ("ASR with this ring alone", _UNGUARDED, [_rate(_get(rings, n, "alone_asr")) for n in names]),
    ]
    refs = [("ASR unguarded", asr_unguarded, _GREY)] if asr_unguarded is not None else []
    fig = _grouped_hbars(names, series, "rate (bars: 95% Wilson CI)", refs)
    return _img(fig, "per-ring catch rate, false-positive rate and ASR alone")


def _many_shot_chart(ms: Mapping[str, Any], by_attack: Mapping[str, Any]) -> str | None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator, PercentFormatter

    ks = [_num(k) for k in ms.get("k") or []]
    ys = [_num(y) for y in ms.get("asr") or []]
    gs = [_num(y) for y in ms.get("asr_guarded") or []]
    if not ks or len(ks) != len(ys):
        return None
    if len(gs) != len(ks):
        gs = [None] * len(ks)
    fit = ms.get("fit") if isinstance(ms.get("fit"), Mapping) else None
    log = fit is not None
    fig = _figure(6.2, 3.4)
    ax = fig.add_subplot()
    drawn: list[float] = []
    for name, color, vals, key in (("unguarded", _UNGUARDED, ys, "unguarded"), ("guarded", _GUARDED, gs, "guarded")):
        pts = [
            (k, y, k_raw)
            for k, y, k_raw in zip(ks, vals, ms.get("k") or [], strict=False)
            if k is not None and y is not None and (not log or (k > 0 and y > 0))
        ]
        if not pts:
            continue
        xs, vs = [p[0] for p in pts], [p[1] for p in pts]
        cis = [_rate(_get(by_attack, f"many_shot_{p[2]}", key)) for p in pts]
        err = None
        if all(cis):
            lo, hi = _xerr(cis)
            if log:  # keep the lower whisker above zero on a log axis
                lo = [min(d, v * 0.9) for d, v in zip(lo, vs, strict=True)]
            err = [lo, hi]
            drawn += [v - d for v, d in zip(vs, lo, strict=True)]
        drawn += vs
        ax.errorbar(xs, vs, yerr=err, marker="o", ms=5, lw=1.6, color=color, label=name, capsize=2.5)
    if fit is not None:
        a, b, r2 = _num(fit.get("a")), _num(fit.get("b")), _num(fit.get("r2"))
        pos = [k for k in ks if k is not None and k > 0]
        if a is not None and b is not None and pos:
            lo_k, hi_k = min(pos), max(pos)
            grid = [lo_k * (hi_k / lo_k) ** (i / 50) for i in range(51)] if hi_k > lo_k else [lo_k]
            r2s = f", R² = {r2:.2f}" if r2 is not None else ""
            label = f"fit: ASR = {a:.3g} · k^{b:.2f}{r2s}"
            ax.plot(grid, [a * k**b for k in grid], ls="--", lw=1, color=_GREY, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(pos))))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}%"))
        low = min([d for d in drawn if d > 0] or [0.01])
        ax.set_ylim(low / 1.5, 1.05)
    else:
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("number of shots k" + (" (log scale)" if log else ""), fontsize=9)
    ax.set_ylabel("ASR" + (" (log scale)" if log else ""), fontsize=9)
    _style(ax)
    ax.grid(axis="y", color="#e5e7eb", lw=0.8)
    ax.legend(fontsize=8, loc="lower right")
    return _img(fig, "many-shot ASR against the number of shots")


def _turn_chart(turns: Sequence[Any], refusals: Sequence[dict[str, Any] | None]) -> str | None:
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    pts = [(t, r) for t, r in zip(turns, refusals, strict=False) if r is not None and _num(t) is not None]
    if not pts:
        return None
    fig = _figure(5.0, 3.0)
    ax = fig.add_subplot()
    xs = [float(t) for t, _ in pts]
    vs = [float(r["rate"]) for _, r in pts]
    ax.errorbar(xs, vs, yerr=_xerr([r for _, r in pts]), marker="o", ms=5, lw=1.6, color=_GUARDED, capsize=2.5)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(min(xs) - 0.3, max(xs) + 0.3)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("turn of the escalating conversation", fontsize=9)
    ax.set_ylabel("refusal rate", fontsize=9)
    _style(ax)
    ax.grid(axis="y", color="#e5e7eb", lw=0.8)
    return _img(fig, "refusal rate by turn")


def _rate_curves(
    xs: Sequence[float],
    series: Sequence[tuple[str, str, Sequence[Mapping[str, Any] | None]]],
    xlabel: str,
    ylabel: str,
    alt: str,
    *,
    log_x: bool = False,
    lines: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
) -> str | None:
    """Rates against a budget, one line per series with Wilson CI whiskers, plus dashed ``lines`` (fits).

    ``series`` holds one rate dict (or None: not measured) per x; None when no series has a point.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator, PercentFormatter

    fig = _figure(6.2, 3.3)
    ax = fig.add_subplot()
    shown: list[float] = []
    for name, color, rates in series:
        pts = [(x, r) for x, r in zip(xs, rates, strict=False) if r is not None and (not log_x or x > 0)]
        if not pts:
            continue
        px = [x for x, _ in pts]
        ax.errorbar(
            px,
            [float(r["rate"]) for _, r in pts],
            yerr=_xerr([r for _, r in pts]),
            marker="o",
            ms=4.5,
            lw=1.6,
            color=color,
            label=name,
            capsize=2.5,
        )
        shown += px
    if not shown:
        return None
    for name, gx, gy in lines:
        ax.plot(gx, gy, ls="--", lw=1, color=_GREY, label=name)
    if log_x:
        ax.set_xscale("log")
    ticks = sorted(set(shown))
    if len(ticks) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    _style(ax)
    ax.grid(axis="y", color="#e5e7eb", lw=0.8)
    ax.legend(fontsize=8, loc="best")
    return _img(fig, alt)
