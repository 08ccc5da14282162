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
        layer: The layer whose ``t_inst`` state is scored.
        variant: ``centroid`` or ``probe``.
        direction: Unit vector ``[d]`` at ``layer`` (harmful centroid - harmless centroid).
        scorer: Logistic probe on the 1-D projection (centroid) or on the full state (probe).
        threshold: Scores at or above it block.
        category_centroids: Category -> unit ``[d]`` vector (its harmful centroid - harmless centroid).
        category_thresholds: Per-category thresholds (category -> score).
        model_id: ``name@sha12`` of the model it reads.
        weights_sha256: Weights hash of that model.
        template_sha256: Chat-template hash it was fitted with.
        meta: Build statistics.
        harmfulness: The per-layer :class:`Direction` (role ``harmfulness`` at ``t_inst``) that
            ``direction`` is the unit vector of, with its provenance; None for a model made
            from a bare vector (fold models, files of format 0).
    """

    layer: int
    variant: Variant
    direction: Any
    scorer: LogisticProbe
    threshold: float
    category_centroids: dict[str, Any] = field(default_factory=dict)
    category_thresholds: dict[str, float] = field(default_factory=dict)
    model_id: str = ""
    weights_sha256: str = ""
    template_sha256: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    harmfulness: Direction | None = None

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

    def features(self, h: Any) -> Any:
        """``[n, k]`` features from hidden states ``[n, d]``."""
        if self.variant == "centroid":
            return (h.float() @ self.direction).unsqueeze(-1)
        return h.float()

    def score(self, h: Any) -> Any:
        """Probability of harm ``[n]`` for hidden states ``[n, d]``."""
        return self.scorer.predict(self.features(h))

    def categories(self, h: Any) -> Any:
        """Cosine ``[n, n_categories]`` of each state with each category centroid."""
        import torch

        if not self.category_centroids:
            return torch.zeros((h.shape[0], 0))
        cents = torch.stack(list(self.category_centroids.values()))
        return torch.nn.functional.normalize(h.float(), dim=-1) @ cents.T

    def save(self, directory: Path) -> None:
        """Write ``latent.safetensors`` and ``latent.json`` (the shared artefact format)."""
        tensors = {"direction": self.direction, **self.scorer.tensors("scorer")}
        tensors.update(nest("category", self.category_centroids))
        meta: dict[str, Any] = {
            "layer": self.layer,
            "variant": self.variant,
            "threshold": self.threshold,
            "categories": list(self.category_centroids),
            "category_thresholds": self.category_thresholds,
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
                model_id=str(meta["model_id"]),
                weights_sha256=str(meta["weights_sha256"]),
                template_sha256=str(meta["template_sha256"]),
                meta=dict(meta.get("meta", {})),
                harmfulness=None if harm is None else direction_from_entries(t, harm, "harmfulness"),
            )


class LatentRing:
    """Ring reading the harmfulness representation at ``t_inst``.

    Args:
        model: The fitted artefacts.
        lm: Optional LoadedModel used to compute activations when the exchange has none.
    """

    name = "latent"
    stage: Stage = "input"

    def __init__(self, model: LatentGuardModel, lm: Any | None = None) -> None:
        self.model = model
        self.lm = lm
        self.reads: tuple[str, ...] = (hook_name(model.layer),)
        if lm is not None and lm.weights_sha256 != model.weights_sha256:
            raise InvalidInputError(
                f"this latent guard was built for {model.model_id}, not {lm.model_id}",
                hint="build a guard for this model: layerguard guard build --model ...",
            )

    def hidden(self, exchange: Exchange) -> Any:
        """The ``[d]`` state at t_inst: from the exchange, else one forward pass of the local model."""
        key = hook_name(self.model.layer)
        if exchange.activations and key in exchange.activations:
            return exchange.activations[key]
        if self.lm is None:
            raise InvalidInputError(
                "the latent ring needs the served model's activations",
                hint="serve with the local model backend, or give the ring a LoadedModel",
            )
        short = Exchange.model_validate({"messages": bounded_messages(exchange)})
        return latent_states(self.lm, [short], [self.model.layer])[0][key]

    def check(self, exchange: Exchange) -> RingVerdict:
        """Score the exchange; block at or above the calibrated (per-category) threshold.

        An empty last user message (and no activations given) is allowed with score 0.

        When an earlier ring decoded hidden text (``exchange.derived_texts``) and a local
        model is at hand, each plaintext also goes through the model once and the most
        harmful reading counts: an encoding that hides the request from the model's first
        reading does not hide it from this one.
        """
        t0 = time.perf_counter()
        key = hook_name(self.model.layer)
        if not (exchange.activations and key in exchange.activations) and not exchange.last_user.strip():
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
                states += [st[key].float() for st in latent_states(self.lm, extra, [self.model.layer])]
        scores = self.model.score(torch_stack(states)).tolist()
        best = max(range(len(scores)), key=lambda i: scores[i])
        verdict = self.verdict_from_state(states[best].unsqueeze(0), t0)
        if best > 0:
            verdict.explanation += " (on decoded text)"
            verdict.details["decoded_index"] = best - 1
        return verdict

    def verdict_from_state(self, h: Any, t0: float | None = None) -> RingVerdict:
        """The verdict for a hidden state ``[1, d]``."""
        t0 = time.perf_counter() if t0 is None else t0
        score = float(self.model.score(h)[0])
        cats = self.model.categories(h)[0].tolist()
        names = list(self.model.category_centroids)
        category = names[max(range(len(cats)), key=lambda i: cats[i])] if cats else None
        threshold = self.model.category_thresholds.get(category or "", self.model.threshold)
        decision: Decision = "block" if score >= threshold else "allow"
        return RingVerdict(
            ring=self.name,
            score=min(1.0, max(0.0, score)),
            decision=decision,
            category=category if decision == "block" else None,
            category_scores=dict(zip(names, (round(c, 4) for c in cats), strict=True)),
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=f"harmfulness {score:.3f} vs threshold {threshold:.3f} at layer {self.model.layer}"
            + (f" (nearest category {category})" if category else ""),
        )


def torch_stack(tensors: list[Any]) -> Any:
    """Stack ``[d]`` tensors into ``[n, d]``."""
    import torch

    return torch.stack(tensors)


def latent_states(lm: Any, exchanges: list[Exchange], layers: list[int], batch_size: int = 8) -> list[dict[str, Any]]:
    """Activation dicts (``blocks.{l}.resid_pre@t_inst`` -> ``[d]``) for exchanges, batched."""
    from layerguard.activations.capture import capture_activations
    from layerguard.activations.store import ActivationSet

    convs = [[{"role": m.role, "content": m.content} for m in ex.messages] for ex in exchanges]
    acts = capture_activations(lm, convs, layers=layers, positions=["t_inst"], batch_size=batch_size, progress=False)
    assert isinstance(acts, ActivationSet)
    return [
        {hook_name(layer): acts.at(f"blocks.{layer}.resid_pre", "t_inst")[i] for layer in layers}
        for i in range(len(exchanges))
    ]
