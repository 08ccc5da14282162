"""The report's examples: successful and blocked attempts per attack family."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from layerguard.redteam.report.formatting import EXAMPLE_CHARS, _clip, _e, _natural, _not_run, _num

EXAMPLES_PER_KIND = 3  # successful and blocked examples shown per attack family


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
