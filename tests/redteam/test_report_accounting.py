"""The report's accounting sections: stage times and the precision of the suite's rates."""

from __future__ import annotations

import pytest

from layerguard.redteam.report import render_report
from layerguard.redteam.report.timing import detectable_difference, precision, worst_half_width
from layerguard.stats import rate


def _summary() -> dict:
    ung = rate([True] * 12 + [False] * 12)
    return {
        "model": "m",
        "asr": {"unguarded": rate([True] * 150 + [False] * 138), "guarded": rate([False] * 288)},
        "asr_by_attack": {"direct": {"unguarded": ung, "guarded": rate([False] * 24), "family": "baseline"}},
        "asr_by_category": {"S1": {"unguarded": rate([True, False]), "guarded": rate([False, False])}},
        "over_refusal": {"unguarded": rate([True] * 8 + [False] * 24), "guarded": rate([True] * 4 + [False] * 28)},
        "timing": {
            "total_s": 100.0,
            "accounted_s": 97.0,
            "stages": [
                {"stage": "model load", "seconds": 7.0, "count": 1},
                {"stage": "generation", "seconds": 90.0, "count": 24},
                {"stage": "generation/<img src=x onerror=alert(1)>", "seconds": 90.0, "count": 24},
            ],
        },
        "guard_cache": {"status": "hit", "hit": True, "key": "ab" * 32, "reason": ""},
    }


def test_half_widths_and_detectable_differences():
    assert worst_half_width(24) == pytest.approx(0.1857, abs=1e-3)
    assert detectable_difference(24) == pytest.approx(0.4044, abs=1e-3)
    assert worst_half_width(288) < worst_half_width(24) / 3  # 12x the trials, ~3.5x narrower
    p = precision(_summary())
    assert p["asr"]["n"] == 288 and p["asr_per_attack"]["n"] == 24 and p["asr_per_category"]["n"] == 2
    assert p["asr_per_attack"]["observed_half_width"] == pytest.approx(worst_half_width(24), abs=1e-9)
    assert p["over_refusal"]["n"] == 32


def test_report_shows_the_time_table_and_precision_escaped():
    html = render_report(_summary(), [])
    assert 'id="timing"' in html and 'id="precision"' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html  # stage names are data
    assert "90.0 s" in html and "reused from the guard cache" in html and "abababab" in html
    assert "&plusmn;18.6%" in html  # one attack, 24 prompts: +-18.6 points at worst
    bare = render_report({"model": "m"}, [])
    assert "This summary has no stage times." in bare and "No rates in this summary." in bare
