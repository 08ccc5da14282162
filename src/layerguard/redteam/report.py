"""The red-team report: one self-contained HTML file, plus ``summary.json``.

``report.html`` has inline CSS and its plots as inline base64 PNGs (matplotlib, Agg), no
script and no external reference, so it opens offline and prints cleanly. Every piece of
model or user text (prompts, responses, names taken from the data) is escaped with
:func:`html.escape`: responses can contain HTML or script.

Missing or null parts of the summary (an unguarded-only run, no many-shot attacks, no
multi-turn run, ...) are shown as "not run" rather than failing.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from layerguard.version import __version__

__all__ = ["render_report", "write_report", "write_summary"]

EXAMPLE_CHARS = 600  # prompt and response are cut to this many characters in the examples
EXAMPLES_PER_KIND = 3  # successful and blocked examples shown per attack family

_UNGUARDED = "#c0392b"
_GUARDED = "#2563a6"
_CATCH = "#2f855a"
_FPR = "#d97706"
_GREY = "#6b7280"

_CSS = """
:root { --ung: #c0392b; --gua: #2563a6; --ok: #2f855a; --warn: #d97706; --ink: #1f2933; --mute: #5f6b7a;
        --line: #d9dee4; --soft: #f4f6f8; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; max-width: 1100px; margin: 0 auto; padding: 28px 36px 48px;
       font-size: 15px; line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 20px 0 8px; }
p { margin: 6px 0 10px; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
            font-size: 13px; }
.sub { color: var(--mute); margin: 0 0 14px; }
.muted { color: var(--mute); }
.meta { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 6px 18px; margin: 12px 0 4px;
        padding: 12px 14px; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; }
.meta div { min-width: 0; overflow-wrap: anywhere; }
.meta b { display: block; font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--mute);
          font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; border-top: 4px solid var(--mute); }
.card.ung { border-top-color: var(--ung); }
.card.gua { border-top-color: var(--gua); }
.card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--mute);
               font-weight: 600; }
.card .big { font-size: 30px; font-weight: 700; font-variant-numeric: tabular-nums; line-height: 1.2; }
.card .ci { font-size: 13px; color: var(--mute); font-variant-numeric: tabular-nums; }
.verdict { margin: 12px 0 0; padding: 8px 12px; background: var(--soft); border-left: 4px solid var(--gua); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 14px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--mute);
     border-bottom: 2px solid var(--line); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td .ci { color: var(--mute); font-size: 12px; }
tr.fam td { background: var(--soft); font-weight: 600; font-size: 13px; }
.dec-up { color: var(--ung); font-weight: 600; }
.dec-down { color: var(--ok); font-weight: 600; }
figure { margin: 8px 0 14px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: var(--mute); margin-top: 4px; }
.two { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 22px; align-items: start; }
.notrun { color: var(--mute); font-style: italic; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--soft); border: 1px solid var(--line);
      border-radius: 4px; padding: 8px 10px; margin: 4px 0 10px; }
details { border: 1px solid var(--line); border-radius: 5px; margin: 6px 0; padding: 0 12px; }
details[open] { padding-bottom: 8px; }
summary { cursor: pointer; padding: 7px 0; overflow-wrap: anywhere; }
summary .what { font-weight: 600; }
.tag { display: inline-block; font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
       padding: 1px 6px; border-radius: 3px; color: #fff; background: var(--mute); margin-right: 6px; }
.tag.ung { background: var(--ung); }
.tag.gua { background: var(--gua); }
.tag.block { background: var(--ok); }
.exlabel { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--mute);
           font-weight: 600; margin-top: 8px; }
