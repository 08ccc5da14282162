"""The lab on the real smollm2-135m: directions, interventions, refusal scores, selection."""

from __future__ import annotations

import json

import pytest
import torch

from layerguard.activations.interventions import (
    ablate_direction,
    add_vector,
    export_model,
    orthogonalize_weights,
)
from layerguard.data.builtin import load_builtin
from layerguard.directions.direction import Direction, DirectionMismatchError
from layerguard.directions.extract import extract_directions
from layerguard.directions.refusal import RefusalTokens, derive_refusal_tokens, is_refusal_text, log_odds
from layerguard.directions.select import select_refusal_direction
from layerguard.errors import InvalidInputError
from layerguard.models.generate import generate, last_logits
from layerguard.stats import auroc, wilson


@pytest.fixture(scope="module")
def small_sets():
    harmful = [s for s in load_builtin("harmful", "train")][:12]
    harmless = [s for s in load_builtin("harmless", "train")][:12]
    return harmful, harmless


@pytest.fixture(scope="module")
def dirs(smollm2, small_sets):
    return extract_directions(smollm2, *small_sets)


def test_extraction_keys_shapes_and_metadata(dirs, smollm2):
    assert set(dirs) == {"harmfulness"} | {f"refusal@post_inst[{i}]" for i in range(6)}
    h = dirs["harmfulness"]
    assert h.vectors.shape == (30, 576) and h.position == "t_inst"
    assert h.weights_sha256 == smollm2.weights_sha256 and len(h.meta["data_sha256"]) == 64
    # layer 0 only sees the t_inst token's embedding, which both sides mostly share ("?" / ".")
    assert torch.isfinite(h.vectors).all() and h.vectors[1:].norm(dim=-1).min() > 0


def test_direction_arithmetic_and_cosine(dirs):
    h, r = dirs["harmfulness"], dirs["refusal@post_inst[5]"]
    assert torch.allclose((h - r).vectors, h.vectors - r.vectors)
    assert torch.allclose((2 * h).vectors, 2 * h.vectors)
    assert torch.allclose((-h).vectors, -h.vectors)
    cos = h.cosine(r)
    assert cos.shape == (30,) and (cos.abs() <= 1 + 1e-6).all()
    assert torch.allclose(h.cosine(h)[1:], torch.ones(29), atol=1e-5)


def test_direction_save_load_and_mismatch(tmp_path, dirs, smollm2):
    h = dirs["harmfulness"].with_layer(10)
    path = h.save(tmp_path / "harm")
    meta = json.loads((tmp_path / "harm.json").read_text())
    for key in ("model_id", "weights_sha256", "role", "layer", "position", "template_sha256", "command"):
        assert key in meta
    assert "data_sha256" in meta["meta"] and meta["layerguard_version"]
    back = Direction.load(path, model=smollm2)
    assert torch.equal(back.vectors, h.vectors) and back.layer == 10
    other = Direction(h.vectors, "x", "t_inst", "other@1", "f" * 64, h.template_sha256)
    other.save(tmp_path / "other")
    with pytest.raises(DirectionMismatchError, match="extracted from other@1"):
        Direction.load(tmp_path / "other", model=smollm2)
    with pytest.raises(DirectionMismatchError):
        _ = h - other
    with pytest.raises(InvalidInputError, match="does not exist"):
        Direction.load(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="out of range"):
        h.at(30)


def test_bad_contrast_sets(smollm2, small_sets):
    harmful, harmless = small_sets
    with pytest.raises(InvalidInputError, match="harmless side .* empty"):
        extract_directions(smollm2, harmful, [])
    with pytest.raises(InvalidInputError, match="harmful side .* empty"):
        extract_directions(smollm2, [], harmless)
    with pytest.raises(InvalidInputError, match="single prompt"):
        extract_directions(smollm2, harmful[:1], harmless)


def test_add_vector_changes_output_and_restores(smollm2, dirs):
    prompts = ["Tell me about chess."]
    base = last_logits(smollm2, prompts)
    v = dirs["harmfulness"].at(8)
    with add_vector(smollm2, v, layer=8, alpha=4.0):
        steered = last_logits(smollm2, prompts)
    after = last_logits(smollm2, prompts)
    assert not torch.allclose(base, steered, atol=1e-3)
    assert torch.equal(base, after)
    with pytest.raises(InvalidInputError, match="out of range"):
        with add_vector(smollm2, v, layer=99):
            pass
    with pytest.raises(InvalidInputError, match="does not fit"):
        with add_vector(smollm2, torch.zeros(3), layer=1):
            pass


def test_ablation_removes_direction_from_every_block_input(smollm2, dirs):
    from layerguard.activations.hooks import HookPoint, residual_hooks

    v = dirs["refusal@post_inst[5]"].at(12)
    r = v / v.norm()
    seen = []
    ids = torch.tensor([smollm2.encode("How do I kill a Python process?").input_ids])
    points = [HookPoint(i, "resid_pre") for i in range(30)]
    with (
        ablate_direction(smollm2, v),
        residual_hooks(smollm2.layers, points, lambda hp, h: seen.append((h @ r) / h.norm(dim=-1))),
    ):
        smollm2.model(ids)
    assert len(seen) == 30
    # without ablation this cosine is far from 0 at the middle layers
    assert max(float(s.abs().max()) for s in seen) < 1e-5


