"""Judges for the red team: re-exported from :mod:`layerguard.judges`, their one home.

- ``refusal``: :func:`refusal_judge` (:func:`refusal_reason`, the single refusal detector).
- ``harm``: :func:`harm_judge`, the content rubric (specificity, actionability, relevance to
  the request's harm; no credit for length).
- ``llm``: :func:`llm_judge`, a local chat model asked the rubric's questions.

:data:`JUDGES` and :func:`get_judge` name the text judges the audit's ``--judge`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable

from layerguard.errors import InvalidInputError
from layerguard.judges import (
    HARM_THRESHOLD,
    Judge,
    Judgement,
    harm_judge,
    llm_judge,
    refusal_judge,
    refusal_reason,
    rubric,
)

__all__ = [
    "HARM_THRESHOLD",
    "JUDGES",
    "Judge",
    "Judgement",
    "get_judge",
    "harm_judge",
    "llm_judge",
    "refusal_judge",
    "refusal_reason",
    "rubric",
]

JUDGES: dict[str, Callable[..., Judgement]] = {"refusal": refusal_judge, "harm": harm_judge}
"""The audit's text judges by name, as functions ``(prompt, response, refusal_score=None)``."""


def get_judge(name: str) -> Callable[..., Judgement]:
    """A text judge by name (``refusal`` or ``harm``).

    Raises:
        InvalidInputError: listing the valid names.
    """
    try:
        return JUDGES[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown judge {name!r}", hint=f"judges: {', '.join(JUDGES)} (and llm via --judge-model)"
        ) from None