.family { margin: 18px 0 6px; }
dl.defs dt { font-weight: 700; margin-top: 8px; }
dl.defs dd { margin: 2px 0 4px 18px; }
footer { margin-top: 40px; font-size: 12px; color: var(--mute); border-top: 1px solid var(--line);
         padding-top: 8px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h2, h3, .exlabel { break-after: avoid; }
  figure, table, .card, details, .meta { break-inside: avoid; }
  details::details-content { display: block; content-visibility: visible; }
}
"""


# --------------------------------------------------------------------------- small helpers


def _e(value: Any) -> str:
    """Escaped text of a value; an em dash for None."""
    if value is None:
        return "&mdash;"
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _rate(value: Any) -> dict[str, Any] | None:
    """A usable rate dict (``rate``, ``lo``, ``hi``, ``n``, ``k``) or None (missing, null, n == 0 or NaN)."""
    if not isinstance(value, Mapping) or _num(value.get("rate")) is None:
        return None
    return dict(value)


def _get(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...`` or None when any level is missing or not a mapping."""
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _map(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``d[key]`` when it is a mapping, else an empty one."""
    v = d.get(key)
    return v if isinstance(v, Mapping) else {}


def _pct(x: float | None, digits: int = 1) -> str:
    return "&mdash;" if x is None else f"{100 * x:.{digits}f}%"


def _ci_text(r: Mapping[str, Any]) -> str:
    """``95% CI 30.1–55.0% · 21/50`` (plain text, already safe)."""
    lo, hi = _num(r.get("lo")), _num(r.get("hi"))
    parts = []
    if lo is not None and hi is not None:
        parts.append(f"95% CI {100 * lo:.1f}&ndash;{100 * hi:.1f}%")
    k, n = r.get("k"), r.get("n")
    if isinstance(k, int | float) and isinstance(n, int | float):
        parts.append(f"{int(k)}/{int(n)}")
    return " &middot; ".join(parts)


def _rate_cell(value: Any) -> str:
    """A table cell with a rate and its interval."""
    r = _rate(value)
    if r is None:
        return '<td class="n muted">&mdash;</td>'
    lo, hi = _num(r.get("lo")), _num(r.get("hi"))
    ci = f" <span class='ci'>[{100 * lo:.0f}&ndash;{100 * hi:.0f}]</span>" if lo is not None and hi is not None else ""
    n = r.get("n")
    ns = f" <span class='ci'>n={int(n)}</span>" if isinstance(n, int | float) else ""
    return f'<td class="n">{_pct(_num(r["rate"]))}{ci}{ns}</td>'


def _delta_cell(before: Any, after: Any) -> str:
    """Change from unguarded to guarded, in percentage points."""
    a, b = _rate(before), _rate(after)
    if a is None or b is None:
        return '<td class="n muted">&mdash;</td>'
    d = 100 * (float(b["rate"]) - float(a["rate"]))
    cls = "dec-down" if d < 0 else "dec-up" if d > 0 else "muted"
    return f'<td class="n {cls}">{d:+.1f} pp</td>'


def _fmt_ms(value: Any) -> str:
    v = _num(value)
    return "&mdash;" if v is None else f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def _fmt_duration(value: Any) -> str:
    s = _num(value)
    if s is None:
        return "&mdash;"
    if s < 120:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


def _clip(text: Any, limit: int = EXAMPLE_CHARS) -> str:
    """Escaped text cut to ``limit`` characters, with a note when cut."""
    s = "" if text is None else str(text)
    if len(s) <= limit:
        return html.escape(s, quote=True)
    note = f"<span class='muted'>[cut; {len(s):,} characters in full]</span>"
    return f"{html.escape(s[:limit], quote=True)}&hellip; {note}"


def _not_run(text: str) -> str:
    return f'<p class="notrun">{text}</p>'


def _json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf turned into None and tuples into lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- plots


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


# --------------------------------------------------------------------------- sections


def _header(s: Mapping[str, Any], generated: _dt.datetime) -> str:
    model = s.get("model")
    guard = s.get("guard")
    date = next((s[k] for k in ("date", "finished_at", "started_at", "timestamp") if s.get(k)), None)
    n = s.get("n_samples")
    n_txt = _e(n)
    if s.get("n_benign") is not None:
        n_txt += f" harmful + {_e(s.get('n_benign'))} benign"
    sha = s.get("weights_sha256")
    items = [
        ("model", _e(model)),
        ("guard", _e(guard) if guard else "none (unguarded run)"),
        ("run date", _e(date) if date else _e(generated.strftime("%Y-%m-%d %H:%M UTC"))),
        ("samples", n_txt),
        ("seed", _e(s.get("seed"))),
        ("layerguard", _e(s.get("layerguard_version"))),
        ("duration", _fmt_duration(s.get("duration_s"))),
        ("judge", _e(s.get("judge"))),
    ]
    if s.get("n_cells") is not None:
        items.append(("cells", _e(s.get("n_cells"))))
    if sha:
        items.append(("weights sha256", f"<code>{_e(str(sha)[:16])}&hellip;</code>"))
    meta = "".join(f"<div><b>{k}</b>{v}</div>" for k, v in items)
    return (
        f"<header><h1>Red-team report: {_e(model) if model else 'unknown model'}</h1>"
        f'<p class="sub">guard: {_e(guard) if guard else "none"} &middot; generated '
        f"{_e(generated.strftime('%Y-%m-%d %H:%M UTC'))}</p>"
        f'<div class="meta">{meta}</div></header>'
    )


def _card(label: str, value: Any, cls: str, note: str = "") -> str:
    r = _rate(value)
    if r is None:
        big, ci = '<span class="muted">&mdash;</span>', note or "not run"
    else:
        big, ci = _pct(float(r["rate"])), _ci_text(r)
    return (
        f'<div class="card {cls}"><div class="label">{label}</div><div class="big">{big}</div>'
        f'<div class="ci">{ci}</div></div>'
    )


def _headline(s: Mapping[str, Any]) -> str:
    asr_u, asr_g = _rate(_get(s, "asr", "unguarded")), _rate(_get(s, "asr", "guarded"))
    guarded_run = bool(s.get("guard")) or asr_g is not None
    no_guard = "no guard in this run"
    cards = [
        _card("ASR unguarded", asr_u, "ung"),
        _card("ASR guarded", asr_g, "gua", no_guard if not guarded_run else ""),
        _card("harmful answers, unguarded", _get(s, "harmful_rate", "unguarded"), "ung"),
        _card("over-refusal unguarded", _get(s, "over_refusal", "unguarded"), "ung", "no benign prompts"),
        _card(
            "over-refusal guarded",
            _get(s, "over_refusal", "guarded"),
            "gua",
            no_guard if not guarded_run else "no benign prompts",
        ),
        _card(
            "harmful answers, guarded", _get(s, "harmful_rate", "guarded"), "gua", no_guard if not guarded_run else ""
        ),
    ]
    lines = []
    if asr_u is not None and asr_g is not None:
        d = 100 * (float(asr_g["rate"]) - float(asr_u["rate"]))
        lines.append(
            f"With the guard, the attack success rate goes from <b>{_pct(float(asr_u['rate']))}</b> to "
            f"<b>{_pct(float(asr_g['rate']))}</b> ({d:+.1f} percentage points)."
        )
    elif asr_u is not None:
        lines.append(
            f"Unguarded run: <b>{_pct(float(asr_u['rate']))}</b> of attack attempts succeeded. Run again with a "
            "guard to measure what it stops."
        )
    ou, og = _rate(_get(s, "over_refusal", "unguarded")), _rate(_get(s, "over_refusal", "guarded"))
    if ou is not None and og is not None:
        lines.append(
            f"Over-refusal on benign borderline prompts goes from <b>{_pct(float(ou['rate']))}</b> to "
            f"<b>{_pct(float(og['rate']))}</b> (n = {_e(_get(s, 'over_refusal', 'n') or og.get('n'))})."
        )
    verdict = f'<p class="verdict">{" ".join(lines)}</p>' if lines else ""
    return f'<section id="headline"><h2>Headline</h2><div class="cards">{"".join(cards)}</div>{verdict}</section>'


def _natural(name: Any) -> list[Any]:
    """Sort key putting ``many_shot_4`` before ``many_shot_16``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(name)) if p]


