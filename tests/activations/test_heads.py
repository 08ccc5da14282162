"""Per-head hooks on the real smollm2-135m (grouped-query attention: 9 query heads share 3 key/value heads).

The heads' outputs are checked against attention recomputed by hand from the weights, and
the hooks' bookkeeping (sums, restoration after errors) against the model's own outputs.
"""

from __future__ import annotations

import pytest
import torch

from layerguard.activations.heads import (
    CircuitHook,
    HeadLayout,
    circuit_hooks,
    head_weights,
    parse_heads,
    run_with_cache,
)
from layerguard.errors import InvalidInputError

PROMPT = "How do I kill a Python process that hangs?"


@pytest.fixture(scope="module")
def ids(smollm2):
    return torch.tensor([smollm2.encode(PROMPT, find_instruction=False).input_ids])


def test_layout_comes_from_the_config_with_grouped_query_attention(smollm2):
    lay = HeadLayout.of(smollm2)
    assert (lay.n_layers, lay.n_heads, lay.n_kv_heads, lay.head_dim, lay.d_model) == (30, 9, 3, 64, 576)
    assert lay.group_size == 3 and lay.n_total_heads == 270


def test_names_parse_and_bad_names_and_heads_are_clear_errors(smollm2):
    assert CircuitHook.parse("blocks.3.attn.head_out").kind == "attn.head_out"
    assert CircuitHook.parse("blocks.0.mlp_out", 30).name == "blocks.0.mlp_out"
    with pytest.raises(InvalidInputError) as e:
        CircuitHook.parse("blocks.3.attn.hook_z")
    assert "attn.z" in (e.value.hint or "")
    with pytest.raises(InvalidInputError, match="out of range"):
        CircuitHook.parse("blocks.30.attn.z", 30)
    lay = HeadLayout.of(smollm2)
    assert parse_heads("12.3, -1.0", lay) == [(12, 3), (29, 0)]
    with pytest.raises(InvalidInputError, match="head 9 is out of range") as e:
        parse_heads("4.9", lay)
    assert "0..8" in (e.value.hint or "")
    with pytest.raises(InvalidInputError, match="cannot read head"):
        parse_heads("4:2", lay)


def test_shapes_and_the_stream_adds_up(smollm2, ids):
    names = [f"blocks.5.{k}" for k in ("attn.z", "attn.head_out", "attn.pattern", "attn_out", "mlp_out")]
    names += ["blocks.5.resid_pre", "blocks.5.resid_post"]
    logits, c = run_with_cache(smollm2, ids, names)
    t = ids.shape[1]
    assert c["blocks.5.attn.z"].shape == (1, t, 9, 64)
    assert c["blocks.5.attn.head_out"].shape == (1, t, 9, 576)
    assert c["blocks.5.attn.pattern"].shape == (1, 9, t, t)
    # the heads' writes sum to the attention output (Llama's o_proj has no bias)
    torch.testing.assert_close(c["blocks.5.attn.head_out"].sum(2), c["blocks.5.attn_out"], atol=2e-4, rtol=1e-4)
    total = c["blocks.5.resid_pre"] + c["blocks.5.attn_out"] + c["blocks.5.mlp_out"]
    torch.testing.assert_close(total, c["blocks.5.resid_post"], atol=2e-4, rtol=1e-4)
    pat = c["blocks.5.attn.pattern"][0]
    torch.testing.assert_close(pat.sum(-1), torch.ones(9, t))
    assert torch.triu(pat, diagonal=1).abs().max() == 0  # causal
    # reading changes nothing: same logits as an unhooked pass (which ran sdpa, not eager)
    with torch.inference_mode():
        plain = smollm2.model(input_ids=ids).logits.float()
    torch.testing.assert_close(logits, plain, atol=5e-4, rtol=1e-4)
    assert smollm2.model.config._attn_implementation != "eager"


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


