"""Refusal without generation: log-odds of the model's own refusal-opening tokens.

The token set is not a per-family list: the model answers the training prompts, the
project's one refusal detector (:func:`layerguard.judges.is_refusal`) marks which answers
are refusals, and the first tokens that open refusals (and
rarely open compliant answers) become the set. The score of a prompt is then
``log p(set) - log(1 - p(set))`` at the last prompt position: one forward pass, no
generation, and positive when the model is more likely than not to open with a refusal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.data.heldout import assert_not_held_out
from layerguard.errors import InvalidInputError
from layerguard.judges.refusal import find_refusal, is_refusal, refusal_reason
from layerguard.models.generate import generate, last_logits
from layerguard.models.handle import LoadedModel
from layerguard.models.templates import ConversationLike
from layerguard.stats import auroc

__all__ = [
    "RefusalTokens",
    "agreement",
    "derive_refusal_tokens",
    "find_refusal",
    "is_refusal",
    "is_refusal_text",
    "log_odds",
    "refusal_reason",
    "refusal_scores",
]

# The one refusal detector lives with the judges; these names stay importable from here.
is_refusal_text = is_refusal
"""Whether a response refuses: :func:`layerguard.judges.is_refusal` (the project's one refusal detector)."""


@dataclass(frozen=True)
class RefusalTokens:
    """Token ids whose appearance first signals a refusal, with how they were chosen."""

    ids: tuple[int, ...]
    strings: tuple[str, ...]
    stats: dict[str, Any] = field(default_factory=dict)


def derive_refusal_tokens(
    lm: LoadedModel,
    prompts: Sequence[ConversationLike],
    *,
    max_new_tokens: int = 24,
    min_count: int = 2,
    min_precision: float = 0.8,
    batch_size: int = 8,
    progress: bool | None = False,
    responses: Sequence[str] | None = None,
) -> RefusalTokens:
    """Derive the refusal-opening token set from the model's own answers.

    Args:
        lm: The model.
        prompts: Training prompts; include both harmful and harmless so that tokens that
            open every answer ("Sure", "Here") are excluded by their precision.
        max_new_tokens: Length of each generated answer used for judging.
        min_count: A token must open at least this many refusals.
        min_precision: Of the answers it opens, at least this share must be refusals.
        batch_size: Prompts per generation batch.
        progress: Show a progress bar.
        responses: Pre-generated answers (skips generation).

    Raises:
        InvalidInputError: if the model refused none of the prompts (nothing to learn from),
            or a prompt is held-out evaluation data
            (:func:`layerguard.data.heldout.assert_not_held_out`).
    """
    assert_not_held_out(prompts, "deriving refusal tokens")
    texts = (
        list(responses)
        if responses is not None
        else generate(
            lm, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress, desc="answering"
        )
    )
    refused = [is_refusal_text(t) for t in texts]
    first_ids = [_first_token(lm, t) for t in texts]
    open_refusal: Counter[int] = Counter(i for i, r in zip(first_ids, refused, strict=True) if r and i is not None)
    open_any: Counter[int] = Counter(i for i in first_ids if i is not None)
    chosen = sorted(
        (i for i, c in open_refusal.items() if c >= min_count and c / open_any[i] >= min_precision),
        key=lambda i: -open_refusal[i],
    )
    if not chosen:
        raise InvalidInputError(
            f"the model refused {sum(refused)} of {len(texts)} prompts; no token opens refusals "
            f"at least {min_count} times with precision >= {min_precision}",
            hint="use more (or more clearly harmful) training prompts, or lower min_count",
        )
    covered = sum(open_refusal[i] for i in chosen)
    stats = {
        "n_prompts": len(texts),
        "n_refused": sum(refused),
        "refusal_openings_covered": covered / max(1, sum(open_refusal.values())),
        "counts": {lm.tokenizer.decode([i]): [open_refusal[i], open_any[i]] for i in chosen},
    }
    return RefusalTokens(tuple(chosen), tuple(lm.tokenizer.decode([i]) for i in chosen), stats)


def _first_token(lm: LoadedModel, text: str) -> int | None:
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return int(ids[0]) if ids else None


def log_odds(logits: Any, token_ids: Sequence[int]) -> Any:
    """``log p(S) - log(1 - p(S))`` for the token set S, from logits ``[n, vocab]``."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    in_set = torch.logsumexp(logp[:, list(token_ids)], dim=-1)
    # log(1 - p) computed stably from log p
    out_set = torch.log1p(-in_set.exp().clamp(max=1 - 1e-7))
    return in_set - out_set


def refusal_scores(
    lm: LoadedModel,
    prompts: Sequence[ConversationLike],
    tokens: RefusalTokens,
    *,
    batch_size: int = 8,
    progress: bool | None = False,
) -> Any:
    """Refusal log-odds per prompt ``[n]`` (interventions active around the call apply)."""
    return log_odds(last_logits(lm, prompts, batch_size=batch_size, progress=progress), tokens.ids)


def agreement(scores: Sequence[float], refused: Sequence[bool]) -> dict[str, float]:
    """How well the score (threshold 0) agrees with judged generations: accuracy and AUROC."""
    if len(scores) != len(refused) or not scores:
        raise InvalidInputError("scores and judgements must be non-empty and of equal length")
    acc = sum((s > 0) == r for s, r in zip(scores, refused, strict=True)) / len(scores)
    return {
        "accuracy": acc,
        "auroc": auroc(
            [s for s, r in zip(scores, refused, strict=True) if r],
            [s for s, r in zip(scores, refused, strict=True) if not r],
        ),
    }
