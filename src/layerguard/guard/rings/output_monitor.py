"""Output monitor (circuit breaker): a probe on each generated token's hidden state.

During generation the local backend feeds every new token's residual stream (at the
monitor's layer) to :meth:`OutputMonitor.update`, which keeps an exponential moving
average of the probe's probability that the answer is harmful; when it crosses the
calibrated threshold, generation halts and a safe completion is returned. The ring form
scores a finished response the same way (one teacher-forced pass).

The probe is trained on the model's own answers: answers to harmful prompts that it did
not refuse are positives; answers to harmless and borderline-benign prompts and refusals are
negatives. A halt is *debounced*: the running score must stay at or above the threshold for
``debounce`` consecutive tokens (as streaming guards such as Qwen3Guard-Stream do), so one
alarming word in a benign answer ("kill the process", "bleach") does not stop it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.activations.hooks import HookPoint, read_name, residual_hooks
from layerguard.errors import InvalidInputError
from layerguard.guard.artefacts import load_tensors, provenance_of, reading, save_tensors
from layerguard.guard.calibration import threshold_for_fpr
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.types import Decision, Exchange, RingVerdict, Stage, bounded_messages

STEM = "monitor"
KIND = "output_monitor"


@dataclass
class OutputMonitor:
    """The fitted monitor: layer, token probe, EMA rate, threshold and minimum tokens before a halt.

    ``provenance`` names the model (id, weights and template hashes) and the prompts
    (``data_sha256``) it was fitted on; it is written with the monitor.
    """

    layer: int
    probe: LogisticProbe
    threshold: float
    alpha: float = 0.3
    min_tokens: int = 4
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # model and data it was fitted on
    debounce: int = 1  # consecutive tokens the running score must stay over the threshold

    def start(self) -> dict[str, Any]:
        """A fresh running state for one generation."""
        return {"ema": None, "n": 0, "max": 0.0, "recent": []}

    def update(self, state: dict[str, Any], h: Any) -> float:
        """Add one token's hidden state ``[d]``; return the debounced running score in [0, 1].

        The returned score is the lowest EMA of the last ``debounce`` tokens: it reaches the
        threshold only when the EMA has stayed there for ``debounce`` tokens in a row.
        """
        p = float(self.probe.predict(h.float().unsqueeze(0))[0])
        state["ema"] = p if state["ema"] is None else self.alpha * p + (1 - self.alpha) * state["ema"]
        state["n"] += 1
        recent = state.setdefault("recent", [])
        recent.append(float(state["ema"]))
        del recent[: -max(1, self.debounce)]
        score = min(recent) if len(recent) >= max(1, self.debounce) else 0.0
        if state["n"] >= self.min_tokens:
            state["max"] = max(state["max"], score)
        return score

    def trace(self, token_states: Any) -> list[float]:
        """Running scores for a whole response ``[T, d]``."""
        st = self.start()
        return [self.update(st, h) for h in token_states]

    def response_score(self, token_states: Any) -> float:
        """The highest running score after ``min_tokens`` (what decides a halt)."""
        tr = self.trace(token_states)
        return max(tr[self.min_tokens - 1 :], default=0.0)

    def save(self, directory: Path) -> None:
        """Write ``monitor.safetensors`` + ``monitor.json`` (the shared artefact format)."""
        meta = {
            "layer": self.layer,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "min_tokens": self.min_tokens,
            "debounce": self.debounce,
            "meta": self.meta,
        }
        save_tensors(directory, STEM, KIND, self.probe.tensors(), meta, self.provenance)

    @classmethod
    def load(cls, directory: Path) -> OutputMonitor:
        """Read what :meth:`save` wrote.

        Raises:
            InvalidInputError: the files are missing, of another kind or corrupt.
        """
        hint = "build with --output-monitor"
        art = load_tensors(directory, STEM, KIND, what="output monitor", hint=hint)
        with reading("output monitor", directory, hint):
            # format 0 stored the probe's tensors without a prefix
            probe = LogisticProbe.from_tensors(art.tensors) if art.version else LogisticProbe.from_state(art.tensors)
            m = art.meta
            return cls(
                int(m["layer"]),
                probe,
                float(m["threshold"]),
                float(m["alpha"]),
                int(m["min_tokens"]),
                dict(m.get("meta", {})),
                art.provenance,
                int(m.get("debounce", 1)),
            )


def response_states(lm: Any, prompt: Any, response: str, layer: int) -> Any:
    """Teacher-forced hidden states ``[T, d]`` of the response tokens at ``layer``."""
    import torch

    ids = lm.encode(prompt, find_instruction=False).input_ids
    resp = lm.tokenizer(response, add_special_tokens=False)["input_ids"]
    if not resp:
        return torch.zeros((0, lm.d_model))
    got: dict[str, Any] = {}

    def read(hp: HookPoint, hidden: Any) -> None:
        got["h"] = hidden[0].detach().float()

    # The state *entering* position t is what the model has after reading token t; the monitor
    # at generation time sees each new token as input, so read the response tokens' own positions.
    with torch.inference_mode(), residual_hooks(lm.layers, [HookPoint(layer, "resid_pre")], read):
        lm.model(input_ids=torch.tensor([ids + resp]), logits_to_keep=1)
    return got["h"][len(ids) :]


def build_output_monitor(
    lm: Any,
    harmful: Sequence[Any],
    benign: Sequence[Any],
    *,
    layer: int | None = None,
    max_new_tokens: int = 48,
    target_fpr: float = 0.05,
    tokens_per_response: int = 24,
    batch_size: int = 8,
    responses: tuple[list[str], list[str]] | None = None,
    progress: bool | None = None,
    folds: int = 5,
    debounce: int = 3,
) -> OutputMonitor:
    """Train and calibrate an output monitor on the model's own answers.

    Args:
        lm: The model.
        harmful: Harmful prompts (answers that do not refuse become positives).
        benign: Harmless prompts (their answers are negatives, as are refusals).
        layer: Layer to read (default: 60% of depth).
        max_new_tokens: Answer length generated for training.
        target_fpr: Share of benign answers allowed to trip the monitor.
        tokens_per_response: Tokens sampled from each answer for the probe.
        batch_size: Generation batch size.
        responses: Pre-generated (harmful, benign) answers; skips generation.
        progress: Show progress bars.
        folds: Folds (over answers) of the out-of-fold scores the threshold is calibrated on.
        debounce: Consecutive tokens over the threshold that a halt needs.

    Raises:
        InvalidInputError: when there are fewer than 2 positive or negative answers.
    """
    import torch

    from layerguard.directions.extract import data_hash
    from layerguard.directions.refusal import is_refusal_text
    from layerguard.models.generate import generate

    layer = int(0.6 * lm.n_layers) if layer is None else layer
    if responses is None:
        kw: dict[str, Any] = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "progress": progress}
        responses = (
            generate(lm, list(harmful), desc="harmful answers", **kw),
            generate(lm, list(benign), desc="benign answers", **kw),
        )
    h_ans, b_ans = responses
    pos = [(p, a) for p, a in zip(harmful, h_ans, strict=True) if a.strip() and not is_refusal_text(a)]
    neg = [(p, a) for p, a in zip(benign, b_ans, strict=True) if a.strip()]
    neg += [(p, a) for p, a in zip(harmful, h_ans, strict=True) if is_refusal_text(a)]
    if len(pos) < 2 or len(neg) < 2:
        raise InvalidInputError(
            f"the output monitor needs >= 2 harmful answers and >= 2 benign ones; got {len(pos)} and {len(neg)}",
            hint="use more harmful training prompts (the model refused nearly all of them)",
        )
    g = torch.Generator().manual_seed(0)
    states_pos = [response_states(lm, p, a, layer) for p, a in pos]
    states_neg = [response_states(lm, p, a, layer) for p, a in neg]

    def sample(states: list[Any]) -> Any:
        rows = []
        for s in states:
            if len(s) > tokens_per_response:
                s = s[torch.randperm(len(s), generator=g)[:tokens_per_response]]
            rows.append(s)
        return torch.cat(rows)

    def fit(pos_states: list[Any], neg_states: list[Any]) -> LogisticProbe:
        xp, xn = sample(pos_states), sample(neg_states)
        return LogisticProbe.fit(torch.cat([xp, xn]), torch.cat([torch.ones(len(xp)), torch.zeros(len(xn))]))

    # Calibrate on out-of-fold answers: a token probe scores the answers it was fitted on far
    # lower than new ones, and an in-sample threshold halts too many benign answers.
    k = max(2, min(folds, len(states_pos), len(states_neg)))
    pos_scores, neg_scores = [0.0] * len(states_pos), [0.0] * len(states_neg)
    for f in range(k):
        held_p = [i for i in range(len(states_pos)) if i % k == f]
        held_n = [i for i in range(len(states_neg)) if i % k == f]
        probe = fit(
            [x for i, x in enumerate(states_pos) if i % k != f], [x for i, x in enumerate(states_neg) if i % k != f]
        )
        fold = OutputMonitor(layer, probe, threshold=1.0, debounce=debounce)
        for i in held_p:
            pos_scores[i] = fold.response_score(states_pos[i])
        for i in held_n:
            neg_scores[i] = fold.response_score(states_neg[i])
    threshold = threshold_for_fpr(neg_scores, target_fpr)
    mon = OutputMonitor(layer, fit(states_pos, states_neg), threshold=threshold, debounce=debounce)
    mon.provenance = provenance_of(lm, data_sha256=data_hash(list(harmful), list(benign)))
    mon.meta = {
        "n_positive": len(pos),
        "n_negative": len(neg),
        "target_fpr": target_fpr,
        "calibration": f"{k}-fold out-of-fold answers",
        "debounce": debounce,
        "cv_tpr": sum(s >= mon.threshold for s in pos_scores) / len(pos_scores),
        "cv_fpr": sum(s >= mon.threshold for s in neg_scores) / len(neg_scores),
    }
    return mon


class AnswerRing:
    """Base of the rings that judge a finished answer (``exchange.response``).

    A subclass sets ``name`` and implements :meth:`score_answer` and :meth:`threshold`;
    without an answer there is nothing to judge and the verdict is ``allow``.
    """

    name = "answer"
    stage: Stage = "answer"  # run on the finished answer; while streaming, see stream_monitor
    reads: tuple[str, ...] = ()

    def threshold(self) -> float:
        """The score at which the ring blocks (read live, so a recalibrated model applies at once)."""
        raise NotImplementedError

    def score_answer(self, exchange: Exchange) -> tuple[float, str]:
        """The answer's score (higher = more harmful) and an explanation."""
        raise NotImplementedError

    def check(self, exchange: Exchange) -> RingVerdict:
        """Block when the answer's score reaches the threshold; allow without an answer."""
        t0 = time.perf_counter()
        if not exchange.response:
            return RingVerdict(
                ring=self.name,
                score=0.0,
                explanation="no response to score",
                latency_ms=(time.perf_counter() - t0) * 1000,
            )
        score, explanation = self.score_answer(exchange)
        decision: Decision = "block" if score >= self.threshold() else "allow"
        return RingVerdict(
            ring=self.name,
            score=min(1.0, max(0.0, score)),
            decision=decision,
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=explanation,
        )


class OutputMonitorRing(AnswerRing):
    """Scores a finished response (``exchange.response``) with the output monitor."""

    name = "output_monitor"

    def __init__(self, monitor: OutputMonitor, lm: Any) -> None:
        self.monitor = monitor
        self.lm = lm
        self.reads = (read_name(monitor.layer, "response"),)

    def stream_monitor(self) -> OutputMonitor:
        """What a local backend runs token by token to halt a harmful answer while it streams."""
        return self.monitor

    def threshold(self) -> float:
        """The monitor's calibrated threshold."""
        return self.monitor.threshold

    def score_answer(self, exchange: Exchange) -> tuple[float, str]:
        """The highest running score over the answer's tokens (what decides a halt while streaming)."""
        from layerguard.guard.states import response_key

        # states read by the caller's own pass (see layerguard.guard.states), else one pass here
        states = (exchange.activations or {}).get(response_key(self.monitor.layer))
        if states is None:
            conv = bounded_messages(exchange)
            states = response_states(self.lm, conv, (exchange.response or "")[:20_000], self.monitor.layer)
        score = self.monitor.response_score(states) if len(states) else 0.0
        return score, f"running harm score {score:.3f} vs threshold {self.monitor.threshold:.3f}"
