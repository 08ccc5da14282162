"""Safety-constrained reward: ``r_help - lambda * max(0, r_harm - tau)``, with a fixed or a dual-ascent lambda.

- :class:`HelpfulnessProxy` (``r_help``) and :class:`HarmReward` (``r_harm``): text heuristics
  standing in for reward models; their limits are in their docstrings.
- :func:`safety_penalty`: the hinge penalty on harm above the tolerance ``tau``.
- :class:`LagrangianLambda`: the multiplier of the harm constraint, updated by projected dual
  ascent on a cost budget.
- :class:`SafetyConstrainedReward`: the combined reward in TRL's signature, with its components.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.train.reward_inputs import PairReward, RewardFn, RewardInput, as_texts

# --------------------------------------------------------------------------------------------
# r_help and r_harm without reward models
# --------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[a-z][a-z']{3,}")
_STOP = frozenset(
    "this that with from have what when where which your about would could should there their them they then than"
    " into some more most much many very just also like make does done been being were will shall can't cannot"
    " how's what's explain describe write tell give show list help please know want need".split()
)


def _content_words(text: str) -> set[str]:
    # a 5-letter stem so "poison"/"poisoning" and "cook"/"cooking" meet
    return {w[:5] for w in _WORD_RE.findall(text.lower()) if w not in _STOP}


class HelpfulnessProxy(PairReward):
    """``r_help`` in [0, 1] without a reward model: answered, long enough, on topic.

    ``0`` for a refusal (refusal judge) or an empty answer; otherwise
    ``0.5 * min(1, words / target_words) + 0.5 * min(1, 2 * overlap)``, where ``overlap``
    is the share of the request's content words (4+ letters, stopwords out, compared on a
    5-letter stem) that the answer repeats.

    Limits: it rewards answering and staying on the request's vocabulary, not being right;
    it cannot tell a correct recipe from a fluent wrong one, prefers longer answers up to
    ``target_words``, and treats a detailed answer to a harmful request as helpful (which
    is what ``r_harm`` is for). It needs no label.

    Args:
        target_words: Length at which the length term saturates.
    """

    def __init__(self, target_words: int = 40) -> None:
        super().__init__(None)
        if target_words < 1:
            raise InvalidInputError(f"target_words must be >= 1, got {target_words}")
        self.target_words = target_words

    def inputs(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[RewardInput]:
        ps, cs = as_texts(prompts, completions)  # no prompt label needed
        return [RewardInput(p, c) for p, c in zip(ps, cs, strict=True)]

    def score(self, x: RewardInput) -> float:
        if x.refused:
            return 0.0
        asked = _content_words(x.prompt)
        overlap = len(asked & _content_words(x.completion)) / len(asked) if asked else 1.0
        return 0.5 * min(1.0, x.words / self.target_words) + 0.5 * min(1.0, 2 * overlap)


class HarmReward(PairReward):
    """``r_harm`` in [0, 1]: the harm rubric of the answer, counted only for harmful requests.

    ``harmful(prompt) * harm_judge(prompt, completion).score``: the StrongREJECT-style
    rubric (0 for a refusal; otherwise specificity and convincingness from steps,
    quantities, code and length) measures how usable an answer is, which is harm only when
    the request is harmful: a detailed bread recipe is not. ``harmful(prompt)`` is the
    ``label`` column when given, else the prompt judge's verdict (0 or 1).

    Limits: the rubric reads form, not content (a numbered list of harmless generalities
    scores as specific; a dangerous one-liner scores low); a wrong prompt verdict moves the
    whole score (a missed harmful request costs nothing; a flagged benign one is penalised
    for being detailed).

    Args:
        prompt_judge: For unlabelled requests (e.g. :meth:`ClassifierPromptJudge.load`).
    """

    def score(self, x: RewardInput) -> float:
        return float(x.harm.score) if x.info.harmful else 0.0


# --------------------------------------------------------------------------------------------
# Safety-constrained reward and its Lagrangian multiplier
# --------------------------------------------------------------------------------------------


def safety_penalty(r_harm: float, tau: float, lam: float) -> float:
    """``lam * max(0, r_harm - tau)``: zero while the harm stays within the tolerance ``tau``."""
    return lam * max(0.0, r_harm - tau)


@dataclass
class LagrangianLambda:
    """The multiplier of the harm constraint ``E[cost] <= budget``, by projected dual ascent.

    ``lam <- max(0, lam + lr * (mean(cost) - budget))``: it grows while the constraint is
    violated and shrinks (never below 0) while there is slack. Every update is recorded.

    Args:
        value: The initial lambda (>= 0).
        lr: Dual step size ``eta`` (> 0).
        budget: The allowed mean cost.
    """

    value: float = 0.0
    lr: float = 0.1
    budget: float = 0.05
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, v in (("value", self.value), ("lr", self.lr), ("budget", self.budget)):
            if not math.isfinite(v):
                raise InvalidInputError(f"LagrangianLambda {name} must be finite, got {v}")
        if self.value < 0:
            raise InvalidInputError(f"the initial lambda must be >= 0, got {self.value}", hint="start at 0 or above")
        if self.lr <= 0:
            raise InvalidInputError(f"the dual step size lr must be > 0, got {self.lr}")

    def update(self, costs: float | Sequence[float]) -> float:
        """One dual-ascent step on a batch's costs; returns the new lambda.

        Raises:
            InvalidInputError: no costs, or a cost that is not a finite number.
        """
        batch = [float(costs)] if isinstance(costs, int | float) else [float(c) for c in costs]
        if not batch or not all(math.isfinite(c) for c in batch):
            raise InvalidInputError(
                f"dual update needs a non-empty list of finite costs, got {batch[:5]}",
                hint="pass the batch's per-sample costs (e.g. r_harm of the chosen completions)",
            )
        mean = sum(batch) / len(batch)
        before = self.value
        self.value = max(0.0, before + self.lr * (mean - self.budget))
        self.history.append(
            {"step": len(self.history) + 1, "mean_cost": mean, "lambda_before": before, "lambda": self.value}
        )
        return self.value


class SafetyConstrainedReward:
    """``r = r_help - lambda * max(0, r_harm - tau)``, a reward function in TRL's signature.

    Args:
        r_help: Helpfulness reward function (e.g. :class:`HelpfulnessProxy`).
        r_harm: Harm reward function in [0, 1] (e.g. :class:`HarmReward`).
        tau: Harm tolerated before any penalty.
        lam: A fixed lambda (>= 0), or a :class:`LagrangianLambda` read at every call
            (update it from the batch's costs, e.g. ``lam.update(components["harm"])``).

    Raises:
        InvalidInputError: a negative lambda or a non-finite tau.
    """

    def __init__(self, r_help: RewardFn, r_harm: RewardFn, tau: float = 0.1, lam: float | LagrangianLambda = 10.0):
        if not math.isfinite(tau):
            raise InvalidInputError(f"tau must be finite, got {tau}")
        if isinstance(lam, int | float) and (not math.isfinite(lam) or lam < 0):
            raise InvalidInputError(f"lambda must be a finite number >= 0, got {lam}")
        self.r_help, self.r_harm, self.tau, self.lam = r_help, r_harm, tau, lam
        self.__name__ = type(self).__name__  # TRL logs each reward function under its __name__

    @property
    def lam_value(self) -> float:
        """The lambda in force."""
        return self.lam.value if isinstance(self.lam, LagrangianLambda) else float(self.lam)

    def components(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> dict[str, list[float]]:
        """``help``, ``harm``, ``penalty`` and ``reward`` per completion."""
        as_texts(prompts, completions)  # fail on mismatched lengths before running either reward
        help_ = [float(v) for v in self.r_help(prompts, completions, **kwargs)]
        harm = [float(v) for v in self.r_harm(prompts, completions, **kwargs)]
        if len(help_) != len(completions) or len(harm) != len(completions):
            raise InvalidInputError(
                f"r_help gave {len(help_)} and r_harm {len(harm)} values for {len(completions)} completions",
                hint="each reward function must return one value per completion",
            )
        lam = self.lam_value
        pen = [safety_penalty(h, self.tau, lam) for h in harm]
        return {"help": help_, "harm": harm, "penalty": pen, "reward": [h - p for h, p in zip(help_, pen, strict=True)]}

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """One reward per completion (TRL ``reward_funcs`` signature)."""
        return self.components(prompts, completions, **kwargs)["reward"]
