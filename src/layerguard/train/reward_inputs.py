"""What every reward receives: TRL's call signature, normalised once and shared by all the rewards.

TRL's ``GRPOTrainer`` calls a ``reward_funcs`` entry as ``reward_fn(prompts, completions, **kwargs)``.
``prompts`` are strings or conversations (the last user message is the request), ``completions``
strings or lists of assistant messages, and the keyword arguments are the dataset's other
columns, one value per completion. This module holds:

- text normalisation (:func:`prompt_text`, :func:`completion_text`, :func:`as_texts`, which also
  checks that prompts and completions pair up one to one);
- the request's harmfulness (:class:`PromptInfo`) from the ``label`` / ``category`` columns, else
  a :class:`PromptJudge` (:func:`prompt_infos`);
- :class:`RewardInput`, one (request, completion) pair whose judgements run lazily and once;
- :class:`PairReward`, the base of the rewards that score one pair at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from layerguard.errors import InvalidInputError
from layerguard.judges import Judgement, harm_judge, refusal_judge

RewardFn = Callable[..., list[float]]
"""A reward function in TRL's convention: ``(prompts, completions, **kwargs) -> list[float]``."""

# --------------------------------------------------------------------------------------------
# Inputs: TRL's standard and conversational formats
# --------------------------------------------------------------------------------------------


def _content(message: Any, where: str) -> str:
    if not isinstance(message, Mapping) or not isinstance(message.get("content", ""), str):
        raise InvalidInputError(
            f"{where}: a message must be a mapping with a string 'content', got {message!r:.80}",
            hint='pass strings, or conversations like [{"role": "user", "content": "..."}]',
        )
    return str(message.get("content", ""))


def prompt_text(prompt: Any, where: str = "prompt") -> str:
    """The request of a prompt: the string itself, or the last user message of a conversation.

    Raises:
        InvalidInputError: neither a string nor a list of messages.
    """
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        texts = [(m.get("role"), _content(m, where)) for m in prompt if isinstance(m, Mapping)]
        if len(texts) != len(prompt):
            _content(next(m for m in prompt if not isinstance(m, Mapping)), where)
        users = [t for role, t in texts if role == "user"]
        return users[-1] if users else (texts[-1][1] if texts else "")
    raise InvalidInputError(
        f"{where}: expected a string or a list of messages, got {type(prompt).__name__}",
        hint='pass strings, or conversations like [{"role": "user", "content": "..."}]',
    )


