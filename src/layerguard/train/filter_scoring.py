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

DEFAULT_TRAIN_SETS = ("builtin:harmful:train", "builtin:harmless:train", "builtin:borderline:train")
_TEXT_RINGS_SKIPPED = ("tool_gate",)  # judges tool calls, which a corpus document has none of


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
    """Scores many documents at once with a guard's text rings.

    The decode ring runs per document (it is pure Python); the classifier embeds the pieces
    of *all* documents of a batch (raw text, decoded variants and long-text windows) in one
    encoder call, shortest first so that padding stays small; other text rings (e.g. the
    keyword ring) run per document and can veto. A piece repeated within a batch is embedded
    once. Scores equal what
    ``Guard.check(Exchange.from_prompt(text))`` gives, one document at a time.

    Args:
        rings: The guard's rings (latent rings already left out); one must be a classifier ring.
        guard_id: Recorded in the outputs and the summary.
        unavailable: Configured rings that cannot run on text (listed in the summary).
        encode_batch_size: Pieces per encoder forward pass.

    Raises:
        InvalidInputError: the rings include no classifier ring.
    """

    def __init__(
        self, rings: Sequence[Any], guard_id: str, *, unavailable: Sequence[str] = (), encode_batch_size: int = 64
    ) -> None:
        from layerguard.guard.rings.classifier import ClassifierRing
        from layerguard.guard.rings.decode import DecodeRing

        classifiers = [r for r in rings if isinstance(r, ClassifierRing)]
        if not classifiers:
            raise InvalidInputError(
                f"guard {guard_id} has no classifier ring; the corpus filter scores documents with it",
                hint="build the guard with --classifier, or leave out --guard to use the built-in classifier",
            )
        self.classifier: ClassifierRing = classifiers[0]
        self.decoders = [r for r in rings if isinstance(r, DecodeRing)]
        self.others = [
            r
            for r in rings
            if not isinstance(r, ClassifierRing | DecodeRing) and getattr(r, "name", "") not in _TEXT_RINGS_SKIPPED
        ]
        self.guard_id = guard_id
        self.threshold = float(self.classifier.model.threshold)
        self.rings = [r.name for r in [*self.decoders, self.classifier, *self.others]]
        self.unavailable = list(unavailable)
        self.encode_batch_size = encode_batch_size

    def score(self, texts: Sequence[str]) -> list[DocScore]:
        """Score a batch of documents (see the class docstring)."""
        import torch

        from layerguard.guard.rings.classifier import MAX_TEXTS, text_units
        from layerguard.guard.types import Exchange

        exchanges = [Exchange.from_prompt(t) for t in texts]
        ring_scores: list[dict[str, float]] = [{} for _ in texts]
        for ex, rs in zip(exchanges, ring_scores, strict=True):
            for ring in self.decoders:
                rs[ring.name] = float(ring.check(ex).score)

        units: list[str] = []
        owner: list[int] = []
        for i, ex in enumerate(exchanges):
            for t in ex.texts()[:MAX_TEXTS]:
                for u in text_units(t):
                    units.append(u)
                    owner.append(i)
        best = [-1] * len(texts)
        best_score = [0.0] * len(texts)
        x: Any = None
        if units:
            # each distinct piece is embedded once (corpora repeat boilerplate), shortest first
            slot: dict[str, int] = {}
            ids = [slot.setdefault(u, len(slot)) for u in units]
            distinct = list(slot)
            order = sorted(range(len(distinct)), key=lambda k: len(distinct[k]))
            x_sorted = self.classifier.encoder.encode([distinct[k] for k in order], self.encode_batch_size).float()
            x_distinct = torch.empty_like(x_sorted)
            x_distinct[torch.tensor(order)] = x_sorted
            x = x_distinct[torch.tensor(ids)]
            unit_scores = self.classifier.model.score_embeddings(x).tolist()
            for k, (s, i) in enumerate(zip(unit_scores, owner, strict=True)):
                if best[i] < 0 or s > best_score[i]:  # first maximum, as ClassifierRing.check picks it
                    best[i], best_score[i] = k, float(s)
        categories: list[str | None] = [None] * len(texts)
        names = list(self.classifier.model.category_centroids)
        scored = [i for i in range(len(texts)) if best[i] >= 0]
        if scored and names:
            sims = self.classifier.model.category_similarity(x[torch.tensor([best[i] for i in scored])]).tolist()
            for i, row in zip(scored, sims, strict=True):
                categories[i] = names[max(range(len(row)), key=lambda j: row[j])]

        out: list[DocScore] = []
        for i, ex in enumerate(exchanges):
            score = min(1.0, max(0.0, best_score[i]))
            ring_scores[i][self.classifier.name] = score
            category = categories[i]
            vetoes: list[str] = []
            for ring in self.others:
                v = ring.check(ex)
                ring_scores[i][ring.name] = float(v.score)
                if v.decision != "allow":
                    vetoes.append(ring.name)
                    if score < self.threshold and v.category:
                        category = v.category
            out.append(DocScore(score, category, ring_scores[i], tuple(vetoes)))
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
    if guard is None:
        from layerguard.guard.rings.classifier import ClassifierRing, Constitution
        from layerguard.guard.rings.decode import DecodeRing

        model, key = default_classifier(cache_dir, log=log)
        return GuardScorer([DecodeRing(), ClassifierRing(model, Constitution.load(None))], f"builtin:{key[:12]}")
    from layerguard.guard.build import load_guard

    path = Path(guard)
    g = load_guard(path, text_only=True)
    return GuardScorer(g.rings, guard_id_for(path), unavailable=g.unavailable)
