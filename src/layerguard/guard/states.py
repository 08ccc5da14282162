"""Hidden states that the latent rings read: one row's reads, and many exchanges in batched passes.

Serving a request, the local backend reads the latent rings' states from the very forward
pass that generates the answer (:func:`read_prompt_state` on its prefill). Scoring finished
(prompt, answer) pairs offline, as the red team does, the same states come from one
teacher-forced pass over prompt + answer: the prompt's states (``t_inst``, the means over
the instruction and over the post-instruction tokens) do not depend on the answer that
follows them in a causal model, and the answer tokens' states (output monitor) are those the
monitor sees while streaming. One right-padded, batched pass that stops after the deepest
layer read replaces a capture pass plus one full, unbatched pass per answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerguard.activations.hooks import HookPoint, StopForward, parse_read, read_name, residual_hooks
from layerguard.errors import InvalidInputError, TemplateError
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


def read_prompt_state(hidden: Any, pp: PromptPositions, position: str) -> Any:
    """One prompt's state ``[d]`` at a prompt read position, from its hidden states ``[seq, d]``."""
    if position == "t_inst":
        return hidden[pp.t_inst].detach().float().clone()
    if position == "inst_mean":
        start, end = pp.instruction if pp.instruction is not None else (0, len(pp.input_ids))
        return hidden[start:end].detach().float().mean(0)
    if position == "post_mean":
        idx = list(pp.post_inst) or [len(pp.input_ids) - 1]
        return hidden[idx[0] : idx[-1] + 1].detach().float().mean(0)
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

    order = sorted(range(len(enc)), key=lambda i: len(enc[i].input_ids) + len(resp[i]))
    with progress_bar(enabled=progress, total=len(order), desc=desc, unit="prompt") as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            seqs = [list(enc[i].input_ids) + list(resp[i]) for i in rows]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, s in enumerate(seqs):  # right padding: no real token attends to a pad
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            got.clear()
            with torch.inference_mode(), residual_hooks(lm.layers, points, read, stop_after_last=True):
                try:
                    lm.model(input_ids=ids, attention_mask=mask, use_cache=False)
                except StopForward:
                    pass
            for j, i in enumerate(rows):
                n_prompt = len(enc[i].input_ids)
                for layer, positions in prompt_reads.items():
                    for position in positions:
                        out[i][read_name(layer, position)] = read_prompt_state(got[layer][j], enc[i], position)
                for layer in response:
                    out[i][response_key(layer)] = got[layer][j, n_prompt : n_prompt + len(resp[i])].float().clone()
            bar.update(len(rows))
    return out


def prompt_states(
    lm: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    reads: Sequence[str],
    *,
    batch_size: int = 8,
    progress: bool | None = None,
    desc: str = "reading prompts",
) -> dict[str, Any]:
    """Read name -> ``[n, d]``: the prompt reads of many prompts, stacked (for fitting rings).

    Raises:
        InvalidInputError: an answer (``@response``) read was asked for.
    """
    import torch

    if split_reads(reads)[1]:
        raise InvalidInputError("prompt_states reads prompts only", hint="use exchange_states for @response reads")
    rows = exchange_states(
        lm, conversations, [""] * len(conversations), reads=reads, batch_size=batch_size, progress=progress, desc=desc
    )
    return {name: torch.stack([r[name] for r in rows]) for name in reads} if rows else {}
