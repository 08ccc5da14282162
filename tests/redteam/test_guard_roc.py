"""ROC curves of a guard evaluation, from eval.json's raw scores (no model needed)."""

from __future__ import annotations

import json
import subprocess
import sys

from layerguard.redteam.guard_roc import roc, roc_curves, write_roc_figure


def _rate(k: int, n: int) -> dict[str, float]:
    return {"rate": k / n, "k": k, "n": n, "lo": 0.0, "hi": 1.0}


def _result() -> dict:
    sets = {
        "harmful_val": {"harmful": True, "n": 4},
        "harmless_val": {"harmful": False, "n": 4},
        "borderline_val": {"harmful": False, "n": 2},
        "harmful_val+w1": {"harmful": True, "n": 2},
        "harmless_val+w1": {"harmful": False, "n": 2},
        "harmful_val+w2": {"harmful": True, "n": 2},
        "borderline_val+w2": {"harmful": False, "n": 2},
    }
    scores = {
        "perfect": {"harmful_val": [0.9, 0.8, 0.7, 0.6], "harmless_val": [0.1, 0.2, 0.3, 0.4],
                    "borderline_val": [0.5, 0.55], "harmful_val+w1": [0.9, 0.2], "harmless_val+w1": [0.1, 0.3],
                    "harmful_val+w2": [0.8, 0.7], "borderline_val+w2": [0.75, 0.0]},
        "release offered": {"harmful_val": [0.0] * 4, "harmless_val": [1.0] * 4},
    }  # fmt: skip
    rates = {"harmful_val": {"tpr": _rate(3, 4)}, "harmless_val": {"fpr": _rate(0, 4)},
             "borderline_val": {"fpr": _rate(1, 2)}, "harmful_val+w1": {"tpr": _rate(1, 2)},
             "harmless_val+w1": {"fpr": _rate(0, 2)}, "harmful_val+w2": {"tpr": _rate(2, 2)},
             "borderline_val+w2": {"fpr": _rate(1, 2)}}  # fmt: skip
    own = {"harmful_val": _rate(2, 4), "harmless_val": _rate(1, 4), "borderline_val": _rate(1, 2)}
    return {"model": "m", "sets": sets, "scores": scores, "systems": {"perfect": {"rates": rates}}, "own_refusal": own}


def test_roc_runs_from_the_origin_to_the_corner_and_is_monotone():
    fpr, tpr = roc([0.9, 0.5, 0.5], [0.5, 0.1])
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert fpr == sorted(fpr) and tpr == sorted(tpr)
    assert (0.0, 1 / 3) in zip(fpr, tpr, strict=True)  # the top threshold flags the 0.9 only


def test_panels_pool_the_right_sets_and_points():
    plain, border, wrapped = roc_curves(_result())
    assert "release offered" not in plain["systems"]  # not a harm score
    assert plain["systems"]["perfect"]["auroc"] == 1.0 and border["systems"]["perfect"]["auroc"] == 1.0
    w = wrapped["systems"]["perfect"]
    assert (w["n_pos"], w["n_neg"]) == (4, 4)  # both wrappers pooled, harmless and borderline negatives
    assert w["auroc"] == (4 + 4 + 3 + 2) / 16  # pairs ranked right: 0.9 and 0.8 > all, 0.7 > 3, 0.2 > 2
    assert w["point"] == {"tpr": 3 / 4, "fpr": 1 / 4, "n_pos": 4, "n_neg": 4}
    # the model's own refusal: harmless_val counts as benign although its name starts with "harm"
    assert plain["own_refusal"] == {"tpr": 0.5, "fpr": 0.25, "n_pos": 4, "n_neg": 4}
    assert border["own_refusal"]["fpr"] == 0.5 and wrapped["own_refusal"] is None


def test_figure_is_written_and_the_cli_rejects_bad_input(tmp_path):
    png = write_roc_figure(_result(), tmp_path / "roc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "eval.json").write_text(json.dumps(_result()))
    run = [sys.executable, "-m", "layerguard.cli", "guard", "roc"]
    ok = subprocess.run(
        [*run, str(tmp_path / "eval.json"), "-o", str(tmp_path / "b.png")], capture_output=True, text=True
    )
    assert ok.returncode == 0 and (tmp_path / "b.png").exists(), ok.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = subprocess.run([*run, str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "error:" in bad.stderr and "hint:" in bad.stderr
    assert "Traceback" not in bad.stderr
