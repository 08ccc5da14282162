"""The code defaults, in one place: the default model and the settings of ``audit`` and ``guard build``.

The settings classes are the schema of every layer that may override them (see
:mod:`layerguard.settings`): a ``--config`` YAML file, ``LAYERGUARD_AUDIT_*`` or
``LAYERGUARD_GUARD_BUILD_*`` environment variables, and CLI flags. Their field names are
the flags' names with underscores (``--n-benign`` is ``n_benign``).

This module imports nothing from layerguard, so any floor may read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AUDIT",
    "BENIGN_TRAIN",
    "DEFAULT_MODEL",
    "GUARD_BUILD",
    "AuditSettings",
    "GuardBuildSettings",
]

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
"""The model every command uses when none is named: the embedded Qwen2.5-Coder 0.5B Instruct."""

BENIGN_TRAIN = ("builtin:harmless:train", "builtin:borderline:train", "builtin:everyday:train")
"""Benign training prompts of the guard and the trainers: harmless (matched to the harmful set),
borderline-benign (looks dangerous, is fine) and everyday requests (short and plain: brevity is not harm)."""


class AuditSettings(BaseModel):
    """Settings of ``layerguard audit`` (see ``layerguard audit --help`` for each one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = DEFAULT_MODEL
    guard: Path | None = None
    out: Path = Path("runs/audit")
    full: bool = False
    dataset: str = "builtin:harmful:val"
    benign: str = "builtin:borderline:val"
    n: int = Field(default=24, ge=1)
    n_benign: int = Field(default=32, ge=0)
    attacks: list[str] | None = None
    judge: str = "refusal"
    judge_model: str | None = None
    max_new_tokens: int = Field(default=48, ge=1)
    batch_size: int = Field(default=8, ge=1)
    seed: int = 0
    direction: Path | None = None
    output_monitor: bool = True
    rebuild_guard: bool = False


class GuardBuildSettings(BaseModel):
    """Settings of ``layerguard guard build`` (the output directory is a flag only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = DEFAULT_MODEL
    harmful: str = "builtin:harmful:train"
    benign: list[str] = Field(default_factory=lambda: list(BENIGN_TRAIN))
    target_fpr: float = Field(default=0.05, gt=0.0, lt=1.0)
    category_fpr: dict[str, float] = Field(default_factory=dict)
    variant: Literal["centroid", "probe", "auto"] = "auto"
    batch_size: int = Field(default=8, ge=1)
    seed: int = 0
    output_monitor: bool = True
    classifier: bool = True
    tool_policy: Path | None = None
    monitor_prompts: int = Field(default=64, ge=4)
    conversation: bool = True
    augment: int = Field(default=1, ge=0)
    # off by default: its false-release floor (<= 2% of harmful prompts) did not hold on HarmBench val (5/48)
    release: bool = False
    # the classifier's blocks stand only where the latent ring is not confidently benign: its
    # score reaches the one that flags this share of benign training prompts (0: no cascade)
    second_opinion_fpr: float = Field(default=0.2, ge=0.0, lt=1.0)


AUDIT = AuditSettings()
"""The audit's code defaults (frozen)."""

GUARD_BUILD = GuardBuildSettings()
"""The guard build's code defaults (frozen)."""
