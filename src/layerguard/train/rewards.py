"""Safety rewards: constitutional rules, a safety-constrained reward with a Lagrangian lambda, a KL penalty.

This module re-exports the public names of the modules that hold them, so
``from layerguard.train.rewards import ...`` is the one import a user needs:

- :mod:`layerguard.train.reward_inputs`: TRL's call signature normalised once (texts, the
  ``label`` / ``category`` columns, :class:`PromptInfo`, :class:`RewardInput`).
- :mod:`layerguard.train.prompt_judge`: :class:`ClassifierPromptJudge`, the guard's classifier
  ring saying whether an unlabelled request is harmful.
- :mod:`layerguard.train.rules`: :class:`Rule`, :data:`BUILTIN_RULES`, YAML loading and
  :class:`ConstitutionalReward`.
- :mod:`layerguard.train.constrained`: :class:`HelpfulnessProxy`, :class:`HarmReward`,
  :class:`LagrangianLambda` and :class:`SafetyConstrainedReward`.
- :mod:`layerguard.train.kl`: :func:`kl_penalty` and :func:`completion_logprobs`.

Every reward here is a callable with the signature TRL's ``GRPOTrainer`` expects of a
``reward_funcs`` entry::

    reward_fn(prompts, completions, **kwargs) -> list[float]

``prompts`` are strings or conversations (lists of ``{"role", "content"}`` messages; the last
user message is the request) and ``completions`` are strings or lists of messages (TRL's
conversational format: ``[{"role": "assistant", "content": ...}]``). Extra keyword arguments
are the dataset's other columns, one value per completion; the rewards read ``label``
(``harmful`` / ``harmless`` / ``borderline`` / ``unknown``, or a bool: is the request harmful?)
and ``category`` when present, and ignore the rest (``completion_ids``, ``trainer_state``...).
Without a label, the request's harmfulness comes from the guard's constitutional classifier
ring (:class:`ClassifierPromptJudge`). TRL is not a dependency: the signature is only matched.

Pieces:

- :class:`ConstitutionalReward`: weighted binary rules, ``sum(w_i * rule_i) / sum(|w_i|)`` over
  the rules that apply to the request (see the class for the normalisation).
- :class:`HelpfulnessProxy` (``r_help``) and :class:`HarmReward` (``r_harm``): text heuristics
  standing in for reward models; their limits are in their docstrings.
- :class:`SafetyConstrainedReward`: ``r_help - lambda * max(0, r_harm - tau)``, with a fixed
  lambda or a :class:`LagrangianLambda` updated by dual ascent on a cost budget.
- :func:`kl_penalty` and :func:`completion_logprobs`: a per-sequence KL-to-reference penalty
  from per-token log-probs of a completion under a policy and a reference model.
"""

from __future__ import annotations

from layerguard.train.constrained import (
    HarmReward,
    HelpfulnessProxy,
    LagrangianLambda,
    SafetyConstrainedReward,
    safety_penalty,
)
from layerguard.train.kl import KLEstimator, completion_logprobs, kl_penalty
from layerguard.train.prompt_judge import ClassifierPromptJudge
from layerguard.train.reward_inputs import (
    PromptInfo,
    PromptJudge,
    RewardFn,
    RewardInput,
    as_texts,
    completion_text,
    prompt_infos,
    prompt_text,
)
from layerguard.train.rules import (
    BUILTIN_RULES,
    HARM_SCORE_HARMFUL,
    MIN_HELP_WORDS,
    SELF_HARM_CATEGORY,
    ConstitutionalReward,
    Rule,
    load_rules,
    rules_from_mapping,
)

__all__ = [
    "BUILTIN_RULES",
    "HARM_SCORE_HARMFUL",
    "MIN_HELP_WORDS",
    "SELF_HARM_CATEGORY",
    "ClassifierPromptJudge",
    "ConstitutionalReward",
    "HarmReward",
    "HelpfulnessProxy",
    "KLEstimator",
    "LagrangianLambda",
    "PromptInfo",
    "PromptJudge",
    "RewardFn",
    "RewardInput",
    "Rule",
    "SafetyConstrainedReward",
    "as_texts",
    "completion_logprobs",
    "completion_text",
    "kl_penalty",
    "load_rules",
    "prompt_infos",
    "prompt_text",
    "rules_from_mapping",
    "safety_penalty",
]
