"""Latent guard: the served model's own harmfulness representation as a detector.

The harmfulness direction read at ``t_inst`` separates harmful from harmless requests
even when a jailbreak suppresses the refusal. This ring reads the residual stream of the
forward pass that serves the request (``Exchange.activations``), so it adds no model
call of its own; given only text, it runs one forward pass through the local model.

Two variants:
- ``centroid`` (training-free): project onto the harmfulness :class:`Direction` (the
  difference of the harmful and harmless centroids, from
  :func:`layerguard.directions.extract.diff_in_means`) at the chosen layer and map through a
  1-D logistic fitted on calibration prompts;
- ``probe``: a logistic-regression probe on the full hidden state.
Per-category scores compare the state with each harm category's centroid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from layerguard.activations.hooks import read_name
from layerguard.directions.direction import Direction
from layerguard.errors import InvalidInputError
from layerguard.guard.artefacts import (
    direction_entries,
    direction_from_entries,
    load_tensors,
    nest,
    reading,
    save_tensors,
)
from layerguard.guard.latent_categories import CategoryModel, nearest
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.types import RING_PASS_MAX_CHARS, Decision, Exchange, RingVerdict, Stage, bounded_messages

Variant = Literal["centroid", "probe"]
STEM = "latent"
KIND = "latent_guard"


def hook_name(layer: int) -> str:
    """Activation key the ring reads: the stream entering ``layer`` at ``t_inst``."""
    return read_name(layer, "t_inst")


@dataclass
class LatentGuardModel:
    """The fitted artefacts of a latent ring.

    Attributes:
        layer: The layer whose ``t_inst`` state is scored (with several reads: the first read's layer).
        variant: ``centroid`` or ``probe``.
        direction: Unit vectors ``[k, d]``, one per read (harmful centroid - benign centroid there);
            ``[d]`` for a model of one read.
        scorer: Logistic probe on the ``k`` projections (centroid) or on the ``k`` states concatenated (probe).
        threshold: Scores at or above it block.
        category_centroids: Category -> unit ``[d]`` vector (its harmful centroid - harmless
            centroid); guards built before the category model only.
        category_model: The softmax regression over the reads that names a block's category,
            with the confidence below which a block carries none (:mod:`..latent_categories`).
        category_thresholds: Per-category thresholds (category -> score).
        model_id: ``name@sha12`` of the model it reads.
        weights_sha256: Weights hash of that model.
        template_sha256: Chat-template hash it was fitted with.
        meta: Build statistics.
        harmfulness: The per-layer :class:`Direction` (role ``harmfulness`` at ``t_inst``) that
            ``direction`` is the unit vector of, with its provenance; None for a model made
            from a bare vector (fold models, files of format 0).
        reads: The read names scored, in feature order (default: ``t_inst`` at ``layer``);
            several reads pool the instruction (``inst_mean``), the post-instruction tokens
            (``post_mean``) and several layers.
    """

    layer: int
    variant: Variant
    direction: Any
    scorer: LogisticProbe
    threshold: float
    category_centroids: dict[str, Any] = field(default_factory=dict)
    category_thresholds: dict[str, float] = field(default_factory=dict)
    category_model: CategoryModel | None = None
    model_id: str = ""
    weights_sha256: str = ""
    template_sha256: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    harmfulness: Direction | None = None
    reads: list[str] = field(default_factory=list)
    release: Release | None = None

    def __post_init__(self) -> None:
        if not self.reads:
            self.reads = [hook_name(self.layer)]

    @classmethod
    def from_direction(
        cls, harmfulness: Direction, variant: Variant, scorer: LogisticProbe, threshold: float
    ) -> LatentGuardModel:
        """The model scoring at ``harmfulness.layer`` along its unit vector, with its provenance.

        Raises:
            InvalidInputError: the direction has no selected layer.
        """
        layer = harmfulness.layer
        if layer is None:
            raise InvalidInputError(
                f"the {harmfulness.role} direction has no selected layer", hint="use direction.with_layer(layer)"
            )
        return cls(
            layer=layer,
            variant=variant,
            direction=harmfulness.unit(layer),
            scorer=scorer,
            threshold=threshold,
            model_id=harmfulness.model_id,
            weights_sha256=harmfulness.weights_sha256,
            template_sha256=harmfulness.template_sha256,
            harmfulness=harmfulness,
        )

    def _states(self, h: Any) -> Any:
        """``[n, k, d]`` from ``[n, k, d]``, or from ``[n, d]`` for a model of one read."""
        h = h.float()
        return h.unsqueeze(1) if h.dim() == 2 else h

    def features(self, h: Any) -> Any:
        """Scorer features from hidden states ``[n, k, d]`` (``[n, d]`` with one read)."""
        h = self._states(h)
        if self.variant == "centroid":
            return (h * self.direction.float().reshape(len(self.reads), -1)).sum(-1)  # [n, k]
        return h.reshape(h.shape[0], -1)  # [n, k * d]

    def score(self, h: Any) -> Any:
        """Probability of harm ``[n]`` for hidden states ``[n, k, d]`` (``[n, d]`` with one read)."""
        return self.scorer.predict(self.features(h))

    @property
    def category_names(self) -> list[str]:
        """The categories, in the column order of :meth:`categories`."""
        return self.category_model.names if self.category_model is not None else list(self.category_centroids)

    @property
    def category_confidence(self) -> float:
        """The score a category must reach to be named on a block (0 for centroid categories)."""
        return self.category_model.min_confidence if self.category_model is not None else 0.0

    def categories(self, h: Any) -> Any:
        """``[n, n_categories]``: each category's probability, or (older guards) cosine with its centroid."""
        import torch

        h = self._states(h)
        if self.category_model is not None:
            return self.category_model.probabilities(h)
        if not self.category_centroids:
            return torch.zeros((h.shape[0], 0))
        cents = torch.stack([v.reshape(-1) for v in self.category_centroids.values()])
        flat = torch.nn.functional.normalize(h.reshape(h.shape[0], -1), dim=-1)
        return flat @ torch.nn.functional.normalize(cents.float(), dim=-1).T

    def save(self, directory: Path) -> None:
        """Write ``latent.safetensors`` and ``latent.json`` (the shared artefact format)."""
        tensors = {"direction": self.direction, **self.scorer.tensors("scorer")}
        tensors.update(nest("category", self.category_centroids))
        if self.category_model is not None:
            tensors.update(self.category_model.tensors("category_model"))
        meta: dict[str, Any] = {
            "layer": self.layer,
            "reads": list(self.reads),
            "variant": self.variant,
            "threshold": self.threshold,
            "categories": list(self.category_centroids),
            "category_thresholds": self.category_thresholds,
            "category_model": None
            if self.category_model is None
            else {
                "names": self.category_model.names,
                "min_confidence": self.category_model.min_confidence,
                "stats": self.category_model.stats,
            },
            "model_id": self.model_id,
            "weights_sha256": self.weights_sha256,
            "template_sha256": self.template_sha256,
            "meta": self.meta,
        }
        provenance = {
            "model_id": self.model_id,
            "weights_sha256": self.weights_sha256,
            "template_sha256": self.template_sha256,
        }
        if self.harmfulness is not None:
            dir_tensors, meta["harmfulness"] = direction_entries(self.harmfulness, "harmfulness")
            tensors.update(dir_tensors)
            if "data_sha256" in self.harmfulness.meta:
                provenance["data_sha256"] = self.harmfulness.meta["data_sha256"]
        if self.release is not None:
            rel_tensors, meta["release"] = direction_entries(self.release.refusal, "release.refusal")
            meta["release"].update(below=self.release.below, refusal_above=self.release.refusal_above)
            tensors.update(rel_tensors)
        save_tensors(directory, STEM, KIND, tensors, meta, provenance)

    @classmethod
    def load(cls, directory: Path) -> LatentGuardModel:
        """Read what :meth:`save` wrote (also files of format 0, which have no stored Direction).

        Raises:
            InvalidInputError: the files are missing, of another kind or corrupt.
        """
        hint = "run `layerguard guard build`"
        art = load_tensors(directory, STEM, KIND, what="latent guard", hint=hint)
        t, meta = art.tensors, art.meta
        with reading("latent guard", directory, hint):
            harm = meta.get("harmfulness")
            return cls(
                layer=int(meta["layer"]),
                variant=meta["variant"],
                direction=t["direction"],
                scorer=LogisticProbe.from_tensors(t, "scorer"),
                threshold=float(meta["threshold"]),
                category_centroids={c: t[f"category.{c}"] for c in meta["categories"]},
                category_thresholds=dict(meta.get("category_thresholds", {})),
                category_model=None
                if not meta.get("category_model")
                else CategoryModel.from_tensors(t, "category_model", meta["category_model"]),
                model_id=str(meta["model_id"]),
                weights_sha256=str(meta["weights_sha256"]),
                template_sha256=str(meta["template_sha256"]),
                meta=dict(meta.get("meta", {})),
                harmfulness=None if harm is None else direction_from_entries(t, harm, "harmfulness"),
                reads=list(meta.get("reads") or []),
                release=None if "release" not in meta else Release.from_entries(t, meta["release"]),
            )


@dataclass
class Release:
    """When the guard may *release* a request: answer it with the refusal direction ablated.

    The model refuses some benign requests it knows are harmless (its refusal reads the form of
    the request, its harmfulness belief the content). When the latent harm score is below
    ``below`` (set so that few harmful training prompts fall under it) and the model leans to
    refuse (the post-instruction state's projection on the refusal direction is at least
    ``refusal_above``), the request can be answered with that direction projected out of the
    residual stream for this request only.

    Attributes:
        refusal: The refusal :class:`Direction` (harmful - harmless at ``post_mean``), its layer selected.
        below: Harm scores strictly below this may be released.
        refusal_above: The refusal-intent projection at which the model is taken to lean to refuse.
    """

    refusal: Direction
    below: float
    refusal_above: float

    @property
    def read(self) -> str:
        """The read of the refusal intent: ``post_mean`` at the refusal direction's layer."""
        assert self.refusal.layer is not None
        return read_name(self.refusal.layer, "post_mean")

    def vector(self) -> Any:
        """The unit ``[d]`` vector to ablate."""
        return self.refusal.unit(self.refusal.layer)

    def intent(self, h: Any) -> float:
        """The refusal-intent projection of a ``[d]`` post-instruction state."""
        return float(h.float() @ self.vector().float())

    @classmethod
    def from_entries(cls, tensors: Any, meta: dict[str, Any]) -> Release:
        """Rebuild from the latent artefact's ``release`` entries."""
        return cls(
            direction_from_entries(tensors, meta, "release.refusal"), float(meta["below"]), float(meta["refusal_above"])
        )


class LatentRing:
    """Ring reading the harmfulness representation (at ``t_inst``, or pooled over several reads).

    Args:
        model: The fitted artefacts.
        lm: Optional LoadedModel used to compute activations when the exchange has none.
    """

    name = "latent"
    stage: Stage = "input"

    def __init__(self, model: LatentGuardModel, lm: Any | None = None) -> None:
        self.model = model
        self.lm = lm
        self.reads: tuple[str, ...] = tuple(model.reads)
        self.scored = len(model.reads)
        if model.release is not None and model.release.read not in self.reads:
            self.reads += (model.release.read,)
        self.release_index = None if model.release is None else self.reads.index(model.release.read)
        if lm is not None and lm.weights_sha256 != model.weights_sha256:
            raise InvalidInputError(
                f"this latent guard was built for {model.model_id}, not {lm.model_id}",
                hint="build a guard for this model: layerguard guard build --model ...",
            )

    def _has_states(self, exchange: Exchange) -> bool:
        return bool(exchange.activations) and all(r in exchange.activations for r in self.reads)  # type: ignore[operator]

    def hidden(self, exchange: Exchange) -> Any:
        """The ``[k, d]`` states read: from the exchange, else one forward pass of the local model."""
        import torch

        if self._has_states(exchange):
            assert exchange.activations is not None
            return torch.stack([exchange.activations[r].float() for r in self.reads])  # [k (+1), d]
        if self.lm is None:
            raise InvalidInputError(
                "the latent ring needs the served model's activations",
                hint="serve with the local model backend, or give the ring a LoadedModel",
            )
        short = Exchange.model_validate({"messages": bounded_messages(exchange)})
        return read_states(self.lm, [short], self.reads)[0]

    def check(self, exchange: Exchange) -> RingVerdict:
        """Score the exchange; block at or above the calibrated (per-category) threshold.

        An empty last user message (and no activations given) is allowed with score 0.

        When an earlier ring decoded hidden text (``exchange.derived_texts``) and a local
        model is at hand, each plaintext also goes through the model once and the most
        harmful reading counts: an encoding that hides the request from the model's first
        reading does not hide it from this one.
        """
        t0 = time.perf_counter()
        if not self._has_states(exchange) and not exchange.last_user.strip():
            # an empty instruction has no t_inst to read, and nothing harmful in it
            return RingVerdict(
                ring=self.name,
                score=0.0,
                latency_ms=(time.perf_counter() - t0) * 1000,
                explanation="empty user message: no instruction to read",
            )
        states = [self.hidden(exchange).float()]
        if exchange.derived_texts and self.lm is not None:
            extra = [Exchange.from_prompt(t[-RING_PASS_MAX_CHARS:]) for t in exchange.derived_texts[:8] if t.strip()]
            if extra:
                states += read_states(self.lm, extra, self.reads)
        k = self.scored
        scores = self.model.score(torch_stack([st[:k] for st in states])).tolist()
        best = max(range(len(scores)), key=lambda i: scores[i])
        verdict = self.verdict_from_state(states[best][:k].unsqueeze(0), t0)
        if best > 0:
            verdict.explanation += " (on decoded text)"
            verdict.details["decoded_index"] = best - 1
        rel = self.model.release
        if rel is not None and self.release_index is not None and len(states[0]) > self.release_index:
            intent = rel.intent(states[0][self.release_index])
            verdict.details["refusal_intent"] = round(intent, 4)
            if verdict.decision == "allow" and best == 0 and verdict.score < rel.below and intent >= rel.refusal_above:
                verdict.details["release"] = True
                verdict.explanation += (
                    f"; release: harm {verdict.score:.3f} < {rel.below:.3f}, refusal intent {intent:.2f}"
                )
        return verdict

    def release_vector(self) -> Any:
        """The unit ``[d]`` refusal vector a released request is answered with projected out (None: no release)."""
        return None if self.model.release is None else self.model.release.vector()

    def verdict_from_state(self, h: Any, t0: float | None = None) -> RingVerdict:
        """The verdict for hidden states ``[1, k, d]`` (``[1, d]`` with one read)."""
        t0 = time.perf_counter() if t0 is None else t0
        score = float(self.model.score(h)[0])
        cats = self.model.categories(h)[0].tolist()
        names = self.model.category_names
        best, confidence = nearest(cats, names)
        threshold = self.model.category_thresholds.get(best or "", self.model.threshold)
        decision: Decision = "block" if score >= threshold else "allow"
        sure = best is not None and confidence >= self.model.category_confidence
        details = {"nearest_category": best, "category_confidence": round(confidence, 4)} if best else {}
        return RingVerdict(
            ring=self.name,
            score=min(1.0, max(0.0, score)),
            decision=decision,
            category=best if decision == "block" and sure else None,
            category_scores=dict(zip(names, (round(c, 4) for c in cats), strict=True)),
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=f"harmfulness {score:.3f} vs threshold {threshold:.3f} ({', '.join(self.reads)})"
            + (f" (nearest category {best}{'' if sure else ', not sure'})" if best else ""),
            details=details,
        )


def torch_stack(tensors: list[Any]) -> Any:
    """Stack ``[d]`` tensors into ``[n, d]``."""
    import torch

    return torch.stack(tensors)


def read_states(lm: Any, exchanges: list[Exchange], reads: Sequence[str], batch_size: int = 8) -> list[Any]:
    """The ``[k, d]`` states of ``reads`` for each exchange, in batched passes of the local model."""
    import torch

    from layerguard.guard.states import exchange_states

    convs = [[{"role": m.role, "content": m.content} for m in ex.messages] for ex in exchanges]
    rows = exchange_states(lm, convs, [""] * len(convs), reads=reads, batch_size=batch_size)
    return [torch.stack([row[r].float() for r in reads]) for row in rows]


def latent_states(lm: Any, exchanges: list[Exchange], layers: list[int], batch_size: int = 8) -> list[dict[str, Any]]:
    """Activation dicts (``blocks.{l}.resid_pre@t_inst`` -> ``[d]``) for exchanges, batched."""
    from layerguard.guard.states import exchange_states

    convs = [[{"role": m.role, "content": m.content} for m in ex.messages] for ex in exchanges]
    return exchange_states(lm, convs, [""] * len(convs), t_inst_layers=layers, batch_size=batch_size)
