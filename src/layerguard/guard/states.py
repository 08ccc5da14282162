"""Hidden states that the latent rings read: one row's reads, and many exchanges in batched passes.

Serving a request, the local backend reads the latent rings' states from the very forward
pass that generates the answer (:func:`read_prompt_state` on its prefill). Scoring finished
(prompt, answer) pairs offline, as the red team does, the same states come from one
teacher-forced pass over prompt + answer: the prompt's states (``t_inst``, the means over
the instruction and over the post-instruction tokens) do not depend on the answer that
follows them in a causal model, and the answer tokens' states (output monitor) are those the
monitor sees while streaming. One right-padded, batched pass that stops after the deepest
layer read replaces a capture pass plus one full, unbatched pass per answer.

Every conversation that opens with the chat template's default opening (system prompt and
the user role header, read before any read position) shares that opening's key/value cache:
it is computed once per call and only the rest of each prompt is run (about a third of the
tokens of short prompts on Qwen's template). The states agree with a pass over the whole
prompt to float32 rounding (``benchmarks/bench_guard_states.py`` prints the largest
difference beside the speed-up; a test bounds it).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from layerguard.activations.capture import prefix_kv_cache as opening_cache
from layerguard.activations.hooks import HookPoint, StopForward, parse_read, read_name, residual_hooks
from layerguard.errors import InvalidInputError, TemplateError
from layerguard.models.generate import cache_kwarg
from layerguard.models.positions import PromptPositions
from layerguard.progress import progress_bar

PROMPT_POSITIONS = ("t_inst", "inst_mean", "post_mean")
"""Read positions inside the prompt (one ``[d_model]`` state each)."""


def response_key(layer: int) -> str:
    """Activation key of the answer tokens' states ``[T, d]`` entering ``layer``."""
    return read_name(layer, "response")


def encode_for_reads(lm: Any, conversation: Sequence[dict[str, str]]) -> PromptPositions:
    """The prompt's tokens and positions; a prompt with no instruction to find is read at its end.

    A conversation that does not end with a user turn (a tool result, an assistant turn to
    continue) or whose last user message is empty has no instruction span: ``t_inst`` is then
    the last token, the "instruction" every token before it and the post-instruction span the
    last token alone.
    """
    try:
        pp0: PromptPositions = lm.encode(list(conversation))
        return pp0
    except (TemplateError, InvalidInputError):
        pp: PromptPositions = lm.encode(list(conversation), find_instruction=False)
        n = len(pp.input_ids)
        return PromptPositions(
            text=pp.text, input_ids=pp.input_ids, instruction=(0, max(1, n - 1)), post_inst=[n - 1] if n > 1 else []
        )


def read_prompt_state(hidden: Any, pp: PromptPositions, position: str, offset: int = 0) -> Any:
    """One prompt's state ``[d]`` at a prompt read position, from its hidden states ``[seq, d]``.

    ``offset``: tokens of the prompt's start that ``hidden`` lacks (a cached prefix).
    """
    if position == "t_inst":
        return hidden[pp.t_inst - offset].detach().float().clone()
    if position == "inst_mean":
        start, end = pp.instruction if pp.instruction is not None else (0, len(pp.input_ids))
        return hidden[start - offset : end - offset].detach().float().mean(0)
    if position == "post_mean":
        idx = list(pp.post_inst) or [len(pp.input_ids) - 1]
        return hidden[idx[0] - offset : idx[-1] + 1 - offset].detach().float().mean(0)
    raise InvalidInputError(f"{position!r} is not a prompt read position", hint=f"use {', '.join(PROMPT_POSITIONS)}")


def split_reads(reads: Sequence[str]) -> tuple[dict[int, list[str]], list[int]]:
    """Prompt reads grouped by layer (layer -> positions) and the layers read over the answer."""
    prompt: dict[int, list[str]] = {}
    response: set[int] = set()
    for name in reads:
        hp, position = parse_read(name)
        if position == "response":
            response.add(hp.layer)
        elif position not in prompt.setdefault(hp.layer, []):
            prompt[hp.layer].append(position)
    return prompt, sorted(response)


