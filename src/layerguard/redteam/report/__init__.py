"""The red-team report: one self-contained HTML file, plus ``summary.json``.

``report.html`` has inline CSS and its plots as inline base64 PNGs (matplotlib, Agg), no
script and no external reference, so it opens offline and prints cleanly. Every piece of
model or user text (prompts, responses, names taken from the data) is escaped with
:func:`html.escape`: responses can contain HTML or script.

Missing or null parts of the summary (an unguarded-only run, no many-shot attacks, no
multi-turn run, ...) are shown as "not run" rather than failing.

The studies (``layerguard redteam ciphers|bon|latent-attack|crescendo|pair|agents``) get one
section each after the audit's (or make a report of their own): :func:`load_studies` finds
their JSON in their run directories, :func:`report_from_dirs` writes one report from an audit
run and any number of study directories (``layerguard redteam report``).

The package is split by the parts of the page: :mod:`.formatting` (escaping, numbers, rate
cells), :mod:`.charts` (the matplotlib plots), :mod:`.sections` and :mod:`.curves` (the
result sections), :mod:`.examples` (the example attempts), :mod:`.study_files` (finding the
studies' files), :mod:`.studies` and :mod:`.studies_attacker` (the study sections) and
:mod:`.page` (the stylesheet, the fixed explanatory sections and the public functions). Names with a leading underscore
are shared between these modules only.
"""

from layerguard.redteam.report.examples import EXAMPLES_PER_KIND
from layerguard.redteam.report.formatting import EXAMPLE_CHARS
from layerguard.redteam.report.page import render_report, report_from_dirs, write_report, write_summary
from layerguard.redteam.report.study_files import STUDY_KINDS, StudyResult, load_audit_run, load_studies

__all__ = [
    "EXAMPLES_PER_KIND",
    "EXAMPLE_CHARS",
    "STUDY_KINDS",
    "StudyResult",
    "load_audit_run",
    "load_studies",
    "render_report",
    "report_from_dirs",
    "write_report",
    "write_summary",
]
