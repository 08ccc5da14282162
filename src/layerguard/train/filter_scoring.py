"""Batched scoring for the corpus filter: the text rings' judgement of many documents at once.

Holds :class:`DocScore` (one document's scores), the :class:`DocumentScorer` protocol that
:func:`~layerguard.train.filter.filter_corpus` scores with, :class:`GuardScorer` (a guard's text
rings over a batch, one encoder call per batch), and the loaders: :func:`default_classifier`
(the packaged constitution's classifier, trained once and cached), :func:`guard_id_for` and
:func:`load_scorer`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from layerguard.defaults import BENIGN_TRAIN
from layerguard.errors import InvalidInputError

__all__ = [
    "DEFAULT_TRAIN_SETS",
    "DocScore",
    "DocumentScorer",
    "GuardScorer",
    "default_classifier",
    "guard_id_for",
    "load_scorer",
]

DEFAULT_TRAIN_SETS = ("builtin:harmful:train", *BENIGN_TRAIN)


@dataclass(frozen=True)
class DocScore:
    """The text rings' judgement of one document.

    Attributes:
        score: The classifier's violation probability (maximum over the text, its decoded
            variants and, for a long text, its windows); 0 for blank text.
        category: The hazard category nearest to the highest-scoring piece (or the category
            of another ring that flagged it).
        rings: Ring name -> score.
        vetoes: Rings other than the classifier and the decode ring that decided to block
            (a document they flag is dropped whatever its classifier score).
    """

    score: float
    category: str | None
    rings: dict[str, float]
    vetoes: tuple[str, ...] = ()


class DocumentScorer(Protocol):
    """What :func:`filter_corpus` needs: an id, a default threshold, and batched scoring."""

    guard_id: str
    threshold: float
    rings: list[str]
    unavailable: list[str]

    def score(self, texts: Sequence[str]) -> list[DocScore]:
        """One :class:`DocScore` per text, in order."""
        ...


class GuardScorer:
    """Scores many documents at once with a guard's text rings, through :class:`GuardedModel`.

    Each document is judged as ``GuardedModel.score_many`` judges a request: the rings run in
    the guard's order over the whole batch, and a ring that judges batches (the classifier
    embeds the pieces of *all* documents of a batch in one encoder call) does so once. The
    ``score_ring``'s score is the document's score, thresholded by the filter (the
    ``--threshold`` applies to it); any other ring that decides to stop a document vetoes it.

    Args:
        guarded: The guard (text-only: rings that read model states are unavailable).
        guard_id: Recorded in the outputs and the summary.
        score_ring: The ring whose score the filter thresholds.

    Raises:
        InvalidInputError: the guard has no ring named ``score_ring``, or it has no threshold.
    """

    def __init__(self, guarded: Any, guard_id: str, *, score_ring: str = "classifier") -> None:
        rings = {r.name: r for r in guarded.guard.at("input")}
        primary = rings.get(score_ring)
        threshold = getattr(getattr(primary, "model", None), "threshold", None)
        if primary is None or threshold is None:
            raise InvalidInputError(
                f"guard {guard_id} has no {score_ring} ring with a calibrated threshold to score documents with",
                hint="build the guard with --classifier, or leave out --guard to use the built-in classifier",
            )
        self.guarded = guarded
        self.score_ring = score_ring
        self.guard_id = guard_id
        self.threshold = float(threshold)
        self.rings = [r.name for r in guarded.guard.at("input")]
        self.unavailable = list(guarded.guard.unavailable)

    def score(self, texts: Sequence[str]) -> list[DocScore]:
        """Score a batch of documents (see the class docstring)."""
        from layerguard.guard.types import Exchange

        outcomes = self.guarded.score_many([Exchange.from_prompt(t) for t in texts], [None] * len(texts))
        out: list[DocScore] = []
        for o in outcomes:
            by_ring = {v.ring: v for v in o.verdict.rings}
            primary = by_ring[self.score_ring]
            score = min(1.0, max(0.0, float(primary.score)))
            category = primary.category
            if category is None:
                sims = primary.category_scores
                category = max(sims, key=lambda k: sims[k]) if sims else None
            vetoes = tuple(n for n, v in by_ring.items() if n != self.score_ring and v.decision != "allow")
            if score < self.threshold and vetoes:
                category = by_ring[vetoes[0]].category or category
            out.append(DocScore(score, category, {n: float(v.score) for n, v in by_ring.items()}, vetoes))
        return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()


def _training_key(constitution_sha: str, train_sets: Sequence[str], target_fpr: float, encoder: str) -> str:
    from layerguard.data.loaders import load_dataset

    h = hashlib.sha256()
    h.update(json.dumps([constitution_sha, list(train_sets), target_fpr, encoder, "cv", 0]).encode())
    for spec in train_sets:
        for s in load_dataset(spec):
            h.update(f"{spec}\x00{s.id}\x00{s.prompt}\x00{s.category}\n".encode())
    return h.hexdigest()


def default_classifier(
    cache_dir: str | Path | None = None,
    *,
    target_fpr: float = 0.05,
    train_sets: Sequence[str] = DEFAULT_TRAIN_SETS,
    log: Callable[[str], None] = lambda m: None,
) -> tuple[Any, str]:
    """The packaged constitution's classifier, trained on the builtin train sets once and cached.

    The cache entry is keyed by the constitution's digest, the training prompts, the target
    FPR and the encoder, so a change of any of them trains a new one.

    Args:
        cache_dir: Cache root (default ``$LAYERGUARD_CACHE_DIR`` or ``~/.cache/layerguard``).
        target_fpr: False-positive rate its threshold is calibrated to (on benign train prompts, out of fold).
        train_sets: Dataset specs: the first is harmful, the others benign.
        log: Receives progress messages.

    Returns:
        ``(ClassifierModel, cache key)``.
    """
    from layerguard.guard.encoders import SentenceEncoder
    from layerguard.guard.rings.classifier import ClassifierModel, Constitution, train_classifier
    from layerguard.models.cache import cache_root

    const = Constitution.load(None)
    key = _training_key(const.sha256, train_sets, target_fpr, SentenceEncoder.name)
    folder = cache_root(cache_dir) / "filter-classifier" / key[:16]
    if (folder / "classifier.json").is_file():
        return ClassifierModel.load(folder), key
    from layerguard.data.loaders import load_dataset

    log(f"training the built-in classifier on {', '.join(train_sets)} (once; cached in {folder})")
    model = train_classifier(
        const,
        load_dataset(train_sets[0]),
        [s for spec in train_sets[1:] for s in load_dataset(spec)],
        target_fpr=target_fpr,
    )
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    model.save(tmp)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process cached it first: use theirs
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        return ClassifierModel.load(folder), key
    log(f"trained in {model.stats.get('seconds', float('nan')):.1f}s")
    return model, key


def guard_id_for(guard: str | Path | None) -> str:
    """The id :func:`load_scorer` gives a scorer, computed without loading any model.

    Raises:
        InvalidInputError: a guard file that does not exist.
    """
    if guard is None:
        from layerguard.guard.encoders import SentenceEncoder
        from layerguard.guard.rings.classifier import Constitution

        key = _training_key(Constitution.load(None).sha256, DEFAULT_TRAIN_SETS, 0.05, SentenceEncoder.name)
        return f"builtin:{key[:12]}"
    path = Path(guard)
    if not path.is_file():
        raise InvalidInputError(f"guard config {path} does not exist", hint="build one: layerguard guard build")
    return f"{path}#sha256:{_sha256_file(path)[:12]}"


def load_scorer(
    guard: str | Path | None = None, *, cache_dir: str | Path | None = None, log: Callable[[str], None] = lambda m: None
) -> GuardScorer:
    """A :class:`GuardScorer` from a ``guard.yaml`` (text rings only) or, without one, the built-in classifier.

    Raises:
        InvalidInputError: a missing or invalid guard file, or a guard without a classifier ring.
    """
    from layerguard.guard.guarded import GuardedModel

    if guard is None:
        from layerguard.guard.pipeline import Guard
        from layerguard.guard.rings.classifier import ClassifierRing, Constitution
        from layerguard.guard.rings.decode import DecodeRing
        from layerguard.guard.types import Ring

        model, key = default_classifier(cache_dir, log=log)
        rings: list[Ring] = [DecodeRing(), ClassifierRing(model, Constitution.load(None))]
        return GuardScorer(GuardedModel(Guard(rings, stop_early=False)), f"builtin:{key[:12]}")
    path = Path(guard)
    return GuardScorer(GuardedModel.load(path), guard_id_for(path))