def exchange_states(
    lm: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    answers: Sequence[str],
    *,
    reads: Sequence[str] = (),
    t_inst_layers: Sequence[int] = (),
    response_layers: Sequence[int] = (),
    batch_size: int = 8,
    max_answer_chars: int = 20_000,
    progress: bool | None = False,
    desc: str = "reading states",
    prefix_cache: bool = True,
) -> list[dict[str, Any]]:
    """Per exchange: read name -> ``[d]`` for prompt reads and ``[T, d]`` for answer reads.

    Args:
        lm: The served model (a LoadedModel); interventions active around the call apply.
        conversations: The prompts (chat messages), one per answer.
        answers: The model's answers (decoded text, re-tokenized as the output monitor does).
        reads: Read names (``blocks.{l}.resid_pre@{t_inst|inst_mean|post_mean|response}``).
        t_inst_layers: Layers read at ``t_inst`` (shorthand, added to ``reads``).
        response_layers: Layers read over the answer tokens (shorthand, added to ``reads``).
        batch_size: Exchanges per forward pass (exchanges are grouped by length).
        max_answer_chars: Longer answers are cut (as the output monitor ring cuts them).
        progress: Show a progress bar.
        desc: Its label.
        prefix_cache: Run the opening the prompts share once and reuse its key/value cache: the
            template's opening, or more when every prompt that opens with it shares more tokens
            before its instruction (an attack's frame, many-shot's faux exchanges).
    """
    import torch

    names = [*reads, *(read_name(layer, "t_inst") for layer in t_inst_layers)]
    names += [response_key(layer) for layer in response_layers]
    prompt_reads, response = split_reads(names)
    layers = sorted({*prompt_reads, *response})
    out: list[dict[str, Any]] = [{} for _ in conversations]
    if not layers or not conversations:
        return out
    enc = [encode_for_reads(lm, c) for c in conversations]
    resp = [lm.tokenizer(a[:max_answer_chars], add_special_tokens=False)["input_ids"] if a else [] for a in answers]
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    points = [HookPoint(layer, "resid_pre") for layer in layers]
    got: dict[int, Any] = {}

    def read(hp: HookPoint, hidden: Any) -> None:
        got[hp.layer] = hidden.detach()  # [batch, pos, d]

    opening = shared_opening(enc, template_opening(lm)) if prefix_cache else []
    cached = [i for i, pp in enumerate(enc) if opening and opens_with(pp, opening)]
    kv = opening_cache(lm, opening) if cached else None
    in_cache = set(cached)
    plain = [i for i in range(len(enc)) if i not in in_cache]

    def by_length(rows: list[int]) -> list[int]:
        return sorted(rows, key=lambda i: len(enc[i].input_ids) + len(resp[i]))

    batches = [(b, len(opening)) for b in _chunks(by_length(cached), batch_size)]
    batches += [(b, 0) for b in _chunks(by_length(plain), batch_size)]
    with progress_bar(enabled=progress, total=len(enc), desc=desc, unit="prompt") as bar:
        for rows, skip in batches:
            seqs = [(list(enc[i].input_ids) + list(resp[i]))[skip:] for i in rows]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, s in enumerate(seqs):  # right padding: no real token attends to a pad
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            kwargs: dict[str, Any] = {"use_cache": False}
            if skip:
                mask, kwargs = after_opening(lm, kv, mask)
            got.clear()
            with torch.inference_mode(), residual_hooks(lm.layers, points, read, stop_after_last=True):
                try:
                    lm.model(input_ids=ids, attention_mask=mask, **kwargs)
                except StopForward:
                    pass
            for j, i in enumerate(rows):
                n_prompt = len(enc[i].input_ids) - skip
                for layer, positions in prompt_reads.items():
                    for position in positions:
                        out[i][read_name(layer, position)] = read_prompt_state(got[layer][j], enc[i], position, skip)
                for layer in response:
                    out[i][response_key(layer)] = got[layer][j, n_prompt : n_prompt + len(resp[i])].float().clone()
            bar.update(len(rows))
    return out


