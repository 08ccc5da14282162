"""Constitutional classifier ring: a sigmoid head on frozen sentence embeddings, trained from a constitution.

A constitution (``constitution.yaml``) states the principles the guard enforces and, for each
MLCommons hazard category, short requests that must be flagged (``disallowed``) and
similar-looking requests that are fine (``allowed``). :func:`train_classifier` fits a
logistic head ``sigmoid(w . h(x) + b)`` on frozen all-MiniLM-L6-v2 embeddings ``h(x)`` of
those examples plus labelled prompt sets, and calibrates its threshold to a target
false-positive rate on the benign training prompts. Categories are assigned by cosine to
per-category centroids of the positive embeddings.

:class:`ClassifierRing` scores the last user message and every decoded variant of it
(``Exchange.derived_texts``, filled by the decode ring), so a request hidden in base64 is
judged by its plaintext. Categories listed as ``constructive`` (self-harm) get a supportive
``rewrite`` instead of a bare block.

A text longer than ``WINDOW_CHARS`` is scored as its opening window plus its distinct
sentences (at most ``MAX_UNITS`` pieces, spread evenly over it) and its score is the maximum
over them, so a request buried in a long paste is neither truncated away nor diluted in one
mean-pooled embedding (see :func:`text_units`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from layerguard.data.loaders import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.errors import CorruptModelError, InvalidInputError
from layerguard.guard.calibration import rates, threshold_for_fpr
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.types import Decision, Exchange, RingVerdict

CONSTITUTION_RESOURCE = "constitution.yaml"
MODEL_TENSORS = "classifier.safetensors"
MODEL_META = "classifier.json"

WINDOW_CHARS = 1000  # ~ the encoder's 256-token limit for English prose; longer texts are split
MAX_UNITS = 64  # scored pieces per long text; a 200 KB paste is sampled, not embedded whole
MAX_TEXTS = 16  # the raw message plus at most 15 decoded variants
DEFAULT_L2 = 1e-1
DEFAULT_FOLDS = 5
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")

Calibration = Literal["cv", "train"]


class TextEncoder(Protocol):
    """What the classifier needs from an encoder: a name and ``encode(texts) -> [n, d]`` tensor."""

    name: str

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """Embeddings ``[n, d]`` for texts."""
        ...


# --------------------------------------------------------------------------------------------
# Constitution
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principle:
    """One principle of the constitution.

    Attributes:
        id: Short stable identifier, referenced by categories and named in explanations.
        text: The principle in plain words.
    """

    id: str
    text: str


@dataclass(frozen=True)
class HazardCategory:
    """One hazard category of the constitution.

    Attributes:
        name: MLCommons-style name, e.g. ``S1_violent_crimes``.
        description: What the category covers.
        principles: Ids of the principles that govern it.
        disallowed: Requests that must be flagged (training positives).
        allowed: Similar-looking requests that are fine (training negatives).
    """

    name: str
    description: str
    principles: tuple[str, ...]
    disallowed: tuple[str, ...]
    allowed: tuple[str, ...]


def _bad(source: str, where: str, what: str) -> InvalidInputError:
    return InvalidInputError(
        f"{source}: field {where!r} {what}",
        hint="see the packaged layerguard/guard/constitution.yaml for the expected structure",
    )


def _str_field(data: Mapping[str, Any], key: str, where: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"a {type(value).__name__}" if not isinstance(value, str) else "empty"
        raise _bad(source, f"{where}{key}", f"must be a non-empty string (got {got})")
    return value.strip()


def _str_list(value: Any, where: str, source: str, *, non_empty: bool) -> tuple[str, ...]:
    if value is None and not non_empty:
        return ()
    if not isinstance(value, list) or (non_empty and not value):
        got = "missing" if value is None else f"a {type(value).__name__}" if not isinstance(value, list) else "empty"
        raise _bad(source, where, f"must be a {'non-empty ' if non_empty else ''}list of strings (got {got})")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _bad(source, f"{where}[{i}]", f"must be a non-empty string (got {item!r:.60})")
        out.append(item.strip())
    return tuple(out)


@dataclass(frozen=True)
class Constitution:
    """Principles, hazard categories with examples, and the constructive-response policy.

    Attributes:
        principles: Principle id -> principle, in file order.
        categories: Category name -> category, in file order.
        constructive: Categories answered with ``supportive_message`` (decision ``rewrite``).
        supportive_message: The supportive reply used for constructive categories.
        source: Where it was read from (a path or ``<packaged>``).
        sha256: Digest of the validated content (independent of YAML formatting and comments).
    """

    principles: dict[str, Principle]
    categories: dict[str, HazardCategory]
    constructive: tuple[str, ...] = ()
    supportive_message: str = ""
    source: str = "<memory>"
    sha256: str = ""

    @classmethod
    def load(cls, path: str | Path | None = None) -> Constitution:
        """Read and validate a constitution YAML file.

        Args:
            path: A YAML file; ``None`` reads the constitution packaged with layerguard.

        Raises:
            InvalidInputError: the file is missing, is not valid YAML, or a field is malformed
                (the message names the field, e.g. ``categories.S1_violent_crimes.disallowed``).
        """
        import yaml

        if path is None:
            source = f"<packaged {CONSTITUTION_RESOURCE}>"
            text = resources.files("layerguard.guard").joinpath(CONSTITUTION_RESOURCE).read_text(encoding="utf-8")
        else:
            p = Path(path)
            source = str(p)
            if not p.is_file():
                raise InvalidInputError(f"constitution file {p} does not exist", hint="pass an existing YAML file")
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInputError(f"cannot read constitution file {p}: {exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise InvalidInputError(f"{source}: not valid YAML{at}", hint="check indentation and quoting") from None
        return cls.from_mapping(data, source=source)

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<memory>") -> Constitution:
        """Validate a parsed constitution (the structure of ``constitution.yaml``).

        Args:
            data: The parsed YAML document.
            source: Named in error messages.

        Raises:
            InvalidInputError: naming the malformed field.
        """
        if not isinstance(data, dict):
            raise InvalidInputError(
                f"{source}: a constitution must be a mapping with 'principles' and 'categories', "
                f"got {type(data).__name__}"
            )
        raw_principles = data.get("principles")
        if not isinstance(raw_principles, list) or not raw_principles:
            raise _bad(source, "principles", "must be a non-empty list of {id, text} entries")
        principles: dict[str, Principle] = {}
        for i, entry in enumerate(raw_principles):
            if not isinstance(entry, dict):
                raise _bad(source, f"principles[{i}]", f"must be a mapping with 'id' and 'text' (got {entry!r:.60})")
            pid = _str_field(entry, "id", f"principles[{i}].", source)
            if pid in principles:
                raise _bad(source, f"principles[{i}].id", f"repeats the id {pid!r}")
            principles[pid] = Principle(pid, _str_field(entry, "text", f"principles[{i}].", source))

        raw_categories = data.get("categories")
        if not isinstance(raw_categories, dict) or not raw_categories:
            raise _bad(source, "categories", "must be a non-empty mapping of category name -> definition")
        categories: dict[str, HazardCategory] = {}
        for name, entry in raw_categories.items():
            where = f"categories.{name}"
            if not isinstance(name, str) or not name.strip():
                raise _bad(source, where, "has a name that is not a non-empty string")
            if not isinstance(entry, dict):
                raise _bad(source, where, f"must be a mapping (got {type(entry).__name__})")
            refs = _str_list(entry.get("principles"), f"{where}.principles", source, non_empty=True)
            unknown = [r for r in refs if r not in principles]
            if unknown:
                raise _bad(source, f"{where}.principles", f"names unknown principle id(s) {unknown}")
            categories[name] = HazardCategory(
                name=name,
                description=_str_field(entry, "description", f"{where}.", source),
                principles=refs,
                disallowed=_str_list(entry.get("disallowed"), f"{where}.disallowed", source, non_empty=True),
                allowed=_str_list(entry.get("allowed"), f"{where}.allowed", source, non_empty=False),
            )

        constructive = _str_list(data.get("constructive"), "constructive", source, non_empty=False)
        unknown = [c for c in constructive if c not in categories]
        if unknown:
            raise _bad(source, "constructive", f"names unknown categor(ies) {unknown}")
        supportive = data.get("supportive_message")
        if constructive or supportive is not None:
            supportive = _str_field(data, "supportive_message", "", source)
        canonical = {
            "principles": [[p.id, p.text] for p in principles.values()],
            "categories": [
                [c.name, c.description, list(c.principles), list(c.disallowed), list(c.allowed)]
                for c in categories.values()
            ],
            "constructive": list(constructive),
            "supportive_message": supportive or "",
        }
        digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        return cls(principles, categories, constructive, supportive or "", source, digest)

    def principles_of(self, category: str | None) -> list[Principle]:
        """The principles governing a category (empty for an unknown category)."""
        cat = self.categories.get(category or "")
        return [self.principles[p] for p in cat.principles] if cat else []

    def examples(self) -> tuple[list[str], list[int], list[str]]:
        """Texts, labels (1 = disallowed, 0 = allowed) and category names of every example."""
        texts: list[str] = []
        labels: list[int] = []
        cats: list[str] = []
        for c in self.categories.values():
            for t in c.disallowed:
                texts.append(t)
                labels.append(1)
                cats.append(c.name)
            for t in c.allowed:
                texts.append(t)
                labels.append(0)
                cats.append(c.name)
        return texts, labels, cats


# --------------------------------------------------------------------------------------------
# Texts -> windows -> scores
# --------------------------------------------------------------------------------------------


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


def _auroc(pos: Sequence[float], neg: Sequence[float]) -> float:
    from layerguard.stats import auroc

    return auroc(list(pos), list(neg))


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


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
    """

    probe: LogisticProbe
    threshold: float
    category_centroids: dict[str, Any]
    encoder_name: str
    constitution_sha256: str
    target_fpr: float = 0.05
    stats: dict[str, Any] = field(default_factory=dict)

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
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {f"probe.{k}": v.contiguous() for k, v in self.probe.state().items()}
        tensors.update({f"category.{k}": v.contiguous() for k, v in self.category_centroids.items()})
        save_file(tensors, str(d / MODEL_TENSORS))
        meta = {
            "format": 1,
            "threshold": self.threshold,
            "target_fpr": self.target_fpr,
            "categories": list(self.category_centroids),
            "encoder": self.encoder_name,
            "constitution_sha256": self.constitution_sha256,
            "stats": self.stats,
        }
        (d / MODEL_META).write_text(json.dumps(meta, indent=2, default=float), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ClassifierModel:
        """Read what :meth:`save` wrote.

        Raises:
            InvalidInputError: the folder holds no classifier.
            CorruptModelError: the files are unreadable or inconsistent.
        """
        from safetensors.torch import load_file

        d = Path(directory)
        meta_path, tensor_path = d / MODEL_META, d / MODEL_TENSORS
        if not meta_path.is_file() or not tensor_path.is_file():
            raise InvalidInputError(
                f"{d} holds no classifier ({MODEL_META} and {MODEL_TENSORS})",
                hint="train one with layerguard.guard.rings.classifier.train_classifier(...).save(dir)",
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            t = load_file(str(tensor_path))
            probe = LogisticProbe.from_state({k[6:]: v for k, v in t.items() if k.startswith("probe.")})
            centroids = {c: t[f"category.{c}"] for c in meta["categories"]}
            return cls(
                probe=probe,
                threshold=float(meta["threshold"]),
                category_centroids=centroids,
                encoder_name=str(meta["encoder"]),
                constitution_sha256=str(meta["constitution_sha256"]),
                target_fpr=float(meta.get("target_fpr", math.nan)),
                stats=dict(meta.get("stats", {})),
            )
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise CorruptModelError(
                f"the classifier in {d} is corrupt or incomplete ({type(exc).__name__}: {exc})",
                hint="retrain and save it again",
            ) from None


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

    t0 = time.perf_counter()
    if calibration not in ("cv", "train"):
        raise InvalidInputError(f"calibration must be 'cv' or 'train', got {calibration!r}")
    if calibration == "cv" and folds < 2:
        raise InvalidInputError(f"cross-validated calibration needs folds >= 2, got {folds}")
    assert_not_held_out([*harmful, *benign], "classifier training")
    enc = _encoder_or_default(encoder)
    c_texts, c_labels, c_cats = constitution.examples()
    texts = [*c_texts, *(s.prompt for s in harmful), *(s.prompt for s in benign)]
    labels = [*c_labels, *([1] * len(harmful)), *([0] * len(benign))]
    cats = [*c_cats, *(s.category for s in harmful), *(s.category for s in benign)]
    n_const = len(c_texts)
    x = enc.encode(texts).float()
    y = torch.tensor(labels, dtype=torch.float32)
    probe = LogisticProbe.fit(x, y, l2=l2)

    centroids: dict[str, Any] = {}
    xn = torch.nn.functional.normalize(x, dim=-1)
    for name in constitution.categories:
        idx = [i for i, (lab, c) in enumerate(zip(labels, cats, strict=True)) if lab == 1 and c == name]
        if idx:
            centroids[name] = torch.nn.functional.normalize(xn[idx].mean(0), dim=-1).contiguous()
    uncategorized = sum(1 for lab, c in zip(labels, cats, strict=True) if lab == 1 and c not in centroids)

    scores = probe.predict(x).clamp(0.0, 1.0).tolist()
    cal_scores = _out_of_fold_scores(x, y, l2, folds, seed) if calibration == "cv" else scores
    pos = [s for s, lab in zip(cal_scores, labels, strict=True) if lab == 1]
    neg = [s for s, lab in zip(cal_scores, labels, strict=True) if lab == 0]
    threshold = threshold_for_fpr(neg, target_fpr)
    r = rates(pos, neg, threshold)
    sample_pos = cal_scores[n_const : n_const + len(harmful)]
    sample_neg = cal_scores[n_const + len(harmful) :]
    in_pos = [s for s, lab in zip(scores, labels, strict=True) if lab == 1]
    in_neg = [s for s, lab in zip(scores, labels, strict=True) if lab == 0]
    stats: dict[str, Any] = {
        "n_positive": len(pos),
        "n_negative": len(neg),
        "n_constitution_positive": sum(c_labels),
        "n_constitution_negative": len(c_labels) - sum(c_labels),
        "n_harmful_samples": len(harmful),
        "n_benign_samples": len(benign),
        "positives_without_centroid": uncategorized,
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
        "l2": l2,
        "calibration": calibration,
        "folds": folds if calibration == "cv" else 0,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return ClassifierModel(
        probe=probe,
        threshold=float(threshold),
        category_centroids=centroids,
        encoder_name=str(getattr(enc, "name", type(enc).__name__)),
        constitution_sha256=constitution.sha256,
        target_fpr=target_fpr,
        stats=stats,
    )


# --------------------------------------------------------------------------------------------
# Ring
# --------------------------------------------------------------------------------------------


class ClassifierRing:
    """Screens the last user message and its decoded variants against the constitution.

    Args:
        model: The fitted classifier.
        constitution: The constitution (principles named in explanations; constructive policy).
        encoder: Sentence encoder (default: the shared all-MiniLM-L6-v2); must be the one
            the model was trained on.

    Raises:
        InvalidInputError: the encoder is not the one the model was trained with.
    """

    name = "classifier"
    needs_activations = False

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
        texts = exchange.texts()[:MAX_TEXTS]
        scores, owner, x = self._unit_scores(texts)
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
        where = " (on decoded text)" if owner[best] > 0 else ""
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
