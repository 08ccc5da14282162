"""KL to the reference model: a per-sequence penalty from per-token log-probs of a completion.

- :func:`kl_penalty`: ``beta * sum_t kl_t`` over completion tokens (``k1`` or ``k3`` estimator).
- :func:`completion_logprobs`: the per-token log-probs of completions after their prompts under
  a policy or a reference model, with the mask of real completion tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from layerguard.errors import InvalidInputError
from layerguard.train.reward_inputs import as_texts

KLEstimator = Literal["k1", "k3"]


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def kl_penalty(
    policy_logprobs: Any, ref_logprobs: Any, mask: Any = None, beta: float = 0.1, estimator: KLEstimator = "k1"
) -> Any:
    """Per-sequence KL-to-reference penalty ``beta * sum_t kl_t`` over completion tokens, ``[batch]``.

    With ``d_t = logp_policy(y_t) - logp_ref(y_t)`` at each sampled completion token:

    - ``k1``: ``kl_t = d_t``. Unbiased for KL(policy || ref) when the tokens are sampled from
      the policy; a single sequence's value can be negative.
    - ``k3``: ``kl_t = exp(-d_t) - 1 + d_t``. Also unbiased, never negative, lower variance
      (Schulman's estimator, as used by GRPO); equal to ``d_t^2 / 2`` to second order.

    Args:
        policy_logprobs: ``[batch, tokens]`` log-probs of the completion tokens under the policy.
        ref_logprobs: ``[batch, tokens]`` the same tokens under the reference model.
        mask: ``[batch, tokens]`` 1 for completion tokens, 0 for padding (default: all 1).
        beta: Penalty coefficient (>= 0).
        estimator: ``k1`` or ``k3``.

    Raises:
        InvalidInputError: shapes differ or are not 2-D, a bad estimator, or a negative beta.
    """
    import torch

    lp, lr = torch.as_tensor(policy_logprobs), torch.as_tensor(ref_logprobs)
    if lp.dim() != 2 or _shape(lp) != _shape(lr):
        raise InvalidInputError(
            f"policy log-probs {_shape(lp)} and reference log-probs {_shape(lr)} must have the same 2-D shape",
            hint="both [batch, tokens]: the log-prob of each completion token (see completion_logprobs)",
        )
    m = torch.ones_like(lp) if mask is None else torch.as_tensor(mask).to(lp.dtype)
    if _shape(m) != _shape(lp):
        raise InvalidInputError(
            f"mask {_shape(m)} does not match the log-probs {_shape(lp)}",
            hint="the mask is [batch, tokens] with 1 for completion tokens, 0 for padding",
        )
    if estimator not in ("k1", "k3"):
        raise InvalidInputError(f"unknown KL estimator {estimator!r}", hint="use k1 or k3")
    if not math.isfinite(beta) or beta < 0:
        raise InvalidInputError(f"beta must be a finite number >= 0, got {beta}")
    d = (lp - lr).masked_fill(m == 0, 0.0)  # padding may hold -inf or junk
    per_token = d if estimator == "k1" else torch.expm1(-d) + d
    return beta * (per_token * m).sum(-1)


def completion_logprobs(
    lm: Any,
    prompts: Sequence[Any],
    completions: Sequence[str] | None = None,
    *,
    completion_ids: Sequence[Sequence[int]] | None = None,
    system: str | None = None,
    batch_size: int = 4,
) -> tuple[Any, Any]:
    """Per-token log-probs of each completion after its prompt, under a model.

    The prompt is rendered with the model's chat template (as :func:`models.generate.generate`
    does) and the completion tokens follow it; token ``t`` is scored from the logits at
    ``t - 1``. Prompts are left-padded and completions right-padded so every completion starts
    at the same column and only the completion's logits are computed.

    Args:
        lm: A :class:`layerguard.models.LoadedModel` (policy or reference).
        prompts: Prompts (strings or conversations).
        completions: Completion texts (tokenized without special tokens), or None with ``completion_ids``.
        completion_ids: The completion token ids (e.g. as sampled), instead of texts.
        system: Optional system prompt.
        batch_size: Sequences per forward pass.

    Returns:
        ``(logprobs, mask)``, each ``[n, max_completion_tokens]``: float32 log-probs (0 at
        padding) and a 0/1 mask of real completion tokens.

    Raises:
        InvalidInputError: mismatched lengths, or neither/both of texts and ids given.
    """
    import torch

    from layerguard.models.generate import left_pad

    if (completions is None) == (completion_ids is None):
        raise InvalidInputError("pass either completions (texts) or completion_ids", hint="exactly one of the two")
    if completions is not None:
        _, texts = as_texts(list(prompts), list(completions))
        convs = list(prompts)
        ids = [lm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    else:
        assert completion_ids is not None
        if len(prompts) != len(completion_ids):
            raise InvalidInputError(
                f"{len(prompts)} prompts but {len(completion_ids)} completion id lists", hint="one per prompt"
            )
        convs, ids = list(prompts), [list(map(int, c)) for c in completion_ids]
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    encoded = [lm.encode(c, system=system, find_instruction=False) for c in convs]
    n, width = len(ids), max((len(c) for c in ids), default=0)
    out = torch.zeros((n, width), dtype=torch.float32)
    mask = torch.zeros((n, width), dtype=torch.long)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    for start in range(0, n, batch_size):
        rows = list(range(start, min(n, start + batch_size)))
        tc = max(len(ids[r]) for r in rows)
        if tc == 0:
            continue
        p_ids, p_mask, _ = left_pad([encoded[r] for r in rows], pad)
        c_ids = torch.full((len(rows), tc), pad, dtype=torch.long)
        c_mask = torch.zeros((len(rows), tc), dtype=torch.long)
        for j, r in enumerate(rows):
            c_ids[j, : len(ids[r])] = torch.tensor(ids[r], dtype=torch.long)
            c_mask[j, : len(ids[r])] = 1
        full_ids, full_mask = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
        pos = (full_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            # the last tc + 1 positions: the one before the completion predicts its first token
            logits = lm.model(
                input_ids=full_ids, attention_mask=full_mask, position_ids=pos, use_cache=False, logits_to_keep=tc + 1
            ).logits[:, :-1]  # [b, tc, vocab]
        lp = torch.log_softmax(logits.float(), -1).gather(-1, c_ids.unsqueeze(-1)).squeeze(-1)
        out[start : start + len(rows), :tc] = lp * c_mask
        mask[start : start + len(rows), :tc] = c_mask
    return out, mask
