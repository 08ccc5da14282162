"""Settings layering: code defaults < --config YAML < LAYERGUARD_<COMMAND>_* environment < CLI flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layerguard.defaults import AUDIT, DEFAULT_MODEL, GUARD_BUILD, AuditSettings, GuardBuildSettings
from layerguard.errors import InvalidInputError
from layerguard.settings import env_layer, flag_layer, layered, yaml_layer

CLI = [sys.executable, "-m", "layerguard.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LAYERGUARD_AUDIT_", "LAYERGUARD_GUARD_BUILD_"))}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env={**clean, **(env or {})})


def test_code_defaults_are_one_source():
    from layerguard.models import DEFAULT_MODEL as models_default
    from layerguard.redteam.audit import run_audit

    assert models_default == DEFAULT_MODEL == AUDIT.model == GUARD_BUILD.model
    import inspect

    params = inspect.signature(run_audit).parameters
    assert params["n_samples"].default == AUDIT.n and params["n_benign"].default == AUDIT.n_benign
    assert params["max_new_tokens"].default == AUDIT.max_new_tokens and params["dataset"].default == AUDIT.dataset


def test_each_layer_overrides_the_one_before(tmp_path: Path):
    f = tmp_path / "lg.yaml"
    f.write_text("audit:\n  n: 5\n  seed: 3\n  judge: harm\n  attacks: [direct, dan]\nguard_build:\n  seed: 7\n")
    env = {"LAYERGUARD_AUDIT_SEED": "4", "LAYERGUARD_AUDIT_JUDGE": "llm", "LAYERGUARD_AUDIT_DIRECTION": "d.st"}
    s = layered(
        AuditSettings,
        yaml_layer(f, "audit"),
        env_layer(AuditSettings, "LAYERGUARD_AUDIT_", env),
        flag_layer({"judge": "refusal"}),
    )
    assert (s.n, s.seed, s.judge, s.attacks, s.direction) == (5, 4, "refusal", ["direct", "dan"], Path("d.st"))
    assert s.n_benign == AUDIT.n_benign  # untouched by every layer: the code default
    g = layered(GuardBuildSettings, yaml_layer(f, "guard_build"))
    assert g.seed == 7 and g.target_fpr == GUARD_BUILD.target_fpr
    # a file without sections holds the settings at its top level; env lists and mappings are comma-separated
    f.write_text("target_fpr: 0.02\nbenign: [a]\n")
    env = {"LAYERGUARD_GUARD_BUILD_BENIGN": "x, y", "LAYERGUARD_GUARD_BUILD_CATEGORY_FPR": "S1=0.1,S2=0.2"}
    g = layered(
        GuardBuildSettings, yaml_layer(f, "guard_build"), env_layer(GuardBuildSettings, "LAYERGUARD_GUARD_BUILD_", env)
    )
    assert g.target_fpr == 0.02 and g.benign == ["x", "y"] and g.category_fpr == {"S1": 0.1, "S2": 0.2}


@pytest.mark.parametrize(
    "text, env, needles",
    [
        ("audit:\n  nn: 5\n", {}, ["lg.yaml: audit.nn: unknown setting", "known settings: model"]),
        ("audit:\n  n: lots\n", {}, ["lg.yaml: audit.n:", "integer"]),
        ("n: 0\n", {}, ["lg.yaml: n:", "greater than or equal to 1"]),
        ("- a\n- b\n", {}, ["must hold a mapping of audit settings"]),
        ("audit: [\n", {}, ["not valid YAML"]),
        ("", {"LAYERGUARD_AUDIT_N": "many"}, ["environment variable LAYERGUARD_AUDIT_N:", "integer"]),
        ("", {"LAYERGUARD_AUDIT_SEEED": "1"}, ["LAYERGUARD_AUDIT_SEEED names no setting"]),
    ],
)
def test_bad_settings_name_their_source(tmp_path: Path, text, env, needles):
    f = tmp_path / "lg.yaml"
    f.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        layered(AuditSettings, yaml_layer(f, "audit"), env_layer(AuditSettings, "LAYERGUARD_AUDIT_", env))
    message = f"{info.value.message} {info.value.hint}"
    for n in needles:
        assert n in message, message


def test_audit_cli_layers_file_env_and_flags(tmp_path: Path):
    f = tmp_path / "audit.yaml"
    f.write_text("audit:\n  n: 5\n  seed: 3\n  max_new_tokens: 16\n  model: smollm2-135m\n")
    proc = run(
        "audit",
        "--config",
        str(f),
        "--show-config",
        "--seed",
        "9",
        env={"LAYERGUARD_AUDIT_SEED": "4", "LAYERGUARD_AUDIT_N": "6"},
    )
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    # file sets max_new_tokens and model; env overrides the file's n and seed; the flag overrides both seeds
    assert (s["max_new_tokens"], s["model"], s["n"], s["seed"]) == (16, "smollm2-135m", 6, 9)
    assert s["n_benign"] == AUDIT.n_benign
    proc = run("audit", "--show-config", "--attacks", "direct, dan")
    assert json.loads(proc.stdout)["attacks"] == ["direct", "dan"]


def test_guard_build_cli_layers(tmp_path: Path):
    f = tmp_path / "g.yaml"
    f.write_text("guard_build:\n  target_fpr: 0.02\n  classifier: false\n  seed: 1\n")
    proc = run(
        "guard",
        "build",
        "-o",
        str(tmp_path / "g"),
        "-c",
        str(f),
        "--show-config",
        "--seed",
        "5",
        env={"LAYERGUARD_GUARD_BUILD_TARGET_FPR": "0.03", "LAYERGUARD_GUARD_BUILD_SEED": "2"},
    )
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert (s["target_fpr"], s["classifier"], s["seed"], s["model"]) == (0.03, False, 5, DEFAULT_MODEL)
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize(
    "args, env, needles",
    [
        (["audit", "-c", "{f}", "--show-config"], {}, ["error: {f}: audit.n_bengin: unknown setting", "hint: known"]),
        (
            ["audit", "--show-config"],
            {"LAYERGUARD_AUDIT_N_BENIGN": "-3"},
            ["error: environment variable LAYERGUARD_AUDIT_N_BENIGN"],
        ),
        (
            ["guard", "build", "-o", "x", "--show-config"],
            {"LAYERGUARD_GUARD_BUILD_VARIANT": "best"},
            ["'centroid', 'probe' or 'auto'"],
        ),
        (["audit", "--config", "{f}.missing", "--show-config"], {}, ["{f}.missing does not exist"]),
    ],
)
def test_cli_bad_settings_exit_2_without_traceback(tmp_path: Path, args, env, needles):
    f = tmp_path / "bad.yaml"
    f.write_text("audit:\n  n_benign: 1\n  n_bengin: 2\n")
    proc = run(*[a.replace("{f}", str(f)) for a in args], env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n.replace("{f}", str(f)) in proc.stderr, proc.stderr


def test_service_settings_use_the_same_layering(tmp_path: Path):
    pytest.importorskip("sqlalchemy")
    from layerguard.service.config import ServiceConfig

    f = tmp_path / "service.yaml"
    f.write_text("service:\n  port: 9001\n  host: 0.0.0.0\n  max_tokens_default: 64\n")
    cfg = ServiceConfig.resolve(
        f, {"port": 9003}, env={"LAYERGUARD_SERVE_PORT": "9002", "LAYERGUARD_SERVE_HOST": "::1"}
    )
    assert (cfg.port, cfg.host, cfg.max_tokens_default) == (9003, "::1", 64)
    assert ServiceConfig.resolve(f, {}, env={"LAYERGUARD_SERVE_PORT": "9002"}).port == 9002
    with pytest.raises(InvalidInputError, match="LAYERGUARD_SERVE_PORT"):
        ServiceConfig.resolve(f, {}, env={"LAYERGUARD_SERVE_PORT": "70000"})
    with pytest.raises(InvalidInputError, match="--port"):
        ServiceConfig.resolve(f, {"port": -1}, env={})
