"""The report's result sections: header, headline, attacks, guard rings and judges."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from layerguard.redteam.report.charts import _asr_chart, _rings_chart
from layerguard.redteam.report.formatting import (
    _ci_text,
    _delta_cell,
    _e,
    _fmt_duration,
    _get,
    _map,
    _natural,
    _not_run,
    _num,
    _pct,
    _rate,
    _rate_cell,
)


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
