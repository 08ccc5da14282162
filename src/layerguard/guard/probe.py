"""A small logistic-regression probe in torch (no scikit-learn dependency).

Used by the latent ring (probe variant), the classifier ring's sigmoid head and the
output monitor. Features are standardized with statistics stored in the probe, so a
saved probe is self-contained. On disk a probe is the shared artefact format
(:mod:`layerguard.guard.artefacts`), alone or nested under a prefix in another artefact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.guard.artefacts import load_tensors, nest, reading, save_tensors, unnest

KIND = "logistic_probe"


@dataclass
class LogisticProbe:
    """``p = sigmoid(w . ((x - mean) / std) + b)``; ``w`` ``[d]``, mean/std ``[d]``."""

    w: Any
    b: float
    mean: Any
    std: Any

    def logits(self, x: Any) -> Any:
        """Raw logits for features ``[n, d]`` (or ``[d]``)."""
        return ((x.float() - self.mean) / self.std) @ self.w + self.b

    def predict(self, x: Any) -> Any:
        """Probabilities in [0, 1]."""
        import torch

        return torch.sigmoid(self.logits(x))

    @classmethod
    def fit(cls, x: Any, y: Any, l2: float = 1e-2, max_iter: int = 200, sample_weight: Any = None) -> LogisticProbe:
        """Fit by L-BFGS on standardized features.

        Args:
            x: Features ``[n, d]``.
            y: Labels ``[n]`` in {0, 1}.
            l2: Ridge penalty on ``w`` (per feature, after standardization).
            max_iter: L-BFGS iterations.
            sample_weight: Optional ``[n]`` weights (e.g. to balance classes).

        Raises:
            InvalidInputError: with fewer than 2 examples of either class.
        """
        import torch

        x = x.float()
        y = torch.as_tensor(y, dtype=torch.float32)
        n_pos, n_neg = int(y.sum()), int((1 - y).sum())
        if n_pos < 2 or n_neg < 2:
            raise InvalidInputError(f"a probe needs >= 2 examples per class, got {n_pos} positive / {n_neg} negative")
        mean = x.mean(0)
        std = x.std(0).clamp(min=1e-6)
        z = (x - mean) / std
        if sample_weight is None:
            sample_weight = torch.where(y > 0.5, 0.5 / n_pos, 0.5 / n_neg) * len(y)
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> Any:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y, weight=sample_weight)
            loss = loss + l2 * (w * w).sum() / 2
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        return cls(w.detach(), float(b.detach()), mean, std)

    def state(self) -> dict[str, Any]:
        """Tensors ``w``, ``b``, ``mean``, ``std`` (for safetensors)."""
        import torch

        return {"w": self.w, "b": torch.tensor([self.b]), "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogisticProbe:
        """Rebuild from :meth:`state`."""
        return cls(state["w"], float(state["b"][0]), state["mean"], state["std"])

    def tensors(self, prefix: str = "probe") -> dict[str, Any]:
        """:meth:`state` nested under ``prefix`` (``probe.w``, ...), to store beside other tensors."""
        return nest(prefix, self.state())

    @classmethod
    def from_tensors(cls, tensors: dict[str, Any], prefix: str = "probe") -> LogisticProbe:
        """Rebuild from :meth:`tensors` (``KeyError`` when an entry is missing)."""
        return cls.from_state(unnest(prefix, tensors))

    def save(self, directory: Path, stem: str = "probe", provenance: dict[str, Any] | None = None) -> Path:
        """Write ``stem.safetensors`` + ``stem.json`` (kind ``logistic_probe``); returns the JSON path."""
        return save_tensors(directory, stem, KIND, self.tensors(), {"d": int(self.w.shape[0])}, provenance)

    @classmethod
    def load(cls, directory: Path, stem: str = "probe") -> LogisticProbe:
        """Read a probe written by :meth:`save`.

        Raises:
            InvalidInputError: the files are missing, of another kind or corrupt.
        """
        hint = "save one with LogisticProbe.save(directory)"
        art = load_tensors(directory, stem, KIND, what="logistic probe", hint=hint)
        with reading("logistic probe", directory, hint):
            return cls.from_tensors(art.tensors)
