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
