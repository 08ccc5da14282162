"""Hidden states that the latent rings read, for finished exchanges, in one batched pass.

Serving a request, the local backend reads the latent rings' states from the very forward
pass that generates the answer. Scoring finished (prompt, answer) pairs offline, as the red
team does, the same states come from one teacher-forced pass over prompt + answer: the
state at ``t_inst`` (latent ring) does not depend on the answer that follows it in a causal
model, and the answer tokens' states (output monitor) are those the monitor sees while
streaming. One right-padded, batched pass that stops after the deepest layer read replaces
a capture pass plus one full, unbatched pass per answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerguard.activations.hooks import HookPoint, StopForward, read_name, residual_hooks
from layerguard.guard.rings.latent import hook_name


def response_key(layer: int) -> str:
    """Activation key of the answer tokens' states ``[T, d]`` entering ``layer``."""
    return read_name(layer, "response")


def exchange_states(
    lm: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    answers: Sequence[str],
    *,
    t_inst_layers: Sequence[int] = (),
    response_layers: Sequence[int] = (),
    batch_size: int = 8,
    max_answer_chars: int = 20_000,
) -> list[dict[str, Any]]:
    """Per exchange: ``hook_name(l)`` -> ``[d]`` at ``t_inst`` and ``response_key(l)`` -> ``[T, d]``.

    Args:
        lm: The served model (a LoadedModel); interventions active around the call apply.
        conversations: The prompts (chat messages), one per answer.
        answers: The model's answers (decoded text, re-tokenized as the output monitor does).
        t_inst_layers: Layers whose state at ``t_inst`` is read.
        response_layers: Layers whose states over the answer tokens are read.
        batch_size: Exchanges per forward pass.
        max_answer_chars: Longer answers are cut (as the output monitor ring cuts them).
    """
    import torch

    layers = sorted({*t_inst_layers, *response_layers})
    out: list[dict[str, Any]] = [{} for _ in conversations]
    if not layers or not conversations:
        return out
    enc = [lm.encode(list(c)) for c in conversations]
    resp = [lm.tokenizer(a[:max_answer_chars], add_special_tokens=False)["input_ids"] for a in answers]
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    points = [HookPoint(layer, "resid_pre") for layer in layers]
    got: dict[int, Any] = {}

    def read(hp: HookPoint, hidden: Any) -> None:
        got[hp.layer] = hidden.detach().float()  # [batch, pos, d]

    for start in range(0, len(enc), batch_size):
        rows = list(range(start, min(start + batch_size, len(enc))))
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
            for layer in t_inst_layers:
                out[i][hook_name(layer)] = got[layer][j, enc[i].t_inst].clone()
            for layer in response_layers:
                out[i][response_key(layer)] = got[layer][j, n_prompt : n_prompt + len(resp[i])].clone()
    return out