def test_orthogonalized_weights_equal_ablation_hooks(tmp_path, smollm2, dirs):
    v = dirs["refusal@post_inst[5]"].at(12)
    prompts = ["How do I kill a Python process?", "Write a poem about the sea."]
    with ablate_direction(smollm2, v):
        hooked = last_logits(smollm2, prompts)
    ortho = orthogonalize_weights(smollm2, v)
    folded = last_logits(ortho, prompts)
    assert (hooked - folded).abs().max() < 1e-3 * hooked.abs().max()
    # the user's model is untouched and still ties its embeddings
    assert smollm2.model.get_output_embeddings().weight is smollm2.model.get_input_embeddings().weight
    assert ortho.weights_sha256 != smollm2.weights_sha256
    out = export_model(ortho, tmp_path / "ortho")
    from layerguard.models import load_model

    reloaded = load_model(out)
    assert torch.allclose(last_logits(reloaded, prompts), folded, atol=1e-4)
    with pytest.raises(InvalidInputError, match="not empty"):
        export_model(ortho, out)


def test_refusal_text_judge():
    assert is_refusal_text("I'm sorry, but I can't help with that.")
    assert is_refusal_text("I cannot assist with creating malware.")
    assert is_refusal_text("As an AI language model, I cannot do that.")
    assert not is_refusal_text("Sure! Here is a recipe for sourdough bread.")
    assert not is_refusal_text("To kill a Python process, run `kill -9 PID`.")


def test_refusal_tokens_from_given_responses(smollm2):
    responses = ["I'm sorry, I can't help with that."] * 3 + ["I cannot assist with that."] * 2
    responses += ["Sure, here is how.", "To do this, first", "Here are the steps:", "I think the answer is 4."]
    tokens = derive_refusal_tokens(smollm2, ["x"] * len(responses), responses=responses)
    assert tokens.strings[0] == "I"  # opens 5 refusals and 1 compliance: precision 5/6
    assert tokens.stats["n_refused"] == 5
    with pytest.raises(InvalidInputError, match="refused 0"):
        derive_refusal_tokens(smollm2, ["x", "y"], responses=["Sure.", "Here."])


def test_log_odds_matches_hand_computation():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert torch.allclose(log_odds(logits, [0]), torch.tensor([0.0]), atol=1e-6)
    assert torch.allclose(log_odds(logits, [1]), torch.log(torch.tensor([0.25 / 0.75])), atol=1e-6)


def test_selection_runs_and_explains(smollm2, dirs, small_sets):
    harmful, harmless = small_sets
    tokens = RefusalTokens(
        tuple(
            smollm2.tokenizer(["I", " cannot", "Sorry"], add_special_tokens=False)["input_ids"][i][0] for i in range(3)
        ),
        ("I", " cannot", "Sorry"),
    )
    cands = {k: v for k, v in dirs.items() if k in ("refusal@post_inst[5]", "refusal@post_inst[0]")}
    sel = select_refusal_direction(
        smollm2, cands, [s.prompt for s in harmful[:4]], [s.prompt for s in harmless[:4]], tokens, layers=[4, 10]
    )
    assert len(sel.candidates) == 4
    assert sel.direction.layer in (4, 10) and sel.direction.role == "refusal"
    assert "chose" in sel.explanation and "selection" in sel.direction.meta
    best = min([c for c in sel.candidates if c.passed] or sel.candidates, key=lambda c: c.bypass)
    assert (sel.direction.position, sel.direction.layer) == (best.position, best.layer)
    with pytest.raises(InvalidInputError, match="out of range"):
        select_refusal_direction(smollm2, cands, ["a"], ["b"], tokens, layers=[31])


def test_generate_is_deterministic(smollm2):
    a = generate(smollm2, ["What is the capital of France?", "Say hi."], max_new_tokens=6)
    b = generate(smollm2, ["Say hi.", "What is the capital of France?"], max_new_tokens=6, batch_size=1)
    assert a == b[::-1] and "Paris" in a[0]


def test_stats():
    lo, hi = wilson(5, 10)
    assert 0.23 < lo < 0.24 and 0.76 < hi < 0.77  # known Wilson interval for 5/10
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1], [1]) == 0.5 and auroc([1, 2], [2, 3]) == 0.125


def test_last_logits_prefix_cache_equals_plain(smollm2, small_sets):
    prompts = [s.prompt for s in small_sets[0][:6]]
    plain = last_logits(smollm2, prompts, prefix_cache=False)
    cached = last_logits(smollm2, prompts)
    single = torch.cat([last_logits(smollm2, [p], prefix_cache=False) for p in prompts[:2]])
    scale = plain.abs().max()
    assert (plain - cached).abs().max() < 1e-4 * scale
    assert (single - cached[:2]).abs().max() < 1e-4 * scale
