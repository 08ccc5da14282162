"""Escaping, number formatting and small HTML pieces shared by the report's sections."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

EXAMPLE_CHARS = 600  # prompt and response are cut to this many characters in the examples


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


def _delta_cell(before: Any, after: Any, coloured: bool = True) -> str:
    """Change from unguarded to guarded, in percentage points (coloured: a fall is good, as for ASR)."""
    a, b = _rate(before), _rate(after)
    if a is None or b is None:
        return '<td class="n muted">&mdash;</td>'
    d = 100 * (float(b["rate"]) - float(a["rate"]))
    cls = "muted" if d == 0 else "" if not coloured else "dec-down" if d < 0 else "dec-up"
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


def _natural(name: Any) -> list[Any]:
    """Sort key putting ``many_shot_4`` before ``many_shot_16``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(name)) if p]


def _cell(value: Any, missing: str = "not run") -> str:
    """A rate cell as :func:`_rate_cell`, or ``missing`` ("not run", "n/a") when there is no usable rate."""
    return _rate_cell(value) if _rate(value) is not None else f'<td class="n notrun">{missing}</td>'


def _facts(items: Sequence[tuple[str, Any]]) -> str:
    """Settings as the header's grid of labelled values; a missing value shows as "n/a"."""
    cells = "".join(f"<div><b>{_e(k)}</b>{_e(v) if v not in (None, '') else 'n/a'}</div>" for k, v in items)
    return f'<div class="meta">{cells}</div>'


def _table(head: Sequence[str], rows: Sequence[str], numeric_from: int = 1, cls: str = "") -> str:
    """A table; ``head`` is HTML, columns from ``numeric_from`` on are right-aligned numbers."""
    ths = "".join(f"<th{' class=n' if i >= numeric_from else ''}>{h}</th>" for i, h in enumerate(head))
    return f"<table{f' class={cls}' if cls else ''}><tr>{ths}</tr>{''.join(rows)}</table>"


def _fig(img: str | None, caption: str) -> str:
    """A plot with its caption; nothing when there is no plot."""
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>" if img else ""


def _budget_items(curve: Any) -> dict[float, Mapping[str, Any]]:
    """``{budget: rate}`` of a curve given as ``{"1": rate, ...}`` or as ``[{"budget": 1, ...rate}, ...]``."""
    if isinstance(curve, Mapping):
        items = list(curve.items())
    elif isinstance(curve, list):
        items = [(c.get("budget"), c) for c in curve if isinstance(c, Mapping)]
    else:
        return {}
    out: dict[float, Mapping[str, Any]] = {}
    for key, r in items:
        try:
            b = float(key)
        except (TypeError, ValueError):
            continue
        if math.isfinite(b) and isinstance(r, Mapping):
            out[b] = r
    return out
