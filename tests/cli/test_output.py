"""What a user sees in a pipe or a narrow terminal: whole model names, and progress lines on stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "layerguard.cli"]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # stdout and stderr are pipes: not a terminal, as in `make demo | tee log` or CI
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("columns", ["80", "60"])
def test_models_never_truncates_names(columns):
    env = {**os.environ, "COLUMNS": columns}
    names = [r["name"] for r in json.loads(run("models", "--json", env=env).stdout)]
    proc = run("models", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    for name in names:
        # the whole name inside one table cell, as a user copies it
        assert re.search(rf"│ {re.escape(name)} +│", proc.stdout), proc.stdout
        assert f"{name}: " in proc.stdout  # its description, below a narrow table
    assert max(len(line) for line in proc.stdout.splitlines()) <= int(columns)


def test_models_wide_terminal_keeps_the_description_column():
    proc = run("models", env={**os.environ, "COLUMNS": "160"})
    assert proc.returncode == 0 and "description" in proc.stdout.splitlines()[2]


def test_progress_lines_without_a_terminal(tmp_path: Path, smollm2):
    data = tmp_path / "p.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p}) for p in ["Hello", "How do I bake bread?", "2+2?"]) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "LAYERGUARD_PROGRESS"}
    proc = run(
        "capture", "-m", "smollm2-135m", "-i", str(data), "-o", str(tmp_path / "c"), "--layers", "0",
        "--batch-size", "1", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("capturing:")]
    assert lines, proc.stderr
    # whole lines (no carriage-return redraws) with counts, elapsed<ETA and rate
    assert all("\r" not in x for x in lines)
    assert re.fullmatch(r"capturing: +100% 3/3 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(prompt/s|s/prompt)\]", lines[-1]), lines
    assert "0/3" in lines[0]
    quiet = run(
        "capture", "-m", "smollm2-135m", "-i", str(data), "-o", str(tmp_path / "q"), "--layers", "0",
        env={**env, "LAYERGUARD_PROGRESS": "0"},
    )  # fmt: skip
    assert quiet.returncode == 0 and "capturing" not in quiet.stderr


def test_progress_bar_reports_at_most_every_interval(monkeypatch, capsys):
    from layerguard import progress

    monkeypatch.delenv("LAYERGUARD_PROGRESS", raising=False)
    monkeypatch.setenv("LAYERGUARD_PROGRESS_INTERVAL", "3600")
    with progress.progress_bar(total=50, desc="work", unit="item") as bar:
        for _ in range(50):
            bar.update(1)
    err = capsys.readouterr().err
    # a line when the work starts and one when it ends; the 50 updates inside one interval print nothing
    assert err.splitlines() == [err.splitlines()[0], err.splitlines()[-1]] and len(err.splitlines()) == 2
    assert "0/50" in err.splitlines()[0] and "100% 50/50" in err.splitlines()[1] and "\r" not in err
    monkeypatch.setenv("LAYERGUARD_PROGRESS_INTERVAL", "0")
    with progress.progress_bar(total=4, desc="work") as bar:
        for _ in range(4):
            bar.update(1)
    assert [x.split("%")[0] for x in capsys.readouterr().err.splitlines()][:5] == [
        "work:   0",
        "work:  25",
        "work:  50",
        "work:  75",
        "work: 100",
    ]
    monkeypatch.setenv("LAYERGUARD_PROGRESS", "0")
    assert not progress.progress_enabled() and progress.progress_enabled(True)
