"""Guard configuration: ``guard.yaml``, with ``${VAR}`` / ``${VAR:-default}`` environment interpolation.

Precedence follows the project convention: code defaults, then the YAML file, then the
environment (through interpolation), then CLI flags (applied by the caller).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from layerguard.errors import InvalidInputError
from layerguard.guard.types import SecondOpinion

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
FORMAT_VERSION = 1


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an error."""
    env = dict(os.environ) if env is None else env

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise InvalidInputError(
            f"environment variable {name} is not set (used in the guard config)",
            hint=f"export {name}=... or write ${{{name}:-default}}",
        )

    return _ENV_RE.sub(sub, text)


class RingConfig(BaseModel):
    """One ring's entry: its name, whether it runs, and its parameters."""

    name: str
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)


class ModelRef(BaseModel):
    """The model a guard was built for."""

    name: str
    weights_sha256: str
    template_sha256: str = ""


class GuardConfig(BaseModel):
    """Contents of ``guard.yaml``."""

    layerguard_guard: int = FORMAT_VERSION
    model: ModelRef
    rings: list[RingConfig]
    stop_early: bool = True
    # answer a request the latent ring offers to release with the model's refusal direction ablated
    release: bool = False
    # cascade steps: a ring's block stands only if another ring does not read the request as harmless
    second_opinions: list[SecondOpinion] = Field(default_factory=list)
    build: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, env: dict[str, str] | None = None) -> GuardConfig:
        """Read and validate a guard config.

        Raises:
            InvalidInputError: missing file, YAML syntax error or schema error (with the field).
        """
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"guard config {p} does not exist", hint="build one: layerguard guard build")
        try:
            data = yaml.safe_load(interpolate(p.read_text(), env))
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{p} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"{p} must hold a mapping with 'model' and 'rings'")
        try:
            cfg = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise InvalidInputError(
                f"{p}: {where}: {first['msg']}", hint="compare with a guard.yaml from `guard build`"
            ) from None
        if cfg.layerguard_guard > FORMAT_VERSION:
            raise InvalidInputError(f"{p} has format {cfg.layerguard_guard}; this layerguard reads {FORMAT_VERSION}")
        return cfg

    def save(self, path: str | Path) -> None:
        """Write as YAML."""
        Path(path).write_text(yaml.safe_dump(self.model_dump(), sort_keys=False))
