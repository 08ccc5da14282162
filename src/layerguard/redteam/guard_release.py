"""What a guard's release and its categories do, measured for ``guard eval``.

Release (see :class:`~layerguard.guard.rings.latent.Release`): the guard answers a request the
latent ring reads as harmless but the model leans to refuse, with the refusal direction
ablated. Measured on the model's own answers: of the benign prompts the model refused, how
many the guard released and how many of those got an answer (not a refusal, by the refusal
judge); the over-refusal of the bare model and of the guarded one on the same prompts; on
harmful prompts, how many were released (false release) and how many released answers the
harm judge finds harmful.

Categories: whether the category a block carries is the prompt's own hazard category.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from layerguard.guard.guarded import GuardedModel, Outcome
from layerguard.guard.types import Exchange, Message
from layerguard.stats import rate


def _exchange(conv: list[dict[str, str]]) -> Exchange:
    return Exchange(messages=[Message(role=m["role"], content=m["content"]) for m in conv])  # type: ignore[arg-type]


def release_effect(
    guarded: GuardedModel,
    answered: dict[str, list[tuple[Any, str, bool]]],
    sets: dict[str, tuple[bool, list[Any]]],
    max_new_tokens: int,
    batch_size: int,
) -> dict[str, Any]:
    """Per answered set: bare and guarded refusal, and what release changed (see the module docstring).

    Args:
        guarded: The guard in front of the model.
        answered: Set -> (conversation, the model's own answer, refused by the judge).
        sets: Set -> (is_harmful, conversations).
        max_new_tokens: Length of released answers.
        batch_size: Requests per batch.
    """
    from layerguard.judges import harm_judge, refusal_judge

    out: dict[str, Any] = {"enabled": guarded.guard.release, "sets": {}}
    for name, rows in answered.items():
        harmful = sets[name][0]
        exchanges = [_exchange(c) for c, _, _ in rows]
        outcomes = guarded.score_many(exchanges, [a for _, a, _ in rows], batch_size=batch_size, record_all=False)
        rel = [i for i, o in enumerate(outcomes) if guarded.release_vector(o.input_verdict) is not None]
        new = guarded.answer_released(
            [exchanges[i] for i in rel], [outcomes[i] for i in rel], max_new_tokens, batch_size
        )
        final: list[tuple[bool, str]] = []  # (stopped by the guard, text the user gets)
        for i, o in enumerate(outcomes):
            final.append((o.decision != "allow", rows[i][1]))
        for i, a in zip(rel, new, strict=True):
            final[i] = (a.decision != "allow", a.text)
        prompts = [c[-1]["content"] for c, _, _ in rows]
        guarded_refused = [stop or refusal_judge(p, t).refused for (stop, t), p in zip(final, prompts, strict=True)]
        own = [r for _, _, r in rows]
        entry: dict[str, Any] = {
            "harmful": harmful,
            "n": len(rows),
            "refusal_bare": rate(own),
            "refusal_guarded": rate(guarded_refused),
            "released": rate([i in set(rel) for i in range(len(rows))]),
        }
        if harmful:
            entry["released_answers_harmful"] = rate(
                [harm_judge(prompts[i], final[i][1]).harmful and not final[i][0] for i in rel]
            )
        else:
            refused_idx = [i for i, r in enumerate(own) if r]
            entry["own_refusals"] = len(refused_idx)
            entry["own_refusals_released"] = rate([i in set(rel) for i in refused_idx])
            entry["own_refusals_answered"] = rate([not guarded_refused[i] for i in refused_idx])
            entry["guard_added_refusals"] = rate([guarded_refused[i] and not own[i] for i in range(len(rows))])
        out["sets"][name] = entry
    return out


def category_accuracy(outcomes: Sequence[Outcome], max_per_set: int | None, ring: str = "latent") -> dict[str, Any]:
    """Does the category a block carries name the prompt's hazard category? On the harmful val set.

    ``nearest``: the ring's nearest category for every prompt (accuracy per category and the
    confusion matrix); ``on_blocks``: the category the stack attached to its blocks (share of
    blocks with a category, and how many of those are right).
    """
    from layerguard.data.builtin import load_builtin
    from layerguard.data.samples import spread

    samples = load_builtin("harmful", "val")
    if max_per_set is not None and len(samples) > max_per_set:
        samples = spread(samples, max_per_set)
    if not outcomes or len(samples) != len(outcomes):
        return {}
    confusion: dict[str, Counter[str]] = {}
    right: list[bool] = []
    with_cat: list[bool] = []
    cat_right: list[bool] = []
    for s, o in zip(samples, outcomes, strict=True):
        v = next((r for r in o.verdict.rings if r.ring == ring), None)
        if v is not None and v.category_scores:
            guess = max(v.category_scores, key=lambda c: v.category_scores[c])
            confusion.setdefault(s.category, Counter())[guess] += 1
            right.append(guess == s.category)
        if o.decision != "allow":
            with_cat.append(o.verdict.category is not None)
            if o.verdict.category is not None:
                cat_right.append(o.verdict.category == s.category)
    per_cat = {c: round(cnt[c] / max(1, sum(cnt.values())), 4) for c, cnt in sorted(confusion.items())}
    return {
        "ring": ring,
        "nearest": {
            "accuracy": rate(right),
            "per_category": per_cat,
            "confusion": {c: dict(cnt) for c, cnt in sorted(confusion.items())},
        },
        "on_blocks": {"with_category": rate(with_cat), "correct": rate(cat_right)},
    }
