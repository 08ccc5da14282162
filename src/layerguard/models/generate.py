"""Batched greedy generation and last-position logits, with left padding.

Interventions (hooks) active around these calls apply to every forward pass, prefill
and decoding alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from layerguard.models.handle import LoadedModel
from layerguard.models.positions import PromptPositions
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar


def left_pad(batch: Sequence[PromptPositions], pad_id: int) -> tuple[Any, Any, Any]:
    """Left-pad token ids; return ids, attention mask and position ids, each ``[batch, pos]``."""
    import torch

    width = max(p.n_tokens for p in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, p in enumerate(batch):
        ids[row, width - p.n_tokens :] = torch.tensor(p.input_ids, dtype=torch.long)
        mask[row, width - p.n_tokens :] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _order(encoded: Sequence[PromptPositions]) -> list[int]:
    return sorted(range(len(encoded)), key=lambda i: -encoded[i].n_tokens)


def encode_many(
    lm: LoadedModel, conversations: Sequence[ConversationLike], system: str | None = None
) -> list[PromptPositions]:
    """Render and tokenize conversations (no instruction parsing)."""
    return [lm.encode(c, system=system, find_instruction=False) for c in conversations]


def cache_kwarg(model: Any) -> str:
    """Name of the key/value-cache argument: transformers renamed ``past_key_values`` to ``cache``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def shared_prefix(encoded: Sequence[PromptPositions], min_len: int = 8) -> int:
    """Length of the token prefix all prompts share (keeping >= 1 own token each); 0 if short."""
    first = encoded[0].input_ids
    n = min(p.n_tokens for p in encoded) - 1
    for p in encoded[1:]:
        k = 0
        while k < n and p.input_ids[k] == first[k]:
            k += 1
        n = k
    return n if n >= min_len else 0


def last_logits(
    lm: LoadedModel,
    conversations: Sequence[ConversationLike],
    *,
    system: str | None = None,
    batch_size: int = 8,
    progress: bool | None = False,
    desc: str = "scoring",
    prefix_cache: bool = True,
) -> Any:
    """Next-token logits after each prompt, ``[n, vocab]`` float32.

    The opening all prompts share (system prompt, role header) is computed once per call,
    inside whatever interventions are active, and its key/value cache reused.
    """
    import copy

    import torch

    encoded = encode_many(lm, conversations, system)
    out = torch.empty((len(encoded), lm.model.config.vocab_size), dtype=torch.float32)
    order = _order(encoded)
    pad = lm.tokenizer.pad_token_id
    n_prefix = shared_prefix(encoded) if prefix_cache else 0
    cache_kw = cache_kwarg(lm.model)
    prefix_kv = None
    if n_prefix:
        with torch.inference_mode():
            res = lm.model(input_ids=torch.tensor([encoded[0].input_ids[:n_prefix]]), use_cache=True, logits_to_keep=1)
        prefix_kv = res.cache if hasattr(res, "cache") else res.past_key_values
    with progress_bar(total=len(order), desc=desc, unit="prompt", enabled=progress) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = [encoded[r] for r in rows]
            if prefix_kv is not None:
                suffixes = [PromptPositions(p.text, p.input_ids[n_prefix:], None) for p in batch]
                ids, mask, pos = left_pad(suffixes, pad)
                mask = torch.cat([torch.ones((len(rows), n_prefix), dtype=torch.long), mask], dim=1)
                kv = copy.deepcopy(prefix_kv)
                kv.batch_repeat_interleave(len(rows))
                kwargs: dict[str, Any] = {cache_kw: kv, "use_cache": True, "position_ids": pos + n_prefix}
            else:
                ids, mask, pos = left_pad(batch, pad)
                kwargs = {"use_cache": False, "position_ids": pos}
            with torch.inference_mode():
                logits = lm.model(input_ids=ids, attention_mask=mask, logits_to_keep=1, **kwargs).logits
            out[torch.tensor(rows)] = logits[:, -1].float()
            bar.update(len(rows))
    return out