def completion_text(completion: Any, where: str = "completion") -> str:
    """The text of a completion: the string itself, or its messages' contents joined (TRL's conversational form).

    Raises:
        InvalidInputError: neither a string nor a list of messages.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        own = [m for m in completion if not isinstance(m, Mapping) or m.get("role", "assistant") == "assistant"]
        return "\n".join(_content(m, where) for m in own)
    raise InvalidInputError(
        f"{where}: expected a string or a list of messages, got {type(completion).__name__}",
        hint='TRL passes completions as strings or as [{"role": "assistant", "content": "..."}]',
    )


def as_texts(prompts: Sequence[Any], completions: Sequence[Any]) -> tuple[list[str], list[str]]:
    """Prompts and completions as plain texts, checked to pair up one to one.

    Raises:
        InvalidInputError: the lengths differ, or an item is neither text nor messages.
    """
    if isinstance(prompts, str) or isinstance(completions, str):
        raise InvalidInputError(
            "prompts and completions must be lists (one entry per completion), got a bare string",
            hint="wrap a single example: reward([prompt], [completion])",
        )
    if len(prompts) != len(completions):
        raise InvalidInputError(
            f"{len(prompts)} prompts but {len(completions)} completions",
            hint="pass one prompt per completion (TRL repeats each prompt once per generation)",
        )
    return (
        [prompt_text(p, f"prompts[{i}]") for i, p in enumerate(prompts)],
        [completion_text(c, f"completions[{i}]") for i, c in enumerate(completions)],
    )


def _column(kwargs: Mapping[str, Any], key: str, n: int) -> list[Any] | None:
    """A dataset column passed by TRL as a keyword (one value per completion), checked for length."""
    value = kwargs.get(key)
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value] * n  # one value for the whole batch
    if len(value) != n:
        raise InvalidInputError(
            f"the {key!r} column has {len(value)} values for {n} completions",
            hint=f"pass one {key} per completion (repeat a prompt's {key} for each of its generations)",
        )
    return list(value)


# --------------------------------------------------------------------------------------------
# Is the request harmful? A label, else a prompt judge (e.g. the classifier ring)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptInfo:
    """What the rewards know about a request.

    Attributes:
        harmful: Whether the request should be refused.
        score: Probability-like harmfulness in [0, 1] (1.0/0.0 for a label).
        category: Hazard category (MLCommons name) if known.
        source: ``label`` or ``classifier``.
    """

    harmful: bool
    score: float
    category: str | None = None
    source: str = "label"


class PromptJudge(Protocol):
    """Judges requests without a label: ``judge(prompts) -> list[PromptInfo]``."""

    def __call__(self, prompts: Sequence[str]) -> list[PromptInfo]:
        """One :class:`PromptInfo` per prompt."""
        ...


_LABELS = {"harmful": True, "harmless": False, "borderline": False, "benign": False}


def _label_info(label: Any, category: Any) -> PromptInfo | None:
    cat = category if isinstance(category, str) and category else None
    if isinstance(label, bool):
        return PromptInfo(label, float(label), cat)
    if isinstance(label, str) and label.lower() in _LABELS:
        harmful = _LABELS[label.lower()]
        return PromptInfo(harmful, float(harmful), cat)
    if label is None or (isinstance(label, str) and label.lower() in ("", "unknown")):
        return None
    raise InvalidInputError(
        f"unknown prompt label {label!r}",
        hint="labels are harmful, harmless, borderline, unknown, or a bool (True = harmful)",
    )


def prompt_infos(prompts: Sequence[str], kwargs: Mapping[str, Any], judge: PromptJudge | None) -> list[PromptInfo]:
    """Harmfulness of each request: the ``label`` column where given, else the judge.

    Raises:
        InvalidInputError: an unlabelled request and no judge, or a malformed column.
    """
    n = len(prompts)
    labels = _column(kwargs, "label", n) or [None] * n
    cats = _column(kwargs, "category", n) or [None] * n
    infos = [_label_info(lab, cat) for lab, cat in zip(labels, cats, strict=True)]
    missing = [i for i, info in enumerate(infos) if info is None]
    if missing:
        if judge is None:
            raise InvalidInputError(
                f"{len(missing)} of {n} prompts have no label and no prompt judge was given",
                hint="pass label=[...] (a dataset column in TRL) or prompt_judge=ClassifierPromptJudge.load()",
            )
        judged = judge([prompts[i] for i in missing])
        for i, info in zip(missing, judged, strict=True):
            # a given category (e.g. from the dataset) wins over the classifier's nearest one
            infos[i] = PromptInfo(info.harmful, info.score, cats[i] or info.category, info.source)
    return [i for i in infos if i is not None]


# --------------------------------------------------------------------------------------------
# One (prompt, completion) pair with its judgements, computed once
# --------------------------------------------------------------------------------------------


@dataclass
class RewardInput:
    """One request and completion; the judges run lazily and once.

    Attributes:
        prompt: The request text.
        completion: The completion text.
        info: Whether the request is harmful, and its category.
    """

    prompt: str
    completion: str
    info: PromptInfo = field(default_factory=lambda: PromptInfo(False, 0.0))

    @cached_property
    def refusal(self) -> Judgement:
        """:func:`layerguard.redteam.judges.refusal_judge` of the completion."""
        return refusal_judge(self.prompt, self.completion)

    @cached_property
    def harm(self) -> Judgement:
        """:func:`layerguard.redteam.judges.harm_judge` (StrongREJECT-style rubric) of the completion."""
        return harm_judge(self.prompt, self.completion)

    @property
    def refused(self) -> bool:
        """Refused, or empty."""
        return self.refusal.refused or not self.completion.strip()

    @property
    def words(self) -> int:
        return len(self.completion.split())

    @property
    def self_harm(self) -> bool:
        """A harmful request in the self-harm category."""
        cat = (self.info.category or "").lower()
        return self.info.harmful and ("self_harm" in cat or "suicide" in cat)


# --------------------------------------------------------------------------------------------
# The base of the per-pair rewards
# --------------------------------------------------------------------------------------------


class PairReward:
    """Shared plumbing: TRL-style call -> texts + prompt infos -> one score per pair.

    Subclasses define :meth:`score`; the instance is a reward function in TRL's signature.

    Args:
        prompt_judge: Says whether unlabelled requests are harmful (None: every call needs a
            ``label`` column).
    """

    def __init__(self, prompt_judge: PromptJudge | None = None) -> None:
        self.prompt_judge = prompt_judge
        self.__name__ = type(self).__name__  # TRL logs each reward function under its __name__

    def inputs(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[RewardInput]:
        """The pairs, with the harmfulness of each request (label column, else the prompt judge)."""
        ps, cs = as_texts(prompts, completions)
        infos = prompt_infos(ps, kwargs, self.prompt_judge)
        return [RewardInput(p, c, i) for p, c, i in zip(ps, cs, infos, strict=True)]

    def score(self, x: RewardInput) -> float:
        """The reward of one pair (defined by each subclass)."""
        raise NotImplementedError

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """One reward per completion (TRL ``reward_funcs`` signature)."""
        return [self.score(x) for x in self.inputs(prompts, completions, **kwargs)]
