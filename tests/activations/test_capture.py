"""Activation capture on the real smollm2-135m: batched == one-by-one == output_hidden_states."""

from __future__ import annotations

import pytest
import torch

from layerguard.activations import ActivationSet, HookPoint, capture_activations, residual_hooks
from layerguard.errors import InvalidInputError

PROMPTS = [
    "How do I kill a Python process?",
    "Hi",
    "Write a long step-by-step guide to baking sourdough bread at home with a cast iron pot and some patience.",
    "What is 2+2?",
    [
        {"role": "user", "content": "Tell me about chess."},
        {"role": "assistant", "content": "Chess is a board game."},
        {"role": "user", "content": "Who invented it?"},
    ],
]


def assert_close_scaled(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> None:
    """Equal within ``tol`` relative to the largest magnitude at that hook point.

    Batched and single matmuls round differently in fp32; the residual stream of late
    layers reaches magnitudes of several hundred, where one ulp is ~6e-5.
    """
    scale = max(1.0, b.abs().max().item())
    diff = (a - b).abs().max().item()
    assert diff <= tol * scale, f"max diff {diff:.3g} > {tol} x {scale:.3g}"


@pytest.fixture(scope="module")
def batched(smollm2):
    return capture_activations(
        smollm2, PROMPTS, points=["resid_pre", "resid_post"], positions=["t_inst", "last", "post_inst"], batch_size=5
    )


def test_shapes_names_and_labels(batched, smollm2):
    assert len(batched) == len(PROMPTS)
    assert batched.names[0] == "blocks.0.resid_pre" and len(batched.names) == 2 * smollm2.n_layers
    assert batched.positions == ["t_inst", "last"] + [f"post_inst[{i}]" for i in range(6)]
    assert batched["blocks.3.resid_post"].shape == (len(PROMPTS), 8, smollm2.d_model)
    assert batched["blocks.3.resid_post"].dtype == torch.float32


def test_batched_equals_output_hidden_states(batched, smollm2):
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor([smollm2.encode(prompt).input_ids])
        with torch.inference_mode():
            hs = smollm2.model(input_ids=ids, output_hidden_states=True).hidden_states
        cols = batched.token_index[i].tolist()
        for layer in range(smollm2.n_layers):
            assert_close_scaled(batched[f"blocks.{layer}.resid_pre"][i], hs[layer][0, cols])
            if layer + 1 < smollm2.n_layers:  # the last hidden state has the final norm applied
                assert_close_scaled(batched[f"blocks.{layer}.resid_post"][i], hs[layer + 1][0, cols])


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_batched_equals_one_by_one(batched, smollm2, prefix_cache):
    """Each prompt alone, in its own block (no shared prefix, no padding), vs the batched capture."""
    for i, prompt in enumerate(PROMPTS):
        single = capture_activations(
            smollm2,
            [prompt],
            points=["resid_pre", "resid_post"],
            positions=["t_inst", "last", "post_inst"],
            prefix_cache=prefix_cache,
        )
        assert torch.equal(single.token_index[0], batched.token_index[i])
        for name in batched.names:
            assert_close_scaled(batched[name][i], single[name][0])


def test_left_padded_path_equals_prefix_path(batched, smollm2):
    padded = capture_activations(
        smollm2,
        PROMPTS,
        points=["resid_pre", "resid_post"],
        positions=["t_inst", "last", "post_inst"],
        batch_size=3,
        prefix_cache=False,
    )
    for name in batched.names:
        assert_close_scaled(padded[name], batched[name])


def test_common_prefix_excludes_requested_columns(smollm2):
    from layerguard.activations.capture import common_prefix_len, expand_positions

    enc = [smollm2.encode(p) for p in PROMPTS[:4]]
    _, cols = expand_positions(enc, ["t_inst"])
    n = common_prefix_len(enc, cols)
    assert n > 8  # SmolLM2's default system prompt is shared
    assert all(e.input_ids[:n] == enc[0].input_ids[:n] for e in enc)
    _, cols0 = expand_positions(enc, [0, "t_inst"])
    assert common_prefix_len(enc, cols0) == 0


def test_t_inst_column_is_the_question_mark(batched, smollm2):
    idx = batched.token_index[0, 0].item()
    ids = smollm2.encode(PROMPTS[0]).input_ids
    assert smollm2.tokenizer.convert_ids_to_tokens([ids[idx]]) == ["?"]


def test_subset_of_layers_stops_early_and_matches(batched, smollm2):
    sub = capture_activations(smollm2, PROMPTS, layers=[2, -1], positions=["t_inst", "last", "post_inst"])
    assert sub.names == ["blocks.2.resid_pre", "blocks.29.resid_pre"]
    assert_close_scaled(sub["blocks.2.resid_pre"], batched["blocks.2.resid_pre"])
    assert_close_scaled(sub["blocks.29.resid_pre"], batched["blocks.29.resid_pre"])


def test_streaming_to_disk_equals_memory(tmp_path, batched, smollm2):
    out = capture_activations(
        smollm2,
        PROMPTS,
        points=["resid_pre", "resid_post"],
        positions=["t_inst", "last", "post_inst"],
        out_dir=tmp_path / "cap",
        shard_size=2,
    )
    assert len(list(out.glob("shard-*.safetensors"))) == 3
    loaded = ActivationSet.load(out)
    assert loaded.positions == batched.positions
    assert loaded.meta["model_id"] == smollm2.model_id
    for name in batched.names:
        assert_close_scaled(loaded[name], batched[name])
    with pytest.raises(InvalidInputError, match="already holds a capture"):
        capture_activations(smollm2, PROMPTS[:1], out_dir=out)


def test_hooks_removed_after_exception(smollm2):
    blocks = smollm2.layers

    def count():
        return sum(len(b._forward_hooks) + len(b._forward_pre_hooks) for b in blocks)

    before = count()
    hps = [HookPoint(1, "resid_pre"), HookPoint(4, "resid_post")]

    def boom(hp, hidden):
        raise RuntimeError("reader failed")

    with pytest.raises(RuntimeError, match="reader failed"):
        with residual_hooks(blocks, hps, boom):
            smollm2.model(input_ids=torch.tensor([[1, 2, 3]]))
    assert count() == before
    # and a capture that fails mid-way leaves no hooks either
    with pytest.raises(InvalidInputError):
        capture_activations(smollm2, ["ok", "x"], positions=["post_inst[40]"])
    assert count() == before


def test_intervention_hook_replaces_stream(smollm2):
    ids = torch.tensor([smollm2.encode("Hello").input_ids])
    with torch.inference_mode():
        base = smollm2.model(ids).logits
        with residual_hooks(smollm2.layers, [HookPoint(5, "resid_pre")], lambda hp, h: h * 0):
            zeroed = smollm2.model(ids).logits
        again = smollm2.model(ids).logits
    assert not torch.allclose(base, zeroed)
    assert torch.equal(base, again)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layers": [30]}, "out of range"),
        ({"layers": [-31]}, "out of range"),
        ({"points": ["resid_mid"]}, "unknown hook point"),
        ({"positions": ["middle"]}, "unknown position"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(smollm2, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        capture_activations(smollm2, PROMPTS[:2], **kwargs)


def test_empty_prompt_list(smollm2):
    with pytest.raises(InvalidInputError, match="no prompts"):
        capture_activations(smollm2, [])


def test_hook_name_parsing():
    assert HookPoint.parse("blocks.12.resid_pre") == HookPoint(12, "resid_pre")
    assert HookPoint.parse("blocks.3.resid_post").name == "blocks.3.resid_post"
    with pytest.raises(InvalidInputError):
        HookPoint.parse("blocks.x.resid_pre")
    with pytest.raises(InvalidInputError, match="out of range"):
        HookPoint.parse("blocks.40.resid_pre", n_layers=30)
