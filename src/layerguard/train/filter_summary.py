"""The corpus filter's summary: what a run saw and did, cumulative over resumed runs.

Holds :class:`FilterSummary`: line and document counts, per-category seen/kept/dropped counts,
documents dropped per ring, a histogram of classifier scores with its quantiles, timings, the
JSON form written to ``--summary`` and kept in the resume state, and the plain-text table the
CLI prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.train.filter_scoring import DocScore
from layerguard.version import __version__

__all__ = ["HIST_BINS", "FilterSummary"]

HIST_BINS = 100  # score histogram resolution (quantiles are exact to 1 / HIST_BINS)


@dataclass
class FilterSummary:
    """What a filter run saw and did (cumulative over resumed runs).

    Attributes:
        input: The input file.
        kept_path: The kept output.
        dropped_path: The dropped output.
        guard: Id of the scorer (``builtin:<key>`` or ``<guard.yaml>#sha256:<digest>``).
        rings: Rings that scored; ``unavailable``: configured rings that need a model.
        threshold: Documents with a classifier score at or above it are dropped.
        text_field: The JSON field read.
        lines: Input lines read; ``blank_lines`` of them were blank, ``bad_lines`` malformed.
        documents: Documents scored; ``kept`` + ``dropped`` of them.
        categories: Category -> ``{"seen", "kept", "dropped"}`` (nearest hazard category).
        dropped_by: Ring -> documents it dropped (the classifier by threshold, others by veto).
        histogram: Counts of classifier scores in ``HIST_BINS`` equal bins over [0, 1].
        quantiles: Score quantiles from the histogram (upper bin edges, exact to 1 / HIST_BINS).
        bad_line_examples: The first bad lines: ``{"line", "error"}``.
        duration_s: Seconds spent, summed over resumed runs (model loading included).
        scoring_s: Of which reading, scoring and writing.
        docs_per_s: ``documents / scoring_s``.
        runs: Number of runs that contributed (1 + resumptions).
        complete: Whether the whole input was read.
    """

    input: str
    kept_path: str
    dropped_path: str
    guard: str
    rings: list[str]
    unavailable: list[str]
    threshold: float
    text_field: str
    on_bad_line: str
    batch_size: int
    lines: int = 0
    blank_lines: int = 0
    bad_lines: int = 0
    documents: int = 0
    kept: int = 0
    dropped: int = 0
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped_by: dict[str, int] = field(default_factory=dict)
    histogram: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    score_sum: float = 0.0
    bad_line_examples: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    scoring_s: float = 0.0
    runs: int = 1
    complete: bool = False
    layerguard_version: str = __version__

    @property
    def docs_per_s(self) -> float:
        """Documents scored per second of scoring (over all runs)."""
        return self.documents / self.scoring_s if self.scoring_s > 0 else 0.0

    @property
    def quantiles(self) -> dict[str, float]:
        """p50/p90/p99/max of the classifier score, as upper edges of histogram bins."""
        total = sum(self.histogram)
        out: dict[str, float] = {}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
            if total == 0:
                out[name] = math.nan
                continue
            need = max(1, math.ceil(q * total))
            acc = 0
            for b, c in enumerate(self.histogram):
                acc += c
                if acc >= need:
                    out[name] = round((b + 1) / HIST_BINS, 6)
                    break
        return out

    def add(self, doc: DocScore, dropped: bool, flagged_by: Sequence[str]) -> None:
        """Count one scored document."""
        self.documents += 1
        self.kept += not dropped
        self.dropped += dropped
        cat = self.categories.setdefault(doc.category or "none", {"seen": 0, "kept": 0, "dropped": 0})
        cat["seen"] += 1
        cat["dropped" if dropped else "kept"] += 1
        for name in flagged_by:
            self.dropped_by[name] = self.dropped_by.get(name, 0) + 1
        self.histogram[min(HIST_BINS - 1, int(doc.score * HIST_BINS))] += 1
        self.score_sum += doc.score

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the ``--summary`` file)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["categories"] = dict(sorted(self.categories.items()))
        d["drop_rate"] = self.dropped / self.documents if self.documents else 0.0
        d["mean_score"] = self.score_sum / self.documents if self.documents else math.nan
        d["quantiles"] = self.quantiles
        d["docs_per_s"] = round(self.docs_per_s, 3)
        d["histogram"] = {"bins": HIST_BINS, "range": [0.0, 1.0], "counts": self.histogram}
        d["duration_s"] = round(self.duration_s, 3)
        d["scoring_s"] = round(self.scoring_s, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FilterSummary:
        """Inverse of :meth:`to_dict` (used by the resume state)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        s = cls(**known)
        if isinstance(d.get("histogram"), dict):
            s.histogram = list(d["histogram"]["counts"])
        return s

    def table(self) -> str:
        """A short plain-text table: one row per category, then totals."""
        rows = [("category", "seen", "kept", "dropped", "drop %")]
        for name, c in sorted(self.categories.items(), key=lambda kv: -kv[1]["dropped"]):
            rows.append((name, str(c["seen"]), str(c["kept"]), str(c["dropped"]), _pct(c["dropped"], c["seen"])))
        rows.append(
            ("total", str(self.documents), str(self.kept), str(self.dropped), _pct(self.dropped, self.documents))
        )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        q = self.quantiles
        lines.append(
            f"bad lines {self.bad_lines}, blank lines {self.blank_lines}; threshold {self.threshold:.4f}; "
            f"score p50 {q['p50']:.2f} p90 {q['p90']:.2f} p99 {q['p99']:.2f}; "
            f"{self.docs_per_s:.1f} docs/s over {self.scoring_s:.1f}s ({self.runs} run(s)); guard {self.guard}"
        )
        return "\n".join(lines)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}" if b else "-"
