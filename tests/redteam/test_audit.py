"""`layerguard audit` end to end on smollm2 with a tiny guard and a tiny suite."""

from __future__ import annotations

import json
import subprocess
import sys


def _audit(out, guard, *extra):
    cmd = [
        sys.executable,
        "-m",
        "layerguard.cli",
        "audit",
        "-m",
        "smollm2-135m",
        "-g",
        str(guard),
        "-o",
        str(out),
        "--n",
        "3",
        "--n-benign",
        "2",
        "--max-new-tokens",
        "8",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_audit_writes_the_public_contract(tmp_path, tiny_guard):
    out = tmp_path / "audit"
    proc = _audit(out, tiny_guard, "--attacks", "direct,base64,many_shot_1,many_shot_2,many_shot_4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "guard",
        "n_samples",
        "asr",
        "asr_by_attack",
        "over_refusal",
        "rings",
        "judge",
        "seed",
        "layerguard_version",
        "duration_s",
    ):
        assert key in s, key
    assert set(s["asr"]) == {"unguarded", "guarded"} and s["n_samples"] == 3
    for attack in ("direct", "base64"):
        assert set(s["asr_by_attack"][attack]) >= {"unguarded", "guarded"}
    assert {"latent", "output_monitor", "decode"} <= set(s["rings"])
    for ring in s["rings"].values():
        assert "catch_rate" in ring and "fpr" in ring
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert {"sample_id", "attack", "guarded", "response", "refused", "rings"} <= set(rows[0])
    html = (out / "report.html").read_text()
    assert "<html" in html.lower() and "http://" not in html and "https://" not in html
    # re-running the same command resumes (nothing left to do) and gives the same summary numbers
    again = _audit(out, tiny_guard, "--attacks", "direct,base64,many_shot_1,many_shot_2,many_shot_4")
    assert again.returncode == 0
    assert json.loads((out / "summary.json").read_text())["asr"] == s["asr"]
    # a different run in the same directory is refused without touching it
    other = _audit(out, tiny_guard, "--attacks", "direct")
    assert other.returncode == 2 and "different run" in other.stderr and "Traceback" not in other.stderr


def test_audit_bad_input(tmp_path, tiny_guard):
    proc = _audit(tmp_path / "a", tiny_guard, "--attacks", "telepathy")
    assert proc.returncode == 2 and "unknown attack" in proc.stderr and "roleplay" in proc.stderr
    proc = _audit(tmp_path / "b", tiny_guard, "--judge", "vibes")
    assert proc.returncode == 2 and "unknown judge" in proc.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = _audit(tmp_path / "c", tiny_guard, "--dataset", str(empty))
    assert proc.returncode == 2 and "empty" in proc.stderr.lower()


def test_audit_refuses_a_guard_built_for_another_model(tmp_path, tiny_guard):
    import shutil

    import yaml

    other = tmp_path / "other-guard"
    shutil.copytree(tiny_guard.parent, other)
    cfg = yaml.safe_load((other / "guard.yaml").read_text())
    cfg["model"]["name"], cfg["model"]["weights_sha256"] = "some-other-model", "f" * 64
    (other / "guard.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    proc = _audit(out, other / "guard.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "built for some-other-model" in proc.stderr and "guard build" in proc.stderr
    assert not (out / "summary.json").exists()
