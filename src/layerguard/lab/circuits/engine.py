"""The patching engine: many edited forward passes of one prompt, batched, scored by refusal log-odds.

An :class:`Edit` replaces (or zeroes) the activation at one hook point, optionally one head,
at some token positions. :func:`run_variants` runs one prompt under many edit lists at
once: the variants become the rows of a batch. When no edit touches the first ``s`` tokens,
those tokens are computed once and their key/value cache is shared by every row (causal
attention means nothing before ``s`` can change), so a sweep of head patches at the
post-instruction tokens recomputes a handful of tokens per variant, not the whole prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layerguard.activations.capture import expand_positions
from layerguard.activations.heads import CircuitHook, circuit_hooks
from layerguard.directions.refusal import RefusalTokens, log_odds
from layerguard.errors import InvalidInputError
from layerguard.models.generate import cache_kwarg
from layerguard.models.handle import LoadedModel
from layerguard.models.positions import PromptPositions, needs_template_parse
from layerguard.models.templates import ConversationLike

EDITABLE = ("resid_pre", "resid_post", "attn.z", "attn_out", "mlp_out")


@dataclass(frozen=True)
class Edit:
    """Replace the activation at ``hook`` (and ``head``) at token ``positions`` by ``value``.

    Attributes:
        hook: Where (``attn.z`` for heads; ``resid_pre``, ``resid_post``, ``attn_out``, ``mlp_out``).
        positions: Token indices in the prompt; None means every position.
        value: Broadcastable to ``[len(positions), d]`` (``d`` = d_model, or d_head for a head);
            None means zero (knock-out).
        head: The query head, for ``attn.z``.
    """

    hook: CircuitHook
    positions: tuple[int, ...] | None
    value: Any = None
    head: int | None = None


def _check_edit(e: Edit) -> None:
    if e.hook.kind not in EDITABLE:
        raise InvalidInputError(f"cannot patch {e.hook.name}", hint=f"patchable kinds: {', '.join(EDITABLE)}")
    if (e.hook.kind == "attn.z") != (e.head is not None):
        raise InvalidInputError(f"{e.hook.name}: a head is needed for attn.z and only for attn.z")


def _apply(edits: list[tuple[int, Edit]], offset: int, t: Any) -> Any:
    """A copy of ``t`` ([batch, pos, ...]) with each row's edits applied; positions shift by ``offset``."""
    import torch

    t = t.clone()
    for row, e in edits:
        pos: Any = slice(None) if e.positions is None else torch.tensor(e.positions) - offset
        target = (row, pos, e.head) if e.head is not None else (row, pos)
        if e.value is None:
            t[target] = 0
        else:
            t[target] = e.value.to(t.dtype)
    return t


def _prefix_kv(lm: LoadedModel, ids: Sequence[int]) -> Any:
    import torch

    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([list(ids)]), use_cache=True, logits_to_keep=1)
    return out.cache if hasattr(out, "cache") else out.past_key_values


