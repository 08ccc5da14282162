"""The classifier ring's model: a logistic head on frozen sentence embeddings, its training and files.

:func:`train_classifier` fits a logistic head ``sigmoid(w . h(x) + b)`` on frozen
all-MiniLM-L6-v2 embeddings ``h(x)`` of the constitution's examples plus labelled prompt
sets, and calibrates its threshold to a target false-positive rate on the benign training
prompts. Categories are assigned by cosine to per-category centroids of the positive
embeddings. :class:`ClassifierModel` holds the result and reads and writes it
(the shared artefact format of :mod:`layerguard.guard.artefacts`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from layerguard.data.loaders import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.guard.artefacts import load_tensors, nest, reading, save_tensors
from layerguard.guard.calibration import rates, threshold_for_fpr
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.constitution import Constitution

STEM = "classifier"
KIND = "classifier"
MODEL_TENSORS = f"{STEM}.safetensors"
MODEL_META = f"{STEM}.json"

DEFAULT_L2 = 1e-1
DEFAULT_FOLDS = 5

Calibration = Literal["cv", "train"]


class TextEncoder(Protocol):
    """What the classifier needs from an encoder: a name and ``encode(texts) -> [n, d]`` tensor."""

    name: str

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """Embeddings ``[n, d]`` for texts."""
        ...


def _auroc(pos: Sequence[float], neg: Sequence[float]) -> float:
    from layerguard.stats import auroc

    return auroc(list(pos), list(neg))


@dataclass
class ClassifierModel:
    """The fitted artefacts of the classifier ring.

    Attributes:
        probe: Logistic head on the encoder's embeddings (probability of a policy violation).
        threshold: Scores at or above it are flagged; calibrated to ``target_fpr``.
        category_centroids: Category name -> unit ``[d]`` centroid of its positive embeddings.
        encoder_name: The encoder the head was trained on (must match at inference).
        constitution_sha256: Digest of the constitution used for training.
        target_fpr: The false-positive rate the threshold was calibrated to.
        stats: Training statistics (counts, train AUROC, train TPR/FPR at the threshold).
        provenance: What else identifies the training data (``data_sha256`` of the prompts).
    """

    probe: LogisticProbe
    threshold: float
    category_centroids: dict[str, Any]
    encoder_name: str
    constitution_sha256: str
    target_fpr: float = 0.05
    stats: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def score_embeddings(self, x: Any) -> Any:
        """Probability of a policy violation ``[n]`` for embeddings ``[n, d]``."""
        return self.probe.predict(x).clamp(0.0, 1.0)

    def category_similarity(self, x: Any) -> Any:
        """Cosine ``[n, n_categories]`` of each embedding with each category centroid."""
        import torch

        if not self.category_centroids:
            return torch.zeros((x.shape[0], 0))
        cents = torch.stack(list(self.category_centroids.values())).float()
        return torch.nn.functional.normalize(x.float(), dim=-1) @ cents.T

    def save(self, directory: str | Path) -> None:
        """Write ``classifier.safetensors`` (head and centroids) and ``classifier.json`` (the rest)."""
        tensors = self.probe.tensors("probe")
        tensors.update(nest("category", self.category_centroids))
        meta = {
            "threshold": self.threshold,
            "target_fpr": self.target_fpr,
            "categories": list(self.category_centroids),
            "encoder": self.encoder_name,
            "constitution_sha256": self.constitution_sha256,
            "stats": self.stats,
        }
        provenance = {"encoder": self.encoder_name, "constitution_sha256": self.constitution_sha256}
        save_tensors(directory, STEM, KIND, tensors, meta, {**provenance, **self.provenance})

    @classmethod
    def load(cls, directory: str | Path) -> ClassifierModel:
        """Read what :meth:`save` wrote (or the classifier's format-1 files, which have the same layout).

        Raises:
            InvalidInputError: the folder holds no classifier, or its files are unreadable or
                inconsistent (then also a CorruptModelError).
        """
        hint = "train one with layerguard.guard.rings.classifier.train_classifier(...).save(dir)"
        art = load_tensors(directory, STEM, KIND, what="classifier", hint=hint)
        with reading("classifier", directory, hint):
            meta = art.meta
            return cls(
                probe=LogisticProbe.from_tensors(art.tensors, "probe"),
                threshold=float(meta["threshold"]),
                category_centroids={c: art.tensors[f"category.{c}"] for c in meta["categories"]},
                encoder_name=str(meta["encoder"]),
                constitution_sha256=str(meta["constitution_sha256"]),
                target_fpr=float(meta.get("target_fpr", math.nan)),
                stats=dict(meta.get("stats", {})),
                provenance={k: v for k, v in art.provenance.items() if k not in ("encoder", "constitution_sha256")},
            )


def _out_of_fold_scores(x: Any, y: Any, l2: float, folds: int, seed: int) -> list[float]:
    """Score of every example from a head fitted without its (class-stratified) fold."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(y), dtype=torch.long)
    for label in (0.0, 1.0):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        fold[idx] = torch.arange(len(idx)) % folds
    out = torch.empty(len(y))
    for k in range(folds):
        test = fold == k
        if not bool(test.any()):
            continue
        head = LogisticProbe.fit(x[~test], y[~test], l2=l2)
        out[test] = head.predict(x[test]).clamp(0.0, 1.0)
    return [float(v) for v in out.tolist()]


def _encoder_or_default(encoder: TextEncoder | None) -> TextEncoder:
    if encoder is not None:
        return encoder
    from layerguard.guard.encoders import default_encoder

    return default_encoder()


def train_classifier(
    constitution: Constitution,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    *,
    encoder: TextEncoder | None = None,
    target_fpr: float = 0.05,
    l2: float = DEFAULT_L2,
    calibration: Calibration = "cv",
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> ClassifierModel:
    """Fit the constitutional classifier: a logistic head on frozen embeddings.

    Training examples are the constitution's ``disallowed`` (positive) and ``allowed``
    (negative) examples plus the given samples (``harmful`` positive; ``benign``, i.e.
    harmless and borderline prompts, negative). Category centroids are the normalized mean
    embeddings of the positives of each constitution category (harmful samples whose
    category is not in the constitution train the head but no centroid).

    The threshold is the smallest one whose false-positive rate on the benign training
    examples is at most ``target_fpr``. With ``calibration="cv"`` (default) those benign
    scores are out-of-fold: each comes from a head fitted on the other ``folds - 1`` folds,
    so the threshold reflects how the head scores prompts it has not seen. With
    ``calibration="train"`` the final head's own (in-sample) scores are used; they are
    overconfident, and the FPR on unseen prompts is then several times the target.

    Args:
        constitution: The principles and examples.
        harmful: Harmful training prompts.
        benign: Harmless and borderline training prompts.
        encoder: Sentence encoder (default: the shared all-MiniLM-L6-v2).
        target_fpr: False-positive rate to calibrate the threshold to.
        l2: Ridge penalty of the logistic head (on standardized features).
        calibration: ``"cv"`` (out-of-fold benign scores) or ``"train"`` (in-sample scores).
        folds: Number of folds for ``calibration="cv"`` (>= 2).
        seed: Seed of the fold assignment.

    Returns:
        The fitted model.

    Raises:
        InvalidInputError: a sample is held out for evaluation, or too few examples per class.
    """
    import torch

    from layerguard.directions.extract import data_hash

    t0 = time.perf_counter()
    _check_calibration(calibration, folds)
    assert_not_held_out([*harmful, *benign], "classifier training")
    enc = _encoder_or_default(encoder)
    c_texts, c_labels, c_cats = constitution.examples()
    texts = [*c_texts, *(s.prompt for s in harmful), *(s.prompt for s in benign)]
    labels = [*c_labels, *([1] * len(harmful)), *([0] * len(benign))]
    cats = [*c_cats, *(s.category for s in harmful), *(s.category for s in benign)]
    x = enc.encode(texts).float()
    y = torch.tensor(labels, dtype=torch.float32)
    probe = LogisticProbe.fit(x, y, l2=l2)
    centroids = _category_centroids(x, labels, cats, list(constitution.categories))

    scores = probe.predict(x).clamp(0.0, 1.0).tolist()
    cal_scores = _out_of_fold_scores(x, y, l2, folds, seed) if calibration == "cv" else scores
    threshold = threshold_for_fpr([s for s, lab in zip(cal_scores, labels, strict=True) if lab == 0], target_fpr)
    stats = _training_stats(
        labels,
        cats,
        c_labels,
        harmful,
        benign,
        centroids,
        cal_scores=cal_scores,
        scores=scores,
        threshold=threshold,
    )
    stats.update(
        {
            "l2": l2,
            "calibration": calibration,
            "folds": folds if calibration == "cv" else 0,
            "seed": seed,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    )
    return ClassifierModel(
        probe=probe,
        threshold=float(threshold),
        category_centroids=centroids,
        encoder_name=str(getattr(enc, "name", type(enc).__name__)),
        constitution_sha256=constitution.sha256,
        target_fpr=target_fpr,
        stats=stats,
        provenance={"data_sha256": data_hash(harmful, benign)},
    )


def _check_calibration(calibration: str, folds: int) -> None:
    if calibration not in ("cv", "train"):
        raise InvalidInputError(f"calibration must be 'cv' or 'train', got {calibration!r}")
    if calibration == "cv" and folds < 2:
        raise InvalidInputError(f"cross-validated calibration needs folds >= 2, got {folds}")


def _category_centroids(
    x: Any, labels: Sequence[int], cats: Sequence[str | None], names: Sequence[str]
) -> dict[str, Any]:
    """Category name -> unit mean ``[d]`` of the normalized positive embeddings ``x`` ``[n, d]`` of that category."""
    import torch

    centroids: dict[str, Any] = {}
    xn = torch.nn.functional.normalize(x, dim=-1)
    for name in names:
        idx = [i for i, (lab, c) in enumerate(zip(labels, cats, strict=True)) if lab == 1 and c == name]
        if idx:
            centroids[name] = torch.nn.functional.normalize(xn[idx].mean(0), dim=-1).contiguous()
    return centroids


def _training_stats(
    labels: Sequence[int],
    cats: Sequence[str | None],
    c_labels: Sequence[int],
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    centroids: Mapping[str, Any],
    *,
    cal_scores: Sequence[float],
    scores: Sequence[float],
    threshold: float,
) -> dict[str, Any]:
    """Example counts, and AUROC/TPR/FPR at the threshold on the calibration and the in-sample scores."""
    n_const = len(c_labels)
    pos = [s for s, lab in zip(cal_scores, labels, strict=True) if lab == 1]
    neg = [s for s, lab in zip(cal_scores, labels, strict=True) if lab == 0]
    r = rates(pos, neg, threshold)
    sample_pos = cal_scores[n_const : n_const + len(harmful)]
    sample_neg = cal_scores[n_const + len(harmful) :]
    in_pos = [s for s, lab in zip(scores, labels, strict=True) if lab == 1]
    in_neg = [s for s, lab in zip(scores, labels, strict=True) if lab == 0]
    return {
        "n_positive": len(pos),
        "n_negative": len(neg),
        "n_constitution_positive": sum(c_labels),
        "n_constitution_negative": len(c_labels) - sum(c_labels),
        "n_harmful_samples": len(harmful),
        "n_benign_samples": len(benign),
        "positives_without_centroid": sum(
            1 for lab, c in zip(labels, cats, strict=True) if lab == 1 and c not in centroids
        ),
        "sources": dict(sorted(Counter(s.source or "?" for s in [*harmful, *benign]).items())),
        # on the calibration scores (out-of-fold with calibration="cv")
        "calibration_auroc": _auroc(pos, neg),
        "calibration_tpr": r["tpr"],
        "calibration_fpr": r["fpr"],
        "calibration_samples_tpr": rates(sample_pos, sample_neg, threshold)["tpr"] if sample_pos else math.nan,
        "calibration_samples_fpr": rates(sample_pos, sample_neg, threshold)["fpr"] if sample_neg else math.nan,
        # the final head's in-sample scores at the same threshold
        "train_auroc": _auroc(in_pos, in_neg),
        "train_tpr": rates(in_pos, in_neg, threshold)["tpr"],
        "train_fpr": rates(in_pos, in_neg, threshold)["fpr"],
    }
