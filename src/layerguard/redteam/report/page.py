"""The report page: stylesheet, the fixed explanatory sections, and the public render/write functions."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.redteam.report.curves import _many_shot_section, _turn_and_latency_section
from layerguard.redteam.report.examples import _examples_section
from layerguard.redteam.report.formatting import _e, _json_safe, _not_run
from layerguard.redteam.report.sections import _attacks_section, _header, _headline, _judges_section, _rings_section
from layerguard.redteam.report.studies import TITLES, _studies_nav, _studies_sections
from layerguard.redteam.report.study_files import StudyResult, load_audit_run, load_studies
from layerguard.redteam.report.timing import _precision_section, _timing_section
from layerguard.version import __version__

__all__ = ["render_report", "report_from_dirs", "write_report", "write_summary"]

Studies = Sequence[StudyResult | tuple[str, Mapping[str, Any]]]

_CSS = """
table.timing td.tb { width: 30%; } .tbar { display: inline-block; height: 0.7em; background: var(--gua); }
table.timing tr.d0 td { font-weight: 600; }
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
table.wrap td.n { white-space: normal; }
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
nav.studies { margin: 14px 0 0; padding: 8px 12px; background: var(--soft); border-left: 4px solid var(--mute); }
nav.studies a { color: var(--gua); }
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


def _as_studies(studies: Studies | None) -> list[StudyResult]:
    return [s if isinstance(s, StudyResult) else StudyResult(str(s[0]), s[1]) for s in studies or []]


def _studies_header(studies: Sequence[StudyResult], generated: _dt.datetime) -> str:
    kinds = list(dict.fromkeys(TITLES.get(s.kind, s.kind) for s in studies))
    return (
        "<header><h1>Red-team report: studies</h1>"
        f'<p class="sub">{_e(", ".join(kinds)) or "no study"} &middot; generated '
        f"{_e(generated.strftime('%Y-%m-%d %H:%M UTC'))}</p></header>"
    )


def _studies_how_to_read() -> str:
    return (
        '<section id="how-to-read"><h2>How to read this</h2><dl class="defs">'
        "<dt>ASR (attack success rate)</dt><dd>The share of attack attempts that succeeded, as each study's judge "
        "rules it. Lower is better.</dd>"
        "<dt>Wilson 95% CI</dt><dd>Each rate is shown with its Wilson score interval [low&ndash;high] and its "
        "number of trials n. Intervals are wide at small n; two rates whose intervals overlap widely are not "
        "clearly different.</dd>"
        "<dt>not run, n/a</dt><dd><i>not run</i>: the study did not measure this part (no guard given, no such "
        "setting); <i>n/a</i>: nothing to measure (e.g. no attempt still running at that turn).</dd>"
        "</dl></section>"
    )


def render_report(
    summary: Mapping[str, Any] | None,
    results: Iterable[Mapping[str, Any]],
    generated: _dt.datetime | None = None,
    studies: Studies | None = None,
) -> str:
    """The report as one self-contained HTML document.

    Args:
        summary: The audit run's summary (see :func:`layerguard.redteam.metrics.summarize`); missing keys and
            null parts are shown as "not run". None: no audit, a report of the studies only.
        results: The audit's per-cell rows (used for the examples).
        generated: The time printed as the report's generation time (default: now, UTC).
        studies: Study results (:class:`StudyResult`, or ``(kind, json)`` pairs; see
            :func:`load_studies`), one section each after the audit's sections.

    Returns:
        The HTML text: inline CSS and base64 PNG plots, no script, no external reference.
    """
    found = _as_studies(studies)
    when = generated or _dt.datetime.now(_dt.UTC)
    if summary is None:
        title = "Red-team report: studies"
        parts = [_studies_header(found, when), _studies_nav(found), _studies_sections(found), _studies_how_to_read()]
    else:
        s: Mapping[str, Any] = summary if isinstance(summary, Mapping) else {}
        title = f"Red-team report: {s.get('model') or 'unknown model'}"
        parts = [
            _header(s, when),
            _studies_nav(found),
            _headline(s),
            _attacks_section(s),
            _rings_section(s),
            _many_shot_section(s),
            _judges_section(s),
            _turn_and_latency_section(s),
            _precision_section(s),
            _timing_section(s),
            _how_to_read(s),
            _reproduce(s),
            _examples_section(s, results),
            _studies_sections(found),
        ]
    footer = f"<footer>layerguard {_e(__version__)} red-team report. Self-contained: no network access needed.</footer>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{''.join(parts)}{footer}</body></html>\n"
    )


def write_report(
    summary: Mapping[str, Any] | None,
    results: Iterable[Mapping[str, Any]],
    out_dir: Path,
    studies: Studies | None = None,
) -> Path:
    """Write ``out_dir/report.html``.

    Args:
        summary: The run summary (None: a report of the studies only).
        results: The per-cell rows.
        out_dir: Directory to write into (created if missing).
        studies: Study results shown after the audit's sections (see :func:`render_report`).

    Returns:
        The path of the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(summary, results, studies=studies), encoding="utf-8")
    return path


def report_from_dirs(
    out: Path,
    audit_dir: Path | None = None,
    study_dirs: Sequence[Path] = (),
    log: Callable[[str], None] = lambda m: None,
) -> Path:
    """Read an audit run and study directories and write one report to the file ``out``.

    Args:
        out: The HTML file to write (its directory is created if missing).
        audit_dir: An audit run directory (``summary.json``, optional ``results.jsonl``), or None.
        study_dirs: Run directories of ``layerguard redteam`` studies (see :func:`load_studies`).
        log: Receives one line per study found.

    Returns:
        ``out``.

    Raises:
        InvalidInputError: nothing to report, a missing directory, a directory with no study,
            or ``out`` naming a directory.
    """
    if audit_dir is None and not study_dirs:
        raise InvalidInputError(
            "nothing to report: no audit run and no study directory given",
            hint="layerguard redteam report -o report.html [--audit AUDIT_DIR] STUDY_DIR...",
        )
    out = Path(out)
    if out.is_dir():
        raise InvalidInputError(f"{out} is a directory", hint="give the report's file name, e.g. -o report.html")
    summary, rows = load_audit_run(audit_dir) if audit_dir is not None else (None, [])
    studies = load_studies(study_dirs)
    for st in studies:
        log(f"{TITLES.get(st.kind, st.kind)}: {st.source}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(summary, rows, studies=studies), encoding="utf-8")
    return out


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
