"""The report's study sections: ciphers, best-of-N and the adaptive attack on the latent ring.

One section per :class:`~layerguard.redteam.report.study_files.StudyResult`, read from the JSON
its command wrote (see :mod:`.study_files`); the attacker-model studies (Crescendo, PAIR/TAP)
and the agent scenarios are in :mod:`.studies_attacker`. Rates are shown as the audit's are
(rate, Wilson 95% interval, n); a part the file does not hold is shown as "not run" (never
measured) or "n/a" (not applicable), never as a failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from layerguard.redteam.report.charts import _FPR, _GREY, _GUARDED, _UNGUARDED, _grouped_hbars, _img
from layerguard.redteam.report.charts import _rate_curves as _curves
from layerguard.redteam.report.formatting import (
    _budget_items,
    _cell,
    _delta_cell,
    _e,
    _facts,
    _fig,
    _get,
    _map,
    _not_run,
    _num,
    _rate,
    _table,
)
from layerguard.redteam.report.studies_attacker import _adaptive, _agents, _n
from layerguard.redteam.report.study_files import StudyResult

TITLES = {
    "ciphers": "Ciphers",
    "bon": "Best-of-N augmentation",
    "latent_attack": "Adaptive attack on the latent ring",
    "crescendo": "Crescendo",
    "pair": "PAIR / TAP",
    "agents": "Agent scenarios",
}


def _ciphers(d: Mapping[str, Any]) -> str:
    meta, attacks, rec = _map(d, "meta"), _map(d, "attacks"), _map(d, "decoder_recovery")
    cfg = _map(meta, "config")
    parts = [
        _facts(
            [
                ("model", meta.get("model")),
                ("guard", meta.get("guard") or "none"),
                ("prompts", meta.get("n_harmful")),
                ("judge", meta.get("judge")),
                ("answer tokens", cfg.get("max_new_tokens")),
                ("seed", meta.get("seed")),
                ("layerguard", meta.get("layerguard_version")),
            ]
        ),
        "<p class='muted'>Each harmful request encoded by each cipher (<code>direct</code>: not encoded, the "
        "baseline), answered by the model alone and behind the guard. Success: the answer did not refuse. A small "
        "model rarely understands a cipher, so the rubric-harmful share and the share of answers that take up the "
        "request's words (on-topic) are shown beside ASR.</p>",
        "<h3>Attack success</h3>",
    ]
    names = [str(a) for a in attacks]
    if names:
        guarded = any(_rate(_get(attacks, a, "asr_guarded")) for a in names)
        series: list[tuple[str, str, Sequence[dict[str, Any] | None]]] = [
            ("unguarded", _UNGUARDED, [_rate(_get(attacks, a, "asr_unguarded")) for a in names])
        ]
        if guarded:
            series.append(("guarded", _GUARDED, [_rate(_get(attacks, a, "asr_guarded")) for a in names]))
        fig = _grouped_hbars(names, series, "attack success rate (bars: 95% Wilson CI)")
        parts.append(_fig(_img(fig, "cipher ASR per attack"), "ASR per cipher; whiskers are 95% Wilson intervals."))
        rows = [
            f"<tr><td>{_e(a)}</td>{_cell(_get(attacks, a, 'asr_unguarded'))}{_cell(_get(attacks, a, 'asr_guarded'))}"
            f"{_delta_cell(_get(attacks, a, 'asr_unguarded'), _get(attacks, a, 'asr_guarded'))}"
            f"{_cell(_get(attacks, a, 'harmful_unguarded'))}{_cell(_get(attacks, a, 'on_topic_unguarded'))}</tr>"
            for a in names
        ]
        head = ["attack", "ASR unguarded", "ASR guarded", "change", "rubric-harmful, unguarded", "on-topic, unguarded"]
        parts.append(_table(head, rows))
    else:
        parts.append(_not_run("No attack results in this file: not run."))
    parts.append("<h3>Does the decode ring read it?</h3>")
    if rec:
        rows = []
        for a in [*names, *(str(x) for x in rec if str(x) not in names)]:
            r = rec.get(a)
            enc = _map(r, "encodings") if isinstance(r, Mapping) else {}
            seen = ", ".join(f"{_e(k)} &times;{_e(v)}" for k, v in enc.items()) or "&mdash;"
            miss = "n/a" if a == "direct" else "not run"
            rows.append(
                f"<tr><td>{_e(a)}</td>{_cell(_get(r, 'recovered'), miss)}{_cell(_get(r, 'flagged'), miss)}"
                f"<td>{seen}</td></tr>"
            )
        parts.append(_table(["attack", "request recovered", "ring decoded something", "encodings found"], rows))
        parts.append(
            "<p class='muted'>Recovered: one of the plaintexts the decode ring hands to the later rings is the "
            "original request. No model is involved.</p>"
        )
    else:
        parts.append(_not_run("Decoder recovery: not run."))
    parts.append("<h3>Catch rate per ring</h3>")
    rings = sorted({str(k) for a in names for k in _map(_map(attacks, a), "ring_catch")})
    if rings:
        rows = [
            f"<tr><td>{_e(a)}</td>{''.join(_cell(_get(attacks, a, 'ring_catch', g), 'n/a') for g in rings)}</tr>"
            for a in names
        ]
        parts.append(_table(["attack", *(_e(g) for g in rings)], rows))
        parts.append(
            "<p class='muted'>Of the requests the attack got through unguarded, the share each ring flags behind "
            "the guard (n/a: none got through).</p>"
        )
    else:
        parts.append(_not_run("No guarded run, so no per-ring catch rates: not run."))
    return "".join(parts)


def _bon_fit_line(
    fit: Mapping[str, Any], budgets: Sequence[float], label: str
) -> tuple[str, list[float], list[float]] | None:
    """The fitted ASR(N) = exp(-a N^b) over the measured budgets (None when the numbers make no curve)."""
    a, b = float(fit["a"]), float(fit["b"])
    lo, hi = min(budgets), max(budgets)
    grid = [lo * (hi / lo) ** (i / 60) for i in range(61)] if hi > lo else [lo]
    try:
        return (f"fit, {label}", grid, [math.exp(min(0.0, -a * n**b)) for n in grid])
    except OverflowError:
        return None


def _bon(d: Mapping[str, Any]) -> str:
    meta = _map(d, "meta")
    kinds = meta.get("kinds")
    parts = [
        _facts(
            [
                ("model", meta.get("model")),
                ("guard", meta.get("guard") or ("none" if meta.get("guarded") is False else None)),
                ("prompts", d.get("n_prompts")),
                ("draws made", d.get("n_draws")),
                ("N at most", meta.get("n_max")),
                ("sigma", meta.get("sigma")),
                ("augmentations", ", ".join(map(str, kinds)) if isinstance(kinds, list) else kinds),
                ("layerguard", meta.get("layerguard_version")),
            ]
        ),
        "<p class='muted'>Each request is drawn again and again with random augmentations (word scrambling, "
        "capitalisation, character noise). ASR at N: the share of requests for which one of the first N draws "
        "succeeded (the answer did not refuse; guarded: and the guard let it through).</p>",
    ]
    phases = {p: _budget_items(_get(d, p, "curve")) for p in ("unguarded", "guarded", "unguarded_harmful")}
    budgets = sorted({b for c in phases.values() for b in c})
    if not budgets:
        parts.append(_not_run("No ASR-vs-N curve in this file: not run."))
        return "".join(parts)
    names = {
        "unguarded": ("unguarded", _UNGUARDED),
        "guarded": ("guarded", _GUARDED),
        "unguarded_harmful": ("rubric-harmful, unguarded (lower bound)", _FPR),
    }
    series = [(names[p][0], names[p][1], [_rate(c.get(b)) for b in budgets]) for p, c in phases.items() if c]
    fits = {p: f if isinstance(f := _get(d, p, "fit"), Mapping) else {} for p in ("unguarded", "guarded")}
    lines = [
        line
        for p, f in fits.items()
        if _num(f.get("a")) is not None and _num(f.get("b")) is not None and min(budgets) > 0
        if (line := _bon_fit_line(f, budgets, p)) is not None
    ]
    chart = _curves(
        budgets, series, "draws per request N (log scale)", "ASR", "best-of-N ASR against N", log_x=True, lines=lines
    )
    caption = (
        "ASR against N (whiskers: 95% Wilson CI); dashed: the fitted power law, &minus;ln ASR = a&middot;N<sup>b</sup>."
    )
    parts.append(_fig(chart, caption))
    rows = [
        f"<tr><td class='n'>{_n(b)}</td>{_cell(phases['unguarded'].get(b))}{_cell(phases['guarded'].get(b))}"
        f"{_delta_cell(phases['unguarded'].get(b), phases['guarded'].get(b))}"
        f"{_cell(phases['unguarded_harmful'].get(b))}</tr>"
        for b in budgets
    ]
    parts.append(_table(["N", "ASR unguarded", "ASR guarded", "change", "rubric-harmful, unguarded"], rows, 0))
    parts.append("<h3>Power-law fit</h3>")
    fit_rows = []
    for p in ("unguarded", "guarded"):
        if not isinstance(d.get(p), Mapping):
            fit_rows.append(f"<tr><td>{p}</td><td class='notrun' colspan='5'>not run</td></tr>")
            continue
        f = fits[p]
        a, b, r2, half = (_num(f.get(k)) for k in ("a", "b", "r2", "n_for_half"))
        if a is None or b is None:
            fit_rows.append(
                f"<tr><td>{p}</td><td class='notrun' colspan='5'>no fit: fewer than 3 budgets with 0 &lt; ASR "
                "&lt; 1</td></tr>"
            )
            continue
        fit_rows.append(
            f"<tr><td>{p}</td><td class='n'>{a:.3g}</td><td class='n'>{b:.2f}</td>"
            f"<td class='n'>{'n/a' if r2 is None else f'{r2:.2f}'}</td><td class='n'>{_e(f.get('n_points'))}</td>"
            f"<td class='n'>{'n/a' if half is None else f'{half:,.0f}'}</td></tr>"
        )
    parts.append(_table(["phase", "a", "b", "R<sup>2</sup>", "points", "N for 50% ASR (fit)"], fit_rows))
    return "".join(parts)


_CONDITIONS = (
    ("none", "no suffix", _GREY),
    ("random", "random suffix (control)", _FPR),
    ("searched", "searched suffix (attack)", _UNGUARDED),
)
_LATENT_METRICS = (
    ("latent_flagged", "latent ring flags it"),
    ("guard_blocked", "guard blocks it"),
    ("model_refused", "model refuses"),
    ("guarded_asr", "ASR through the guard"),
)


def _latent(d: Mapping[str, Any]) -> str:
    meta, summ = _map(d, "meta"), _map(d, "summary")
    ids = meta.get("sample_ids")
    parts = [
        _facts(
            [
                ("model", meta.get("model")),
                ("guard", meta.get("guard")),
                ("prompts", len(ids) if isinstance(ids, list) else None),
                ("search steps", meta.get("steps")),
                ("suffix tokens", meta.get("n_tokens")),
                ("swaps per step", meta.get("n_candidates")),
                ("refusal weight", meta.get("refusal_weight")),
                ("seed", meta.get("seed")),
            ]
        ),
        "<p class='muted'>A white-box attacker appends a suffix searched (GCG-style) to lower the latent ring's "
        "score, keeping the request verbatim; a random suffix of the same length is the control. Every number is "
        "measured on the suffix as text through the ordinary guard path.</p>",
    ]
    conds = [(k, label, color) for k, label, color in _CONDITIONS if isinstance(summ.get(k), Mapping)]
    if not conds:
        parts.append(_not_run("No per-condition summary in this file: not run."))
        return "".join(parts)
    labels = [label for _, label in _LATENT_METRICS]
    series = [(label, color, [_rate(_get(summ, k, m)) for m, _ in _LATENT_METRICS]) for k, label, color in conds]
    fig = _grouped_hbars(labels, series, "rate (bars: 95% Wilson CI)")
    parts.append(_fig(_img(fig, "latent-ring attack against its control"), "Searched suffix vs random suffix."))
    head = ["measure", *(label for _, label, _ in _CONDITIONS), "searched &minus; random"]
    rows = [
        f"<tr><td>{label}</td>{''.join(_cell(_get(summ, k, m)) for k, _, _ in _CONDITIONS)}"
        f"{_delta_cell(_get(summ, 'random', m), _get(summ, 'searched', m), m == 'guarded_asr')}</tr>"
        for m, label in _LATENT_METRICS
    ]
    scores = "".join(
        f"<td class='n'>{'not run' if (v := _num(_get(summ, k, 'latent_score_mean'))) is None else f'{v:.3f}'}</td>"
        for k, _, _ in _CONDITIONS
    )
    rows.append(f"<tr><td>mean latent-ring score</td>{scores}<td class='n'></td></tr>")
    parts.append(_table(head, rows))
    start, end = _num(_get(summ, "search_loss", "start_mean")), _num(_get(summ, "search_loss", "end_mean"))
    if start is not None and end is not None:
        parts.append(f"<p>Search loss (mean over requests): {start:.3f} at the random start, {end:.3f} at the end.</p>")
    else:
        parts.append(_not_run("Search loss: n/a."))
    return "".join(parts)


def _study_section(i: int, study: StudyResult) -> str:
    kind = study.kind
    d: Mapping[str, Any] = study.data if isinstance(study.data, Mapping) else {}
    title = TITLES.get(kind, kind)
    if kind == "pair":
        cfg = _map(d, "config")
        tap = (_num(cfg.get("branch")) or 1) > 1 or (_num(cfg.get("keep")) or 0) > 0
        title = "TAP (tree of attacks)" if tap else "PAIR"
    src = f'<p class="sub">from <code>{_e(study.source)}</code></p>' if study.source else ""
    if kind == "ciphers":
        body = _ciphers(d)
    elif kind == "bon":
        body = _bon(d)
    elif kind == "latent_attack":
        body = _latent(d)
    elif kind in ("crescendo", "pair"):
        body = _adaptive(d, kind)
    elif kind == "agents":
        body = _agents(d)
    else:
        body = _not_run(f"Unknown study kind {_e(kind)}: not shown.")
    return f'<section id="{_anchor(i, kind)}"><h2>Study: {_e(title)}</h2>{src}{body}</section>'


def _anchor(i: int, kind: str) -> str:
    return f"study-{i + 1}-{''.join(c if c.isalnum() else '-' for c in kind)}"


def _studies_nav(studies: Sequence[StudyResult]) -> str:
    if not studies:
        return ""
    links = " &middot; ".join(
        f'<a href="#{_anchor(i, s.kind)}">{_e(TITLES.get(s.kind, s.kind))}</a>' for i, s in enumerate(studies)
    )
    return f'<nav class="studies"><b>Studies in this report:</b> {links}</nav>'


def _studies_sections(studies: Sequence[StudyResult]) -> str:
    return "".join(_study_section(i, s) for i, s in enumerate(studies))