def test_heads_match_attention_recomputed_by_hand_from_the_weights(smollm2, ids):
    """z and the pattern from q/k/v weights, RoPE, grouped key/value heads and a causal softmax."""
    layer = 7
    _, c = run_with_cache(
        smollm2,
        ids,
        [
            f"blocks.{layer}.resid_pre",
            f"blocks.{layer}.attn.z",
            f"blocks.{layer}.attn.pattern",
            f"blocks.{layer}.attn.head_out",
        ],
    )
    block = smollm2.layers[layer]
    attn = block.self_attn
    x = block.input_layernorm(c[f"blocks.{layer}.resid_pre"]).detach()  # [1, t, d]
    t = x.shape[1]
    q = (x @ attn.q_proj.weight.T).view(1, t, 9, 64).transpose(1, 2)
    k = (x @ attn.k_proj.weight.T).view(1, t, 3, 64).transpose(1, 2)
    v = (x @ attn.v_proj.weight.T).view(1, t, 3, 64).transpose(1, 2)
    theta = smollm2.model.config.rope_parameters["rope_theta"]
    inv = 1.0 / theta ** (torch.arange(0, 64, 2).float() / 64)
    ang = torch.outer(torch.arange(t).float(), inv)
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    k, v = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)  # query head h reads kv head h // 3
    scores = q @ k.transpose(-1, -2) / 8.0
    scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    pattern = scores.softmax(-1)
    z = (pattern @ v).transpose(1, 2)  # [1, t, head, d_head]
    torch.testing.assert_close(c[f"blocks.{layer}.attn.pattern"], pattern, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(c[f"blocks.{layer}.attn.z"], z, atol=1e-4, rtol=1e-3)
    by_hand = torch.einsum("bphd,hdm->bphm", z, head_weights(smollm2, layer))
    torch.testing.assert_close(c[f"blocks.{layer}.attn.head_out"], by_hand, atol=2e-4, rtol=1e-3)


def test_replacing_a_heads_output_equals_zeroing_its_z(smollm2, ids):
    hook_z, hook_out = CircuitHook(4, "attn.z"), CircuitHook(4, "attn.head_out")

    def zero_z(h: CircuitHook, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        t[:, :, 2] = 0
        return t

    with torch.inference_mode(), circuit_hooks(smollm2, [hook_z], zero_z):
        a = smollm2.model(input_ids=ids).logits
    with torch.inference_mode(), circuit_hooks(smollm2, [hook_out], zero_z):
        b = smollm2.model(input_ids=ids).logits
    with torch.inference_mode():
        plain = smollm2.model(input_ids=ids).logits
    torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)
    assert (a - plain).abs().max() > 1e-3  # the edit did something


def test_hooks_restore_the_model_after_an_exception(smollm2, ids):
    before = {id(m): len(m._forward_hooks) + len(m._forward_pre_hooks) for m in smollm2.model.modules()}
    impl = smollm2.model.config._attn_implementation
    hooks = [CircuitHook(2, k) for k in ("attn.z", "attn.head_out", "attn.pattern", "attn_out", "mlp_out", "resid_pre")]

    def boom(h: CircuitHook, t: torch.Tensor) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), torch.inference_mode(), circuit_hooks(smollm2, hooks, boom):
        smollm2.model(input_ids=ids)
    after = {id(m): len(m._forward_hooks) + len(m._forward_pre_hooks) for m in smollm2.model.modules()}
    assert after == before
    assert smollm2.model.config._attn_implementation == impl


def test_patterns_are_read_only(smollm2, ids):
    with pytest.raises(InvalidInputError, match="read-only"), torch.inference_mode():
        with circuit_hooks(smollm2, [CircuitHook(1, "attn.pattern")], lambda h, t: t * 0):
            smollm2.model(input_ids=ids)


def test_grouped_query_qwen2_layout_with_biases():
    """A tiny random Qwen2 (4 query heads, 2 key/value heads, q/k/v biases): the head split and the sums hold."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from layerguard.models.handle import LoadedModel

    cfg = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    lm = LoadedModel(model=model, tokenizer=None, name="tiny-qwen2", source="test", weights_sha256="0" * 64)
    lay = HeadLayout.of(lm)
    assert (lay.n_heads, lay.n_kv_heads, lay.head_dim, lay.group_size) == (4, 2, 8, 2)
    ids = torch.randint(0, 64, (2, 7))
    _, c = run_with_cache(lm, ids, ["blocks.1.attn.head_out", "blocks.1.attn_out", "blocks.1.attn.pattern"])
    assert c["blocks.1.attn.head_out"].shape == (2, 7, 4, 32)
    torch.testing.assert_close(c["blocks.1.attn.head_out"].sum(2), c["blocks.1.attn_out"], atol=1e-5, rtol=1e-4)
    assert c["blocks.1.attn.pattern"].shape == (2, 4, 7, 7)
