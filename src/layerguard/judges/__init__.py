"""Judges: whether a model's answer refused, and whether it is harmful.

One protocol (:class:`Judge`, one method ``judge(sample_or_prompt, response) -> Judgement``),
one refusal detector (:func:`is_refusal` / :func:`refusal_reason`) and a registry that a
user's package extends with :func:`register_judge`. Registered judges:

- ``refusal``: :class:`RefusalJudge`, refusal from the answer's text.
- ``harm``: :class:`RubricHarmJudge`, harm from the answer's content (specificity,
  actionability, relevance), never from its length.
- ``llm``: :class:`LLMJudge`, a local chat model asked the rubric's questions.

This package sits on a low floor (it imports only ``models``, ``data``, ``errors`` and
``stats``) so that directions, guard, train, redteam and lab share one notion of refusal.
"""

from layerguard.judges.base import (
    REGISTRY,
    Judge,
    JudgeEntry,
    Judgement,
    SampleOrPrompt,
    judge_names,
    make_judge,
    prompt_text,
    register_judge,
)
from layerguard.judges.llm import LLMJudge, llm_judge
from layerguard.judges.refusal import (
    RefusalJudge,
    find_refusal,
    is_refusal,
    refusal_judge,
    refusal_reason,
    visible_text,
)
from layerguard.judges.rubric import HARM_THRESHOLD, RubricHarmJudge, harm_judge, rubric

__all__ = [
    "HARM_THRESHOLD",
    "REGISTRY",
    "Judge",
    "JudgeEntry",
    "Judgement",
    "LLMJudge",
    "RefusalJudge",
    "RubricHarmJudge",
    "SampleOrPrompt",
    "find_refusal",
    "harm_judge",
    "is_refusal",
    "judge_names",
    "llm_judge",
    "make_judge",
    "prompt_text",
    "refusal_judge",
    "refusal_reason",
    "register_judge",
    "rubric",
    "visible_text",
]