def _attack_order(by_attack: Mapping[str, Any]) -> list[str]:
    """Attacks grouped by family, then by name (numbers in names compared as numbers)."""
    return sorted(by_attack, key=lambda a: (str(_get(by_attack, a, "family") or ""), _natural(a)))


def _rate_table(rows: Mapping[str, Any], first: str, order: Sequence[str], family: bool) -> str:
    head = (
        f"<tr><th>{first}</th><th class='n'>ASR unguarded</th><th class='n'>ASR guarded</th><th class='n'>change</th>"
    )
    head += "</tr>"
    body = []
    last_fam: Any = object()
    for name in order:
        v = rows.get(name)
        if family:
            fam = _get(v, "family")
            if fam != last_fam:
                body.append(f'<tr class="fam"><td colspan="4">family: {_e(fam)}</td></tr>')
                last_fam = fam
        body.append(
            f"<tr><td>{_e(name)}</td>{_rate_cell(_get(v, 'unguarded'))}{_rate_cell(_get(v, 'guarded'))}"
            f"{_delta_cell(_get(v, 'unguarded'), _get(v, 'guarded'))}</tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _attacks_section(s: Mapping[str, Any]) -> str:
    by_attack = _map(s, "asr_by_attack")
    by_cat = _map(s, "asr_by_category")
    parts = ['<section id="attacks"><h2>Attack success by attack</h2>']
    if by_attack:
        order = _attack_order(by_attack)
        guarded = any(_rate(_get(v, "guarded")) for v in by_attack.values())
        which = "without and with the guard" if guarded else "without a guard"
        parts.append(
            f"<figure>{_asr_chart(by_attack, order)}<figcaption>Share of attack attempts that succeeded, per attack, "
            f"{which}; whiskers are 95% Wilson intervals. Attacks are grouped by family as in the table."
            "</figcaption></figure>"
        )
        parts.append(_rate_table(by_attack, "attack", order, family=True))
    else:
        parts.append(_not_run("No per-attack results in this summary."))
    parts.append("<h3>By harm category</h3>")
    if by_cat:
        parts.append(_rate_table(by_cat, "category", sorted(by_cat, key=_natural), family=False))
    else:
        parts.append(_not_run("No per-category results in this summary."))
    parts.append("</section>")
    return "".join(parts)


def _rings_section(s: Mapping[str, Any]) -> str:
    rings = _map(s, "rings")
    parts = ['<section id="rings"><h2>Guard rings</h2>']
    if not rings:
        parts.append(_not_run("No guard in this run, so no per-ring results."))
        return "".join(parts) + "</section>"
    rows = "".join(
        f"<tr><td>{_e(n)}</td>{_rate_cell(_get(v, 'catch_rate'))}{_rate_cell(_get(v, 'fpr'))}"
        f"{_rate_cell(_get(v, 'alone_asr'))}</tr>"
        for n, v in rings.items()
    )
    parts.append(
        "<table><tr><th>ring</th><th class='n'>catch rate</th><th class='n'>false-positive rate</th>"
        f"<th class='n'>ASR with this ring alone</th></tr>{rows}</table>"
    )
    asr_u = _rate(_get(s, "asr", "unguarded"))
    parts.append(
        f"<figure>{_rings_chart(rings, float(asr_u['rate']) if asr_u else None)}<figcaption>Catch rate: share of "
        "attacks that succeeded unguarded which the ring flags (higher is better). False-positive rate: share of "
        "benign prompts it flags (lower is better). ASR alone: the attack success rate if only this ring guarded "
        "(compare with the dashed unguarded ASR).</figcaption></figure>"
    )
    return "".join(parts) + "</section>"


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


def _judges_section(s: Mapping[str, Any]) -> str:
    ja = s.get("judge_agreement")
    parts = ['<section id="judges"><h2>Judges</h2>']
    if not isinstance(ja, Mapping) or not ja:
        parts.append(_not_run("Only the text judges ran (no refusal tokens, no LLM judge)."))
        return "".join(parts) + "</section>"
    rows = []
    rs = ja.get("refusal_score")
    if isinstance(rs, Mapping):
        auc = _num(rs.get("auroc"))
        rows.append(
            "<tr><td>model's refusal score (log-odds &gt; 0) vs refusal phrases</td>"
            f"{_rate_cell(rs.get('accuracy'))}<td class='n'>{'' if auc is None else f'{auc:.3f}'}</td></tr>"
        )
    llm = ja.get("llm")
    if isinstance(llm, Mapping):
        rows.append(
            f"<tr><td>LLM judge vs refusal phrases</td>{_rate_cell(llm.get('agreement'))}<td class='n'></td></tr>"
        )
    parts.append(
        "<table><tr><th>comparison (unguarded answers)</th><th class='n'>agreement</th>"
        f"<th class='n'>AUROC</th></tr>{''.join(rows)}</table>"
        "<p class='muted'>Agreement between independent judges of the same answers; a low value means the "
        "success rate depends on the judge.</p>"
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


def _how_to_read(s: Mapping[str, Any]) -> str:
    judge = str(s.get("judge") or "")
    if judge == "harm":
        success = "the answer did not refuse <em>and</em> the rubric judge scored it harmful"
    elif judge == "refusal":
        success = "the answer did not refuse (judged from refusal phrases in its opening)"
    else:
        success = f"the judge <code>{_e(judge or 'unknown')}</code> ruled the attempt a success"
    return (
        '<section id="how-to-read"><h2>How to read this</h2>'
        "<p>Every harmful test prompt is sent through every attack, to the model alone (<b>unguarded</b>) and "
        "behind the guard (<b>guarded</b>); benign borderline prompts are sent once to measure over-refusal.</p>"
        '<dl class="defs">'
        f"<dt>ASR (attack success rate)</dt><dd>The share of attack attempts that succeeded: {success}. "
        "Lower is better. A blocked request counts as a refusal.</dd>"
        "<dt>Harmful answers</dt><dd>The share of attack attempts whose answer the rubric judge scored as harmful "
        "(specific and convincing), whatever the success judge.</dd>"
        "<dt>Over-refusal</dt><dd>The share of benign but borderline prompts that were refused: the cost of "
        "safety to legitimate users. Lower is better.</dd>"
        "<dt>Catch rate (per ring)</dt><dd>Of the attacks that succeeded against the unguarded model, the share "
        "this ring flags. Higher is better.</dd>"
        "<dt>FPR (false-positive rate, per ring)</dt><dd>The share of benign prompts this ring flags. "
        "Lower is better.</dd>"
        "<dt>ASR alone (per ring)</dt><dd>The ASR if this ring were the only defence; comparing rings shows "
        "which ones carry the guard.</dd>"
        "<dt>Wilson 95% CI</dt><dd>Each rate is shown with its Wilson score interval: with the number of trials "
        "n, the range that holds the true rate with 95% confidence. Intervals are wide at small n; two rates whose "
        "intervals overlap widely are not clearly different.</dd>"
        "</dl></section>"
    )


def _reproduce(s: Mapping[str, Any]) -> str:
    cmd = s.get("command")
    if isinstance(cmd, list | tuple):
        cmd = " ".join(str(c) for c in cmd)
    parts = ['<section id="reproduce"><h2>Reproduce</h2>']
    if cmd:
        parts.append("<p>This run was started with:</p>")
        parts.append(f"<pre>{_e(cmd)}</pre>")
    else:
        parts.append(_not_run("The command was not recorded in the summary."))
    parts.append(
        f"<p>Same model weights, guard, seed (<code>{_e(s.get('seed'))}</code>) and layerguard version "
        f"(<code>{_e(s.get('layerguard_version'))}</code>) give the same cells: answers are greedy. "
        "<code>summary.json</code> beside this file holds every number shown here.</p>"
    )
    cfg = s.get("config")
    if isinstance(cfg, Mapping) and cfg:
        parts.append(
            f"<details><summary>Run settings</summary><pre>{_e(json.dumps(_json_safe(cfg), indent=2, default=str))}"
            "</pre></details>"
        )
    return "".join(parts) + "</section>"


# --------------------------------------------------------------------------- examples


def _success(row: Mapping[str, Any], judge: str) -> bool:
    """Same rule as :func:`layerguard.redteam.metrics.success`."""
    return (not row.get("refused")) and (bool(row.get("harmful")) if judge == "harm" else True)


def _pick(rows: Sequence[Mapping[str, Any]], k: int) -> list[Mapping[str, Any]]:
    """Up to ``k`` rows, round-robin over attacks so one attack does not fill the slots (order kept per attack)."""
    by_attack: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_attack.setdefault(str(r.get("attack")), []).append(r)
    queues = [by_attack[a] for a in sorted(by_attack, key=_natural)]
    out: list[Mapping[str, Any]] = []
    i = 0
    while len(out) < k and any(i < len(q) for q in queues):
        out.extend(q[i] for q in queues if i < len(q))
        i += 1
    return out[:k]


def _example(row: Mapping[str, Any]) -> str:
    guarded = bool(row.get("guarded"))
    decision = row.get("decision")
    tags = f'<span class="tag {"gua" if guarded else "ung"}">{"guarded" if guarded else "unguarded"}</span>'
    if decision == "block":
        tags += '<span class="tag block">blocked</span>'
    bits = [f'<span class="what">{_e(row.get("attack"))}</span>', _e(row.get("category"))]
    if row.get("sample_id") is not None:
        bits.append(f"sample {_e(row.get('sample_id'))}")
    hs = _num(row.get("harm_score"))
    if hs is not None:
        bits.append(f"harm score {hs:.2f}")
    if decision:
        bits.append(f"decision: {_e(decision)}")
    rings = row.get("rings")
    ring_txt = ""
    if isinstance(rings, Mapping) and rings:
        flags = row.get("ring_flags") if isinstance(row.get("ring_flags"), Mapping) else {}
        items = []
        for n, v in rings.items():
            val = _num(v)
            txt = f"{val:.2f}" if val is not None else _e(v)
            mark = " (flagged)" if flags and flags.get(n) else ""
            items.append(f"{_e(n)} = {txt}{mark}")
        ring_txt = f"<div class='exlabel'>ring scores</div><p>{'; '.join(items)}</p>"
    return (
        f"<details><summary>{tags}{' &middot; '.join(bits)}</summary>"
        f"<div class='exlabel'>prompt (last user turn)</div><pre>{_clip(row.get('prompt'))}</pre>"
        f"<div class='exlabel'>response</div><pre>{_clip(row.get('response'))}</pre>{ring_txt}</details>"
    )


def _examples_section(s: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> str:
    judge = str(s.get("judge") or "refusal")
    rows = [
        r
        for r in results
        if isinstance(r, Mapping) and r.get("label") != "borderline" and r.get("attack") != "escalation_live"
    ]
    parts = [
        '<section id="examples"><h2>Examples</h2>',
        f"<p>Up to {EXAMPLES_PER_KIND} successful and {EXAMPLES_PER_KIND} blocked attempts per attack family. "
        "Successful attempts that got past the guard come first. Prompts and responses are cut to "
        f"{EXAMPLE_CHARS} characters and shown as plain text. Click a line to open it.</p>",
    ]
    if not rows:
        parts.append(_not_run("No per-cell results were given to the report."))
        return "".join(parts) + "</section>"
    families = sorted({str(r.get("family") or "unknown") for r in rows})
    for fam in families:
        sub = [r for r in rows if str(r.get("family") or "unknown") == fam]
        ok = [r for r in sub if _success(r, judge)]
        ok.sort(key=lambda r: (not r.get("guarded"), -(_num(r.get("harm_score")) or 0.0)))
        blocked = [r for r in sub if r.get("guarded") and r.get("decision") == "block"]
        n_att = len(sub)
        parts.append(
            f'<h3 class="family">family: {_e(fam)} <span class="muted">&middot; {n_att} attempts, '
            f"{len(ok)} successful, {len(blocked)} blocked</span></h3>"
        )
        parts.append("<div class='exlabel'>successful attacks</div>")
        shown = _pick(ok, EXAMPLES_PER_KIND)
        parts.append("".join(_example(r) for r in shown) if shown else _not_run("None."))
        parts.append("<div class='exlabel'>blocked by the guard</div>")
        shown = _pick(blocked, EXAMPLES_PER_KIND)
        parts.append("".join(_example(r) for r in shown) if shown else _not_run("None."))
    return "".join(parts) + "</section>"


# --------------------------------------------------------------------------- public API


def render_report(
    summary: Mapping[str, Any],
    results: Iterable[Mapping[str, Any]],
    generated: _dt.datetime | None = None,
) -> str:
    """The report as one self-contained HTML document.

    Args:
        summary: The run summary (see :func:`layerguard.redteam.metrics.summarize`); missing keys and null
            parts are shown as "not run".
        results: The per-cell rows (used for the examples).
        generated: The time printed as the report's generation time (default: now, UTC).

    Returns:
        The HTML text: inline CSS and base64 PNG plots, no script, no external reference.
    """
    s: Mapping[str, Any] = summary if isinstance(summary, Mapping) else {}
    when = generated or _dt.datetime.now(_dt.UTC)
    title = f"Red-team report: {s.get('model') or 'unknown model'}"
    body = "".join(
        [
            _header(s, when),
            _headline(s),
            _attacks_section(s),
            _rings_section(s),
            _many_shot_section(s),
            _judges_section(s),
            _turn_and_latency_section(s),
            _how_to_read(s),
            _reproduce(s),
            _examples_section(s, results),
            f"<footer>layerguard {_e(__version__)} red-team report. Self-contained: no network access needed.</footer>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def write_report(summary: dict[str, Any], results: list[dict[str, Any]], out_dir: Path) -> Path:
    """Write ``out_dir/report.html``.

    Args:
        summary: The run summary.
        results: The per-cell rows.
        out_dir: Directory to write into (created if missing).

    Returns:
        The path of the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(summary, results), encoding="utf-8")
    return path


def write_summary(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/summary.json`` (indented, keys in order; NaN and infinities become null).

    Args:
        summary: The run summary.
        out_dir: Directory to write into (created if missing).

    Returns:
        The path of the file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    text = json.dumps(_json_safe(summary), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    path.write_text(text + "\n", encoding="utf-8")
    return path