def _chunks(rows: list[int], size: int) -> list[list[int]]:
    return [rows[k : k + size] for k in range(0, len(rows), size)]


def template_opening(lm: Any, min_len: int = 8) -> list[int]:
    """The tokens every single-turn prompt of ``lm``'s chat template starts with, before the instruction.

    The common start of two rendered one-message conversations, cut at the first one's
    instruction; empty when shorter than ``min_len`` (not worth a cache) or when the template
    gives no instruction position.
    """
    try:
        a = lm.encode([{"role": "user", "content": "Hello there."}])
        b = lm.encode([{"role": "user", "content": "What is 2 + 2?"}])
    except (TemplateError, InvalidInputError):
        return []
    if a.instruction is None:
        return []
    n = 0
    limit = min(a.instruction[0], len(b.input_ids) - 1)
    while n < limit and a.input_ids[n] == b.input_ids[n]:
        n += 1
    return list(a.input_ids[:n]) if n >= min_len else []


def shared_opening(enc: Sequence[PromptPositions], opening: list[int]) -> list[int]:
    """``opening`` extended to the longest start that every prompt opening with it shares, up to its first read.

    The prompts of one call often share far more than the template's opening: the frame of
    a jailbreak wrapper, or the 16 faux exchanges of a many-shot prompt (782 of its 808
    tokens on Qwen). The shared part stops before any prompt's instruction and
    post-instruction tokens, so that every read position stays after it.
    """
    rows = [pp for pp in enc if opening and opens_with(pp, opening)]
    if len(rows) < 2:
        return opening
    first = rows[0].input_ids
    n = min(len(pp.input_ids) for pp in rows) - 1
    for pp in rows:
        start = pp.instruction[0] if pp.instruction is not None else len(pp.input_ids) - 1
        n = min([n, start, *pp.post_inst])
    k = len(opening)
    while k < n and all(pp.input_ids[k] == first[k] for pp in rows):
        k += 1
    return list(first[:k])


def opens_with(pp: PromptPositions, opening: list[int]) -> bool:
    """The prompt starts with ``opening`` and no read position (nor its last token) falls inside it."""
    n = len(opening)
    if len(pp.input_ids) <= n or pp.input_ids[:n] != opening:
        return False
    start = pp.instruction[0] if pp.instruction is not None else 0
    return start >= n and all(i >= n for i in pp.post_inst)


def after_opening(lm: Any, kv: Any, mask: Any) -> tuple[Any, dict[str, Any]]:
    """The attention mask and forward arguments that run a batch of suffixes after a cached opening.

    ``mask`` is the suffixes' ``[batch, pos]`` mask (right-padded); the returned mask covers the
    opening too, and the forward arguments carry a copy of the opening's cache, one row per suffix.
    """
    import torch

    rows, skip = mask.shape[0], kv.get_seq_length()
    cache = copy.deepcopy(kv)
    cache.batch_repeat_interleave(rows)
    full = torch.cat([torch.ones((rows, skip), dtype=mask.dtype), mask], dim=1)
    return full, {cache_kwarg(lm.model): cache, "use_cache": True}


def prompt_states(
    lm: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    reads: Sequence[str],
    *,
    batch_size: int = 8,
    progress: bool | None = None,
    desc: str = "reading prompts",
    prefix_cache: bool = True,
) -> dict[str, Any]:
    """Read name -> ``[n, d]``: the prompt reads of many prompts, stacked (for fitting rings).

    Raises:
        InvalidInputError: an answer (``@response``) read was asked for.
    """
    import torch

    if split_reads(reads)[1]:
        raise InvalidInputError("prompt_states reads prompts only", hint="use exchange_states for @response reads")
    blank = [""] * len(conversations)
    kw: dict[str, Any] = {"batch_size": batch_size, "progress": progress, "desc": desc, "prefix_cache": prefix_cache}
    rows = exchange_states(lm, conversations, blank, reads=reads, **kw)
    return {name: torch.stack([r[name] for r in rows]) for name in reads} if rows else {}
