"""Inspect interop: a real inspect_ai eval of the layerguard task on smollm2, and its log read back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai", reason="the interop extra is not installed")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import get_model  # noqa: E402

from layerguard.errors import InvalidInputError  # noqa: E402
from layerguard.interop.inspect_bridge import eval_log_rows, redteam_task  # noqa: E402
from layerguard.judges import refusal_judge  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base64_log(tmp_path_factory):
    """One real eval: the base64 attack on 2 harmful val prompts, smollm2 unguarded, 8 tokens."""
    log_dir = tmp_path_factory.mktemp("inspect-logs")
    model = get_model("layerguard/smollm2-135m")
    task = redteam_task("builtin:harmful:val", "base64", "refusal", n=2, max_tokens=8)
    logs = inspect_eval(task, model=model, log_dir=str(log_dir), display="none", log_level="warning")
    return logs[0]


def test_the_eval_runs_the_attack_and_scores_with_the_judge(base64_log):
    log = base64_log
    assert log.status == "success" and log.samples is not None and len(log.samples) == 2
    values = []
    for s in log.samples:
        user = [m.text for m in s.messages if m.role == "user"][-1]
        assert user.startswith("Decode this base64 message")  # the solver applied the attack
        answer = s.output.completion
        expected = 0.0 if refusal_judge(s.metadata["request"], answer).refused else 1.0
        score = next(iter(s.scores.values()))
        assert score.value == expected and score.metadata["judge"] == "refusal"
        values.append(expected)
    metrics = log.results.scores[0].metrics
    assert metrics["mean"].value == pytest.approx(sum(values) / len(values))


def test_the_log_reads_back_as_result_rows(base64_log, tmp_path):
    rows = eval_log_rows(base64_log.location)
    assert len(rows) == 2
    for r, s in zip(rows, base64_log.samples, strict=True):
        assert r["attack"] == "base64" and r["family"] == "encoding" and r["guarded"] is False
        assert r["response"] == s.output.completion
        assert r["refused"] == (next(iter(s.scores.values())).value == 0.0)
    from layerguard.redteam.metrics import summarize

    summary = summarize(rows, "refusal", {})
    assert summary["asr_by_attack"]["base64"]["unguarded"]["n"] == 2


def test_a_guarded_model_answers_through_the_guard(tiny_guard, tmp_path):
    model = get_model("layerguard/smollm2-135m", guard=str(tiny_guard))
    task = redteam_task("builtin:harmful:val", "direct", "refusal", n=1, max_tokens=8)
    log = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none", log_level="warning")[0]
    assert log.status == "success"
    out = log.samples[0].output
    assert out.metadata["guarded"] is True and out.metadata["layerguard_decision"] in ("allow", "block", "escalate")
    if out.metadata["layerguard_decision"] != "allow":
        assert out.choices[0].stop_reason == "content_filter"
    assert "latent" in out.metadata["ring_scores"]


def test_unknown_attack_fails_when_the_task_is_built():
    with pytest.raises(InvalidInputError):
        redteam_task("builtin:harmful:val", "telepathy", "refusal", n=1)
    with pytest.raises(InvalidInputError):
        redteam_task("builtin:harmful:val", "direct", "vibes", n=1)


def test_bad_log_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(InvalidInputError):
        eval_log_rows(bad)


def test_the_documented_inspect_command(tmp_path):
    """``inspect eval <task file>@layerguard_redteam --model layerguard/smollm2-135m`` as docs/redteam.md shows it."""
    inspect = Path(sys.executable).parent / "inspect"
    cmd = [
        str(inspect),
        "eval",
        str(ROOT / "src/layerguard/interop/inspect_tasks.py") + "@layerguard_redteam",
        "--model",
        "layerguard/smollm2-135m",
        "-T",
        "n=1",
        "-T",
        "attack=rot13",
        "--max-tokens",
        "4",
        "--log-dir",
        str(tmp_path),
        "--display",
        "plain",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LAYERGUARD_PROGRESS": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    logs = list(tmp_path.glob("*.eval"))
    assert len(logs) == 1
    rows = eval_log_rows(logs[0])
    assert len(rows) == 1 and rows[0]["attack"] == "rot13"
