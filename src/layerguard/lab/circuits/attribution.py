"""Direct logit attribution of every head and MLP to the refusal log-odds.

The last position's residual stream is a sum of writes: the embedding, each head's output
(``blocks.L.attn.head_out``), each output bias and each MLP's output. With the final norm's
scale frozen at its value in the run (as TransformerLens's ``apply_ln_to_stack`` does), the
logits are linear in that sum, so each write gets a share of any linear function of the
logits. The function here is the refusal log-odds' first-order change: its gradient with
respect to the logits, ``g_i = p_i (1[i in S] - p_S) / (p_S (1 - p_S))`` for the refusal
token set ``S``. A head's attribution is ``norm(head_out) . W_U^T g``: how much its direct
write moves the log-odds (to first order; what it does through later layers is not counted).
The shares of all writes sum exactly to ``g . logits``; the tests check that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layerguard.activations.heads import CircuitHook, HeadLayout, head_weights
from layerguard.directions.refusal import RefusalTokens
from layerguard.errors import InvalidInputError
from layerguard.lab.circuits.engine import capture_prompt
from layerguard.models.architecture import find_base_model
from layerguard.models.handle import LoadedModel
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar

_NORM_NAMES = ("norm", "final_layernorm", "ln_f", "final_layer_norm", "final_norm")


@dataclass
class Attribution:
    """Direct attributions per prompt.

    Attributes:
        heads: ``[n_prompts, n_layers, n_heads]``.
        mlps: ``[n_prompts, n_layers]``.
        embed: ``[n_prompts]`` (the token embedding's share).
        rest: ``[n_prompts]`` (output biases and anything else in the stream).
        total: ``[n_prompts]``: ``g . logits``, which the shares sum to.
        log_odds: ``[n_prompts]``: the refusal log-odds of each prompt.
    """

    heads: Any
    mlps: Any
    embed: Any
    rest: Any
    total: Any
    log_odds: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "heads_mean": self.heads.mean(0).tolist(),
            "mlps_mean": self.mlps.mean(0).tolist(),
            "embed_mean": float(self.embed.mean()),
            "rest_mean": float(self.rest.mean()),
            "log_odds_mean": float(self.log_odds.mean()),
            "n_prompts": int(self.heads.shape[0]),
        }


def final_norm(lm: LoadedModel) -> Any:
    """The norm applied to the stream before the unembedding."""
    base = find_base_model(lm.model)
    for holder in (base, getattr(base, "model", None), lm.model):
        for name in _NORM_NAMES:
            mod = getattr(holder, name, None) if holder is not None else None
            if mod is not None and hasattr(mod, "weight"):
                return mod
    raise InvalidInputError(
        f"cannot find the final norm of {type(lm.model).__name__}",
        hint="direct attribution needs a final norm named norm, ln_f or final_layernorm",
    )


def frozen_norm(lm: LoadedModel, x_final: Any) -> Any:
    """The final norm as a linear map with its scale frozen at ``x_final`` ``[d_model]``: ``f(c) [.., d_model]``."""
    norm = final_norm(lm)
    w = norm.weight.detach().float()
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    layer_norm = "rms" not in type(norm).__name__.lower()
    x = x_final.float()
    if layer_norm:
        scale = 1.0 / (x.var(unbiased=False) + eps).sqrt()
        return lambda c: w * (c - c.mean(-1, keepdim=True)) * scale
    scale = 1.0 / (x.pow(2).mean() + eps).sqrt()
    return lambda c: w * c * scale


def refusal_gradient(logits: Any, tokens: RefusalTokens) -> Any:
    """``d log-odds / d logits`` ``[vocab]`` for the refusal set at one position."""
    import torch

    p = torch.softmax(logits.float(), -1)
    in_set = torch.zeros_like(p)
    in_set[list(tokens.ids)] = 1.0
    p_s = (p * in_set).sum().clamp(1e-7, 1 - 1e-7)
    return p * (in_set - p_s) / (p_s * (1 - p_s))


def direct_attribution(
    lm: LoadedModel,
    prompts: Sequence[ConversationLike],
    tokens: RefusalTokens,
    *,
    progress: bool | None = None,
) -> Attribution:
    """Direct attribution of each head, MLP and the embedding at the last prompt position."""
    import torch

    from layerguard.directions.refusal import log_odds

    if not prompts:
        raise InvalidInputError("no prompts to attribute", hint="pass at least one prompt")
    layout = HeadLayout.of(lm)
    n_l = layout.n_layers
    w_o = [head_weights(lm, layer) for layer in range(n_l)]  # [head, d_head, d_model] each
    w_u = lm.model.get_output_embeddings().weight.detach().float()  # [vocab, d_model]
    names = [CircuitHook(layer, k).name for layer in range(n_l) for k in ("attn.z", "mlp_out")]
    names += [CircuitHook(0, "resid_pre").name, CircuitHook(n_l - 1, "resid_post").name]
    n = len(prompts)
    heads, mlps = torch.empty((n, n_l, layout.n_heads)), torch.empty((n, n_l))
    embed, rest, total, lo = torch.empty(n), torch.empty(n), torch.empty(n), torch.empty(n)
    with progress_bar(total=n, desc="attribution", unit="prompt", enabled=progress) as bar:
        for i, prompt in enumerate(prompts):
            ids = lm.encode(prompt, find_instruction=False).input_ids
            logits, cache = capture_prompt(lm, ids, names)
            u = w_u.T @ refusal_gradient(logits, tokens)  # [d_model]
            f = frozen_norm(lm, cache[f"blocks.{n_l - 1}.resid_post"][-1])
            parts: Any = 0.0
            for layer in range(n_l):
                z = cache[f"blocks.{layer}.attn.z"][-1]  # [head, d_head]
                head_out = torch.einsum("hd,hdm->hm", z, w_o[layer])
                heads[i, layer] = f(head_out) @ u
                mlps[i, layer] = f(cache[f"blocks.{layer}.mlp_out"][-1]) @ u
                parts = parts + heads[i, layer].sum() + mlps[i, layer]
            embed[i] = f(cache["blocks.0.resid_pre"][-1]) @ u
            total[i] = f(cache[f"blocks.{n_l - 1}.resid_post"][-1]) @ u
            rest[i] = total[i] - parts - embed[i]
            lo[i] = log_odds(logits[None], tokens.ids)[0]
            bar.update(1)
    return Attribution(heads, mlps, embed, rest, total, lo)


def rank_heads(scores: Any, k: int | None = None) -> list[tuple[int, int]]:
    """``(layer, head)`` pairs by descending score (``scores`` is ``[n_layers, n_heads]``)."""
    n_h = scores.shape[1]
    order = scores.flatten().argsort(descending=True).tolist()
    return [(i // n_h, i % n_h) for i in order[: k if k is not None else len(order)]]
