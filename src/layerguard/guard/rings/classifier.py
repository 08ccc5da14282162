"""Constitutional classifier ring: a sigmoid head on frozen sentence embeddings, trained from a constitution.

A constitution (``constitution.yaml``) states the principles the guard enforces and, for each
MLCommons hazard category, short requests that must be flagged (``disallowed``) and
similar-looking requests that are fine (``allowed``). :func:`train_classifier` fits a
logistic head ``sigmoid(w . h(x) + b)`` on frozen all-MiniLM-L6-v2 embeddings ``h(x)`` of
those examples plus labelled prompt sets, and calibrates its threshold to a target
false-positive rate on the benign training prompts. Categories are assigned by cosine to
per-category centroids of the positive embeddings.

:class:`ClassifierRing` scores every text of the exchange (:func:`~layerguard.guard.types.role_texts`):
the last user message, every decoded variant of it (``Exchange.derived_texts``, filled by the
decode ring, so a request hidden in base64 is judged by its plaintext), and every other
message of every role (system, developer, tool results, earlier turns, ``name`` fields),
reporting which one scored highest. Categories listed as ``constructive`` (self-harm) get a supportive
``rewrite`` instead of a bare block.

A text longer than ``WINDOW_CHARS`` is scored as its opening window plus its distinct
sentences (at most ``MAX_UNITS`` pieces, spread evenly over it) and its score is the maximum
over them, so a request buried in a long paste is neither truncated away nor diluted in one
mean-pooled embedding (see :func:`text_units`).

The constitution lives in :mod:`layerguard.guard.rings.constitution` and the model (training,
files) in :mod:`layerguard.guard.rings.classifier_model`; their public names are re-exported here.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Sequence
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.guard.rings.classifier_model import (
    DEFAULT_FOLDS,
    DEFAULT_L2,
    MODEL_META,
    MODEL_TENSORS,
    Calibration,
    ClassifierModel,
    TextEncoder,
    _encoder_or_default,
    train_classifier,
)
from layerguard.guard.rings.constitution import CONSTITUTION_RESOURCE, Constitution, HazardCategory, Principle
from layerguard.guard.types import Decision, Exchange, RingVerdict, Stage, role_texts

__all__ = [
    "CONSTITUTION_RESOURCE",
    "DEFAULT_FOLDS",
    "DEFAULT_L2",
    "MAX_TEXTS",
    "MAX_UNITS",
    "MODEL_META",
    "MODEL_TENSORS",
    "WINDOW_CHARS",
    "Calibration",
    "ClassifierModel",
    "ClassifierRing",
    "Constitution",
    "HazardCategory",
    "Principle",
    "TextEncoder",
    "text_units",
    "train_classifier",
]

WINDOW_CHARS = 1000  # ~ the encoder's 256-token limit for English prose; longer texts are split
MAX_UNITS = 64  # scored pieces per long text; a 200 KB paste is sampled, not embedded whole
MAX_TEXTS = 48  # the last user message, its decoded variants, then the other messages (newest first)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")


def _spread(items: list[str], n: int) -> list[str]:
    """At most ``n`` items evenly spaced over the list, first and last kept."""
    if len(items) <= n:
        return items
    if n <= 1:
        return items[:n]
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def _hard_split(text: str, window: int) -> list[str]:
    """Overlapping ``window``-character pieces of a text with no sentence breaks."""
    if len(text) <= window:
        return [text]
    stride = max(1, (window * 3) // 4)
    starts = [*range(0, len(text) - window, stride), len(text) - window]
    return [text[s : s + window] for s in starts]


def text_units(text: str, window: int = WINDOW_CHARS, max_units: int = MAX_UNITS) -> list[str]:
    """The pieces of a text that are embedded and scored (a text's score is the max over them).

    A blank text has none; a text of at most ``window`` characters is one unit (itself). A
    longer text gives its first ``window`` characters (the request with its context) plus its
    distinct sentences (runs without a sentence break are cut into overlapping ``window``-sized
    pieces), at most ``max_units`` in all, spread evenly over the text with the first and last
    kept. A mean-pooled embedding of a whole long text dilutes a short request to nothing, and
    repeated padding collapses to a few distinct sentences; padding with distinct filler can
    still push a request out of the budget.
    """
    if not text.strip():
        return []
    if len(text) <= window:
        return [text]
    pieces = [p for sent in _SENTENCE_BREAK.split(text) if sent.strip() for p in _hard_split(sent.strip(), window)]
    sentences = [s for s in dict.fromkeys(pieces) if s != text[:window]]
    return [text[:window], *_spread(sentences, max(0, max_units - 1))]


def _sources_and_texts(exchange: Exchange) -> tuple[list[str], list[str]]:
    """The exchange's texts (at most ``MAX_TEXTS``) and where each came from."""
    labelled = role_texts(exchange)[:MAX_TEXTS]
    return [s for s, _ in labelled], [t for _, t in labelled]


class ClassifierRing:
    """Screens every text of an exchange (each role's messages, decoded variants) against the constitution.

    Args:
        model: The fitted classifier.
        constitution: The constitution (principles named in explanations; constructive policy).
        encoder: Sentence encoder (default: the shared all-MiniLM-L6-v2); must be the one
            the model was trained on.

    Raises:
        InvalidInputError: the encoder is not the one the model was trained with.
    """

    name = "classifier"
    stage: Stage = "input"
    reads: tuple[str, ...] = ()

    def __init__(self, model: ClassifierModel, constitution: Constitution, encoder: TextEncoder | None = None) -> None:
        self.model = model
        self.constitution = constitution
        self.encoder = _encoder_or_default(encoder)
        enc_name = getattr(self.encoder, "name", None)
        if enc_name is not None and enc_name != model.encoder_name:
            raise InvalidInputError(
                f"this classifier was trained on encoder {model.encoder_name!r}, not {enc_name!r}",
                hint="use the same encoder, or retrain the classifier",
            )
        if model.constitution_sha256 and model.constitution_sha256 != constitution.sha256:
            warnings.warn(
                f"the classifier was trained on another constitution (sha256 {model.constitution_sha256[:12]}) "
                f"than {constitution.source} (sha256 {constitution.sha256[:12]}); retrain to apply its examples",
                UserWarning,
                stacklevel=2,
            )

    def _unit_scores(self, texts: Sequence[str]) -> tuple[list[float], list[int], Any]:
        """Scores and owner text index of every unit (see :func:`text_units`), and their embeddings."""
        import torch

        units: list[str] = []
        owner: list[int] = []
        for i, t in enumerate(texts):
            for u in text_units(t if isinstance(t, str) else str(t)):
                units.append(u)
                owner.append(i)
        if not units:
            return [], [], torch.zeros((0, 0))
        x = self.encoder.encode(units).float()
        return self.model.score_embeddings(x).tolist(), owner, x

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """Violation probability of each text (max over its units; 0 for blank text)."""
        scores, owner, _ = self._unit_scores(texts)
        return self._per_text(scores, owner, len(texts))

    def check(self, exchange: Exchange) -> RingVerdict:
        """Score every text of the exchange; flag at or above the calibrated threshold.

        The score is the maximum over the raw message and its decoded variants; the category
        is the one nearest to the highest-scoring text. Constructive categories (self-harm)
        are answered with the constitution's supportive message (decision ``rewrite``).
        """
        t0 = time.perf_counter()
        sources, texts = _sources_and_texts(exchange)
        scores, owner, x = self._unit_scores(texts)
        return self._verdict(sources, scores, owner, x, t0)

    def check_many(self, exchanges: Sequence[Exchange]) -> list[RingVerdict]:
        """:meth:`check` for many exchanges with one encoder call over all their text pieces.

        Each distinct piece is embedded once (corpora repeat boilerplate), shortest first so
        that padding stays small; each exchange's verdict is then built as :meth:`check` builds it.
        """
        import torch

        t0 = time.perf_counter()
        labelled = [_sources_and_texts(ex) for ex in exchanges]
        texts = [ts for _, ts in labelled]
        units = [
            [(i, u) for i, t in enumerate(ts) for u in text_units(t if isinstance(t, str) else str(t))] for ts in texts
        ]
        distinct = sorted({u for us in units for _, u in us}, key=len)
        slot = {u: k for k, u in enumerate(distinct)}
        if distinct:
            x_all = self.encoder.encode(distinct).float()
            s_all = self.model.score_embeddings(x_all).tolist()
        else:
            x_all, s_all = torch.zeros((0, 0)), []
        out = []
        for (sources, _), us in zip(labelled, units, strict=True):
            rows = [slot[u] for _, u in us]
            x = x_all[rows] if rows else torch.zeros((0, 0))
            out.append(self._verdict(sources, [s_all[r] for r in rows], [i for i, _ in us], x, t0))
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(exchanges))
        for v in out:
            v.latency_ms = ms
        return out

    def _verdict(self, sources: list[str], scores: list[float], owner: list[int], x: Any, t0: float) -> RingVerdict:
        """The verdict from the unit scores, their owner texts (labelled by source) and embeddings."""
        texts = sources
        if not scores:
            return RingVerdict(
                ring=self.name,
                score=0.0,
                decision="allow",
                latency_ms=(time.perf_counter() - t0) * 1000,
                explanation="no text to classify",
            )
        best = max(range(len(scores)), key=lambda i: scores[i])
        score = min(1.0, max(0.0, float(scores[best])))
        sims = self.model.category_similarity(x[best : best + 1])[0].tolist()
        names = list(self.model.category_centroids)
        category = names[max(range(len(sims)), key=lambda i: sims[i])] if sims else None
        threshold = self.model.threshold
        flagged = score >= threshold
        decision: Decision = "allow"
        rewrite: str | None = None
        if flagged:
            if category in self.constitution.constructive and self.constitution.supportive_message:
                decision, rewrite = "rewrite", self.constitution.supportive_message
            else:
                decision = "block"
        principles = self.constitution.principles_of(category)
        named = "; ".join(f"{p.id}: {p.text}" for p in principles) or "no principle listed for it"
        verdict_word = {"allow": "below", "block": "at or above", "rewrite": "at or above"}[decision]
        source = sources[owner[best]]
        where = "" if owner[best] == 0 else " (on decoded text)" if source == "decoded" else f" (in {source})"
        explanation = (
            f"violation score {score:.3f} {verdict_word} threshold {threshold:.3f}{where}; "
            f"nearest category {category} under principle(s) {named}"
        )
        if decision == "rewrite":
            explanation += "; constructive category: answered with a supportive message"
        return RingVerdict(
            ring=self.name,
            score=score,
            decision=decision,
            category=category,
            category_scores=dict(zip(names, (round(float(s), 4) for s in sims), strict=True)),
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=explanation,
            rewrite=rewrite,
            details={
                "threshold": threshold,
                "text_index": owner[best],
                "source": source,
                "text_scores": [round(s, 4) for s in self._per_text(scores, owner, len(texts))],
                "principles": [p.id for p in principles],
            },
        )

    @staticmethod
    def _per_text(scores: Sequence[float], owner: Sequence[int], n: int) -> list[float]:
        out = [0.0] * n
        for s, i in zip(scores, owner, strict=True):
            out[i] = max(out[i], float(s))
        return out
