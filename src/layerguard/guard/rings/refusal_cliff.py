"""Refusal-cliff signal: halt when refusal intention on a harmful-looking prompt collapses.

A linear probe for the model's intention to refuse (trained on the model's own refused vs
complied prompts, see :mod:`layerguard.lab.cliff`) is read at every token. A prompt that
the model recognises as harmful drives the probe high on the instruction and the
template tokens after it; when a jailbreak works, the intention can fall away just before
or as the answer starts (the "refusal cliff"). The signal keeps the peak intention seen
so far (primed with the prompt's post-instruction states when the caller has them) and a
moving average of the current intention; its score is the drop ``peak - current`` when
the peak was high enough, else 0. Higher = more suspicious, in [0, 1].

:class:`RefusalCliffSignal` mirrors the output monitor's streaming interface
(``layer``, ``threshold``, ``min_tokens``, ``start()``, ``update(state, h)``) plus
:meth:`RefusalCliffSignal.prime`; :class:`RefusalCliffRing` scores a finished exchange
with one teacher-forced pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.activations.hooks import HookPoint, read_name, residual_hooks
from layerguard.errors import TemplateError
from layerguard.guard.artefacts import load_tensors, reading, save_tensors
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.output_monitor import AnswerRing
from layerguard.guard.types import Exchange, bounded_messages

STEM = "refusal_cliff"
KIND = "refusal_cliff"


@dataclass
class PromptResponseStates:
    """Hidden states ``[T, d]`` at one layer over prompt + response, and where things are."""

    states: Any  # [n_prompt + n_response, d_model]
    n_prompt: int  # rendered prompt tokens (template included); the response starts here
    t_inst: int | None  # last instruction token (None when the template could not be parsed)
    instruction: tuple[int, int] | None


def prompt_response_states(lm: Any, conversation: Any, response: str, layer: int) -> PromptResponseStates:
    """Teacher-forced ``resid_pre`` states at ``layer`` for every token of prompt and response.

    The state at a position is what the model holds after reading that token, so the last
    prompt token's state is the one that decides the first answer token.
    """
    import torch

    try:
        pp = lm.encode(conversation)
        t_inst, span = pp.t_inst, pp.instruction
    except TemplateError:
        pp = lm.encode(conversation, find_instruction=False)
        t_inst, span = None, None
    resp = lm.tokenizer(response, add_special_tokens=False)["input_ids"] if response else []
    got: dict[str, Any] = {}

    def read(hp: HookPoint, hidden: Any) -> None:
        got["h"] = hidden[0].detach().float()

    with torch.inference_mode(), residual_hooks(lm.layers, [HookPoint(layer, "resid_pre")], read):
        lm.model(input_ids=torch.tensor([list(pp.input_ids) + list(resp)]), logits_to_keep=1)
    return PromptResponseStates(got["h"], pp.n_tokens, t_inst, span)


@dataclass
class RefusalCliffSignal:
    """Probe, layer and calibrated drop threshold of the refusal-cliff signal.

    Attributes:
        layer: Residual-stream layer (``resid_pre``) the probe reads.
        probe: Logistic probe; ``predict(h)`` is the refusal intention in [0, 1].
        threshold: Score (drop from the peak) at which generation halts.
        min_peak: The peak intention must reach this for any drop to count (a prompt the
            model never meant to refuse cannot fall off a cliff).
        alpha: Weight of the newest token in the moving average of the current intention.
        min_tokens: Generated tokens before a halt is allowed.
        meta: Training statistics.
        provenance: The model (id, weights and template hashes) and data it was fitted on.
    """

    layer: int
    probe: LogisticProbe
    threshold: float
    min_peak: float = 0.5
    alpha: float = 0.5
    min_tokens: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def start(self) -> dict[str, Any]:
        """A fresh running state for one generation."""
        return {"peak": 0.0, "ema": None, "n": 0, "max": 0.0}

    def prime(self, state: dict[str, Any], prompt_states: Any) -> None:
        """Raise the peak with the prompt's states ``[k, d]`` (``t_inst`` and the template tokens after it)."""
        if len(prompt_states):
            p = self.probe.predict(prompt_states.float())
            state["peak"] = max(state["peak"], float(p.max()))

    def update(self, state: dict[str, Any], h: Any) -> float:
        """Add one generated token's hidden state ``[d]``; return the drop score in [0, 1]."""
        p = float(self.probe.predict(h.float().unsqueeze(0))[0])
        state["ema"] = p if state["ema"] is None else self.alpha * p + (1 - self.alpha) * state["ema"]
        state["n"] += 1
        score = state["peak"] - state["ema"] if state["peak"] >= self.min_peak else 0.0
        # the current intention also raises the peak, so a drop inside the answer counts too
        state["peak"] = max(state["peak"], state["ema"])
        score = min(1.0, max(0.0, score))
        if state["n"] >= self.min_tokens:
            state["max"] = max(state["max"], score)
        return score

    def score_states(self, prs: PromptResponseStates) -> float:
        """Highest score over a whole response, primed with the prompt's post-instruction states."""
        st = self.start()
        start = prs.t_inst if prs.t_inst is not None else prs.n_prompt - 1
        self.prime(st, prs.states[start : prs.n_prompt])
        for h in prs.states[prs.n_prompt :]:
            self.update(st, h)
        return float(st["max"])

    def save(self, directory: Path) -> None:
        """Write ``refusal_cliff.safetensors`` + ``refusal_cliff.json`` (the shared artefact format)."""
        meta = {
            "layer": self.layer,
            "threshold": self.threshold,
            "min_peak": self.min_peak,
            "alpha": self.alpha,
            "min_tokens": self.min_tokens,
            "meta": self.meta,
        }
        save_tensors(directory, STEM, KIND, self.probe.tensors(), meta, self.provenance)

    @classmethod
    def load(cls, directory: Path) -> RefusalCliffSignal:
        """Read what :meth:`save` wrote.

        Raises:
            InvalidInputError: the files are missing, of another kind or corrupt.
        """
        hint = "train one with `layerguard lab cliff`"
        art = load_tensors(directory, STEM, KIND, what="refusal-cliff signal", hint=hint)
        with reading("refusal-cliff signal", directory, hint):
            # format 0 stored the probe's tensors without a prefix
            probe = LogisticProbe.from_tensors(art.tensors) if art.version else LogisticProbe.from_state(art.tensors)
            m = art.meta
            return cls(
                int(m["layer"]),
                probe,
                float(m["threshold"]),
                float(m["min_peak"]),
                float(m["alpha"]),
                int(m["min_tokens"]),
                dict(m.get("meta", {})),
                art.provenance,
            )


class RefusalCliffRing(AnswerRing):
    """Scores a finished response (``exchange.response``) with the refusal-cliff signal."""

    name = "refusal_cliff"

    def __init__(self, signal: RefusalCliffSignal, lm: Any) -> None:
        self.signal = signal
        self.lm = lm
        self.reads = (read_name(signal.layer, "response"),)

    def stream_monitor(self) -> RefusalCliffSignal:
        """What a local backend runs token by token to halt an answer while it streams."""
        return self.signal

    def threshold(self) -> float:
        """The signal's calibrated threshold."""
        return self.signal.threshold

    def score_answer(self, exchange: Exchange) -> tuple[float, str]:
        """How far refusal intention fell from its peak over prompt + answer."""
        conv = bounded_messages(exchange)
        prs = prompt_response_states(self.lm, conv, (exchange.response or "")[:20_000], self.signal.layer)
        score = self.signal.score_states(prs)
        return score, f"refusal intention fell by {score:.3f} (threshold {self.signal.threshold:.3f})"
