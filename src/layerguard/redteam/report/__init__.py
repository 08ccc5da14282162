"""The red-team report: one self-contained HTML file, plus ``summary.json``.

``report.html`` has inline CSS and its plots as inline base64 PNGs (matplotlib, Agg), no
script and no external reference, so it opens offline and prints cleanly. Every piece of
model or user text (prompts, responses, names taken from the data) is escaped with
:func:`html.escape`: responses can contain HTML or script.

Missing or null parts of the summary (an unguarded-only run, no many-shot attacks, no
multi-turn run, ...) are shown as "not run" rather than failing.

The package is split by the parts of the page: :mod:`.formatting` (escaping, numbers, rate
cells), :mod:`.charts` (the matplotlib plots), :mod:`.sections` and :mod:`.curves` (the
result sections), :mod:`.examples` (the example attempts) and :mod:`.page` (the stylesheet,
the fixed explanatory sections and the public functions). Names with a leading underscore
are shared between these modules only.
"""

from layerguard.redteam.report.examples import EXAMPLES_PER_KIND
from layerguard.redteam.report.formatting import EXAMPLE_CHARS
from layerguard.redteam.report.page import render_report, write_report, write_summary

__all__ = ["EXAMPLES_PER_KIND", "EXAMPLE_CHARS", "render_report", "write_report", "write_summary"]
