"""Shared fixtures: the real smollm2-135m model, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the hub
os.environ.setdefault("LAYERGUARD_PROGRESS", "0")


@pytest.fixture(scope="session")
def smollm2():
    """The embedded smollm2-135m, dequantized once into the user cache and reused."""
    from layerguard.models import get_embedded, load_model

    em = get_embedded("smollm2-135m")
    if not em.installed():
        pytest.fail(f"smollm2-135m is required for the tests: {em.pip_command}")
    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from layerguard.models import get_embedded

    return get_embedded("smollm2-135m").part_paths()[0]


@pytest.fixture(scope="session")
def tiny_guard(smollm2, tmp_path_factory) -> Path:
    """A small guard for smollm2 (latent at layers 8/14 + output monitor; no classifier), built once."""
    from layerguard.data.builtin import load_builtin
    from layerguard.guard.build import build_guard

    out = tmp_path_factory.mktemp("tiny-guard")
    build_guard(
        smollm2,
        out,
        harmful=load_builtin("harmful", "train")[:24],
        benign=load_builtin("harmless", "train")[:16] + load_builtin("borderline", "train")[:8],
        layers=[8, 14],
        classifier=False,
        output_monitor=True,
        monitor_prompts=12,
    )
    return out / "guard.yaml"


@pytest.fixture
def tiny_audit_builds(monkeypatch, tmp_path):
    """The audit builds a small smollm2 guard (latent ring at layer 8 on 16 + 16 prompts) into an empty cache.

    Returns the build-arguments function the audit now calls (``audit._guard_build_args``).
    """
    from layerguard.redteam import audit

    monkeypatch.setenv("LAYERGUARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(audit, "_guard_build_args", tiny_build_args)
    return tiny_build_args


def tiny_build_args(batch_size: int = 8, seed: int = 0, output_monitor: bool = False) -> dict:
    """``build_guard`` arguments of a small smollm2 guard: the latent ring at layer 8 on 16 + 16 prompts.

    ``output_monitor`` is accepted for the audit's signature and ignored (no monitor is built).
    """
    from layerguard.data.builtin import load_builtin

    return {
        "harmful": load_builtin("harmful", "train")[:16],
        "benign": load_builtin("harmless", "train")[:16],
        "layers": [8],
        "classifier": False,
        "output_monitor": False,
        "conversation": False,
        "batch_size": batch_size,
        "seed": seed,
    }
