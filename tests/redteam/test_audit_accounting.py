"""`layerguard audit` off a terminal: progress lines, the time of every stage, the guard cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys


def test_audit_without_a_terminal_shows_progress_and_accounts_for_its_time(tmp_path, tiny_guard):
    out = tmp_path / "audit"
    env = {k: v for k, v in os.environ.items() if k != "LAYERGUARD_PROGRESS"}  # the default: progress on
    env["LAYERGUARD_PROGRESS_INTERVAL"] = "0"
    cmd = [
        sys.executable, "-m", "layerguard.cli", "audit", "-m", "smollm2-135m", "-g", str(tiny_guard), "-o", str(out),
        "--n", "2", "--n-benign", "1", "--max-new-tokens", "4", "--batch-size", "2", "--attacks", "direct,base64",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr.splitlines()
    assert all("\r" not in x for x in err)  # whole lines in a pipe, no redraws
    # the red-team cells (2 attacks x 2 harmful + 1 benign) with counts, elapsed<ETA and rate
    red = [x for x in err if x.startswith("red team:")]
    assert red and "0/5" in red[0], err
    assert re.fullmatch(r"red team: +100% 5/5 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(cell/s|s/cell)\]", red[-1]), red
    turns = [x for x in err if x.startswith("multi-turn:")]
    assert turns and re.match(r"multi-turn: +100% (\d+)/\1 \[", turns[-1]), turns
    # the stage table printed at the end
    table_at = next(i for i, x in enumerate(err) if x.startswith("where the time went"))
    table = err[table_at:]
    assert any(x.startswith("model load") for x in table) and any(x.startswith("total (wall clock)") for x in table)

    s = json.loads((out / "summary.json").read_text())
    stages = {st["stage"]: st for st in s["timing"]["stages"]}
    for name in (
        "setup",
        "model load",
        "guard load",
        "refusal tokens",
        "generation",
        "generation/direct",
        "generation/base64",
        "guard (states + rings)/direct",
        "judges/refusal + rubric",
        "run store",
        "multi-turn",
        "multi-turn/turn 1",
        "summary",
        "report",
    ):
        assert name in stages, (name, list(stages))
    assert stages["generation"]["count"] == 5  # answers: 2 attacks x 2 harmful + 1 benign
    assert stages["generation/direct"]["count"] == 3 and stages["generation/base64"]["count"] == 2  # benign run direct
    parts = sum(v["seconds"] for k, v in stages.items() if k.startswith("generation/"))
    assert abs(parts - stages["generation"]["seconds"]) < 0.05  # a stage is the sum of its parts
    top = sum(v["seconds"] for k, v in stages.items() if "/" not in k)
    assert abs(top - s["timing"]["accounted_s"]) < 0.05 and top <= s["timing"]["total_s"] + 0.01
    assert s["duration_s"] == s["timing"]["total_s"] and s["guard_cache"] == {"status": "given"}
    assert s["precision"]["asr_per_attack"]["n"] == 2 and s["precision"]["over_refusal"]["n"] == 1
    html = (out / "report.html").read_text()
    assert 'id="timing"' in html and "Where the time went" in html and "generation" in html
    assert 'id="precision"' in html and "smallest difference detected" in html


def test_audit_takes_its_guard_from_the_cache(tmp_path, smollm2, tiny_audit_builds):
    from layerguard.redteam import audit

    kw = {"n_samples": 2, "n_benign": 1, "attacks": ["direct"], "max_new_tokens": 4, "progress": False}
    first = audit.run_audit("smollm2-135m", tmp_path / "a", **kw)
    second = audit.run_audit("smollm2-135m", tmp_path / "b", **kw)
    assert first["guard_cache"]["status"] == "miss" and first["guard_cache"]["reason"] == "no entry"
    assert second["guard_cache"]["status"] == "hit" and second["guard_cache"]["key"] == first["guard_cache"]["key"]
    t1 = {st["stage"]: st["seconds"] for st in first["timing"]["stages"]}
    t2 = {st["stage"]: st["seconds"] for st in second["timing"]["stages"]}
    assert any(k.startswith("guard build/reading") for k in t1), list(t1)  # the build's steps, from its log
    assert t2["guard build"] < t1["guard build"]
    # each run keeps a copy of the guard it measured; the same guard gives the same cells
    assert (tmp_path / "b" / "guard" / "guard.yaml").read_bytes() == (
        tmp_path / "a" / "guard" / "guard.yaml"
    ).read_bytes()
    assert first["asr"] == second["asr"]
    # resuming a run uses its own copy, not the cache
    again = audit.run_audit("smollm2-135m", tmp_path / "b", **kw)
    assert again["guard_cache"] == {"status": "resumed"} and again["asr"] == second["asr"]


def test_rebuild_guard_flag_reaches_the_settings():
    proc = subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "audit", "--rebuild-guard", "--show-config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rebuild_guard"] is True