def run_variants(
    lm: LoadedModel,
    input_ids: Sequence[int],
    variants: Sequence[Sequence[Edit]],
    tokens: RefusalTokens,
    *,
    batch_size: int = 64,
) -> Any:
    """Refusal log-odds ``[n_variants]`` of one prompt under each list of edits (an empty list = unedited).

    Raises:
        InvalidInputError: an edit at an unpatchable hook, or a position outside the prompt.
    """
    import torch

    n = len(input_ids)
    starts = [n - 1]
    for edits in variants:
        for e in edits:
            _check_edit(e)
            if e.positions is not None and any(not 0 <= p < n for p in e.positions):
                raise InvalidInputError(f"edit position out of range for a prompt of {n} tokens")
            starts.append(0 if e.positions is None else min(e.positions, default=n - 1))
    start = min(starts)
    prefix = _prefix_kv(lm, input_ids[:start]) if start > 0 else None
    suffix = torch.tensor([list(input_ids[start:])])
    kw_cache = cache_kwarg(lm.model)
    out = torch.empty(len(variants))
    for lo in range(0, len(variants), batch_size):
        chunk = variants[lo : lo + batch_size]
        by_hook: dict[CircuitHook, list[tuple[int, Edit]]] = {}
        for row, edits in enumerate(chunk):
            for e in edits:
                by_hook.setdefault(e.hook, []).append((row, e))

        def fn(hook: CircuitHook, t: Any, by_hook: dict[CircuitHook, list[tuple[int, Edit]]] = by_hook) -> Any:
            return _apply(by_hook[hook], start, t)

        kwargs: dict[str, Any] = {"position_ids": torch.arange(start, n).unsqueeze(0).expand(len(chunk), -1)}
        if prefix is not None:
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(chunk))
            kwargs.update({kw_cache: cache, "use_cache": True})
        else:
            kwargs["use_cache"] = False
        with torch.inference_mode(), circuit_hooks(lm, list(by_hook), fn):
            logits = lm.model(input_ids=suffix.expand(len(chunk), -1), logits_to_keep=1, **kwargs).logits
        out[lo : lo + len(chunk)] = log_odds(logits[:, -1], tokens.ids)
    return out


def capture_prompt(lm: LoadedModel, input_ids: Sequence[int], names: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """Last-position logits ``[vocab]`` and the named activations of one prompt (batch axis dropped)."""
    import torch

    from layerguard.activations.heads import run_with_cache

    logits, cache = run_with_cache(lm, torch.tensor([list(input_ids)]), names, logits_to_keep=1)
    return logits[0, -1], {k: v[0] for k, v in cache.items()}


@dataclass
class PromptPairs:
    """Clean and corrupted prompts in pairs, with the token columns to patch in each."""

    clean: list[PromptPositions]
    corrupted: list[PromptPositions]
    labels: list[str]  # one per column, e.g. t_inst, post_inst[0], -1
    clean_cols: list[list[int]]
    corrupted_cols: list[list[int]]

    def __len__(self) -> int:
        return len(self.clean)


def encode_pairs(
    lm: LoadedModel,
    clean: Sequence[ConversationLike],
    corrupted: Sequence[ConversationLike],
    positions: Sequence[str | int],
) -> PromptPairs:
    """Encode the pairs and resolve the positions in each prompt.

    Positions are specs of :meth:`PromptPositions.resolve` (``t_inst``, ``post_inst``,
    ``post_inst[k]``, ``last``, negative integers counting from the end), so prompts of
    different lengths are aligned by role, not by index.

    Raises:
        InvalidInputError: when the two lists differ in length, are empty, or a position
            does not exist (or spans a different number of tokens) in some prompt.
    """
    if len(clean) != len(corrupted):
        raise InvalidInputError(
            f"{len(clean)} clean prompts but {len(corrupted)} corrupted prompts",
            hint="give one corrupted prompt per clean prompt, in the same order (pairs)",
        )
    if not clean:
        raise InvalidInputError("no prompt pairs", hint="give at least one clean/corrupted pair")
    if not positions:
        raise InvalidInputError("no positions to patch", hint="e.g. t_inst,post_inst or -1")
    find = needs_template_parse(positions)
    enc_c = [lm.encode(c, find_instruction=find) for c in clean]
    enc_x = [lm.encode(c, find_instruction=find) for c in corrupted]
    labels, cols_c = expand_positions(enc_c, positions)
    labels_x, cols_x = expand_positions(enc_x, positions)
    if labels != labels_x:
        raise InvalidInputError(
            f"the positions resolve to {labels} in clean prompts but {labels_x} in corrupted ones",
            hint="use positions every prompt has the same number of (t_inst, post_inst[k], negative integers)",
        )
    return PromptPairs(enc_c, enc_x, labels, cols_c, cols_x)
