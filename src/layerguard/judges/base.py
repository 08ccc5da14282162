"""The judge protocol, its verdict type and the registry of judges.

A judge reads one model answer and says whether it refused and whether it is harmful. Every
judge has the same shape, :class:`Judge`: one method ``judge(sample_or_prompt, response)``
returning a :class:`Judgement`. Judges are registered by name with :func:`register_judge`
(a user's package can add its own the same way) and built with :func:`make_judge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError


class Judgement(BaseModel):
    """A judge's reading of one response.

    Attributes:
        refused: The answer refuses (or is empty).
        harmful: The answer gives usable harmful content.
        score: In [0, 1], higher = more harmful (0 for a refusal).
        method: Name of the judge that produced it (``refusal``, ``harm``, ``llm`` ...).
        explanation: One line saying why, for reports and debugging.
        details: The judge's features (scores, matched cues), JSON-serialisable.
    """

    model_config = ConfigDict(frozen=True)

    refused: bool
    harmful: bool
    score: float = Field(ge=0.0, le=1.0)
    method: str
    explanation: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


SampleOrPrompt = Sample | str


@runtime_checkable
class Judge(Protocol):
    """Anything that judges one answer to one request."""

    def judge(self, sample_or_prompt: SampleOrPrompt, response: str) -> Judgement:
        """Judge ``response`` as an answer to ``sample_or_prompt`` (a :class:`Sample` or the prompt text)."""
        ...


def prompt_text(sample_or_prompt: SampleOrPrompt) -> str:
    """The request's text: the prompt of a :class:`Sample`, or the string itself."""
    return sample_or_prompt.prompt if isinstance(sample_or_prompt, Sample) else str(sample_or_prompt)


@dataclass(frozen=True)
class JudgeEntry:
    """A registered judge: how to build it and what it needs.

    Attributes:
        name: Registry name (``refusal``, ``harm``, ``llm``).
        factory: Called with keyword arguments to build the judge.
        needs_model: The factory needs ``lm=`` (a loaded chat model).
        doc: The first paragraph of the factory's docstring.
    """

    name: str
    factory: Callable[..., Judge]
    needs_model: bool = False
    doc: str = ""


REGISTRY: dict[str, JudgeEntry] = {}
"""Registered judges by name (filled by :func:`register_judge`)."""


def register_judge(name: str, *, needs_model: bool = False) -> Callable[[Callable[..., Judge]], Callable[..., Judge]]:
    """Decorator registering a judge class (or a factory returning a judge) under ``name``.

    A user's package extends the registry by importing this decorator and applying it to its
    own judge class; :func:`make_judge` then builds it by name.

    Args:
        name: Registry name; registering a name twice replaces the earlier judge.
        needs_model: The factory takes a loaded chat model as ``lm=``.
    """

    def deco(factory: Callable[..., Judge]) -> Callable[..., Judge]:
        doc = (factory.__doc__ or "").strip().split("\n\n")[0]
        REGISTRY[name] = JudgeEntry(name, factory, needs_model, doc)
        return factory

    return deco


def judge_names() -> list[str]:
    """The registered judge names, sorted."""
    return sorted(REGISTRY)


def make_judge(name: str, **kwargs: Any) -> Judge:
    """Build a registered judge by name.

    Args:
        name: A name of :func:`judge_names`.
        **kwargs: Passed to the judge's factory (``lm=`` for judges that need a model).

    Raises:
        InvalidInputError: unknown name (the message lists the valid ones), or a judge that
            needs a model built without ``lm=``.
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise InvalidInputError(f"unknown judge {name!r}", hint=f"judges: {', '.join(judge_names())}")
    if entry.needs_model and kwargs.get("lm") is None:
        raise InvalidInputError(
            f"the {name} judge needs a chat model", hint="pass lm=load_model(...) (CLI: --judge-model)"
        )
    return entry.factory(**kwargs)