class PrefixCache:
    """Key/value caches of prompt openings that many prompts share, kept by the caller across calls.

    Many prompts of one attack share a long opening: the system prompt and role header, a
    jailbreak frame's text, the faux exchanges of a many-shot attack. Its keys and values are
    computed once and copied into each batch. A cache is only valid under the interventions
    that were active when it was filled: keep one per intervention (the red-team runner keeps
    one per attack). At most ``size`` openings are kept (least recently used dropped).
    """

    def __init__(self, size: int = 4, min_len: int = 16) -> None:
        self.size, self.min_len = size, min_len
        self._kv: dict[tuple[int, ...], Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, lm: LoadedModel, ids: Sequence[int]) -> Any:
        """The cache of the forward pass over ``ids`` (computed on a miss, under active hooks)."""
        import torch

        key = tuple(ids)
        if key in self._kv:
            self.hits += 1
            self._kv[key] = self._kv.pop(key)  # most recently used last
            return self._kv[key]
        self.misses += 1
        with torch.inference_mode():
            res = lm.model(input_ids=torch.tensor([list(ids)]), use_cache=True, logits_to_keep=1)
        self._kv[key] = res.cache if hasattr(res, "cache") else res.past_key_values
        while len(self._kv) > self.size:
            self._kv.pop(next(iter(self._kv)))
        return self._kv[key]


def _prefixed_batch(lm: LoadedModel, batch: Sequence[PromptPositions], pad: int, n_prefix: int, kv: Any) -> Any:
    """Inputs of a batch whose rows share their first ``n_prefix`` tokens.

    ``[prefix][left-padded suffixes]``, its mask, and a copy of the prefix's cache repeated
    per row: ``generate`` runs only the suffixes, and positions come from the mask.
    """
    import copy

    import torch

    suffixes = [PromptPositions(p.text, p.input_ids[n_prefix:], None) for p in batch]
    ids, mask, _ = left_pad(suffixes, pad)
    prefix = torch.tensor([batch[0].input_ids[:n_prefix]] * len(batch), dtype=torch.long)
    kv = copy.deepcopy(kv)
    kv.batch_repeat_interleave(len(batch))
    ones = torch.ones((len(batch), n_prefix), dtype=torch.long)
    return torch.cat([prefix, ids], dim=1), torch.cat([ones, mask], dim=1), {cache_kwarg(lm.model): kv}


def generate(
    lm: LoadedModel,
    conversations: Sequence[ConversationLike],
    *,
    system: str | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    progress: bool | None = False,
    desc: str = "generating",
    on_first_logits: Callable[[list[int], Any], None] | None = None,
    prefix_cache: PrefixCache | None = None,
) -> list[str]:
    """Greedy completions (deterministic), decoded without special tokens.

    Args:
        lm: The model.
        conversations: Prompts or conversations to answer.
        system: A system prompt added to each conversation.
        max_new_tokens: Answer length limit.
        batch_size: Conversations per batch (left-padded, sorted by length).
        progress: Show a progress bar.
        desc: The progress bar's label.
        on_first_logits: Called once per batch with the batch's conversation indices and the
            logits ``[batch, vocab]`` of the first generated position (e.g. for a refusal
            score), at no extra forward pass.
        prefix_cache: Compute the opening all the prompts share once (see :class:`PrefixCache`)
            and keep it there for later calls; None computes every prompt whole.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    class _First(LogitsProcessor):
        def __init__(self, rows: list[int]) -> None:
            self.rows, self.seen = rows, False

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if not self.seen and on_first_logits is not None:
                self.seen = True
                on_first_logits(self.rows, scores.detach().float().clone())
            return scores

    encoded = encode_many(lm, conversations, system)
    texts: list[str] = [""] * len(encoded)
    order = _order(encoded)
    pad = lm.tokenizer.pad_token_id
    eos = lm.model.generation_config.eos_token_id or lm.tokenizer.eos_token_id
    n_prefix = shared_prefix(encoded, prefix_cache.min_len) if prefix_cache is not None and encoded else 0
    with progress_bar(total=len(order), desc=desc, unit="prompt", enabled=progress) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = [encoded[r] for r in rows]
            cache: dict[str, Any] = {}
            if n_prefix and prefix_cache is not None:
                kv = prefix_cache.get(lm, encoded[0].input_ids[:n_prefix])
                ids, mask, cache = _prefixed_batch(lm, batch, pad, n_prefix, kv)
            else:
                ids, mask, _ = left_pad(batch, pad)
            with torch.inference_mode():
                out = lm.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    **cache,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad,
                    eos_token_id=eos,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    logits_processor=LogitsProcessorList([_First(rows)]) if on_first_logits else None,
                )
            for row, seq in zip(rows, out[:, ids.shape[1] :], strict=True):
                texts[row] = lm.tokenizer.decode(seq, skip_special_tokens=True).strip()
            bar.update(len(rows))
    return texts
