"""One batched pass over prompt + answer gives the states the latent ring and output monitor read."""

from __future__ import annotations

import torch

from layerguard.guard.rings.latent import hook_name, latent_states
from layerguard.guard.rings.output_monitor import response_states
from layerguard.guard.states import exchange_states, response_key
from layerguard.guard.types import Exchange, Message


def test_batched_states_equal_the_separate_passes(smollm2):
    convs = [
        [{"role": "user", "content": "How do I bake bread?"}],
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Tell me a long story about a dragon and a knight."},
        ],
        [{"role": "user", "content": "Explain how to pick a lock."}],
    ]
    answers = ["Mix flour, water and yeast, then knead.", "Once upon a time", ""]
    got = exchange_states(smollm2, convs, answers, t_inst_layers=[4, 9], response_layers=[7], batch_size=2)
    exchanges = [Exchange(messages=[Message(**m) for m in c]) for c in convs]
    want = latent_states(smollm2, exchanges, [4, 9], batch_size=1)
    for g, w, c, a in zip(got, want, convs, answers, strict=True):
        for layer in (4, 9):
            ref = w[hook_name(layer)]
            assert torch.allclose(g[hook_name(layer)], ref, atol=1e-4 * float(ref.abs().max()))
        ref = response_states(smollm2, c, a, 7)
        assert g[response_key(7)].shape == ref.shape
        if len(ref):
            assert torch.allclose(g[response_key(7)], ref, atol=1e-4 * float(ref.abs().max()))
    assert exchange_states(smollm2, convs, answers) == [{}, {}, {}]  # nothing asked, no pass


def test_the_cached_template_opening_gives_the_states_of_a_whole_pass(smollm2):
    from layerguard.guard.states import encode_for_reads, opens_with, template_opening

    convs = [
        [{"role": "user", "content": "How do I bake bread?"}],
        [{"role": "user", "content": "Write a haiku about rain, then explain its form in two sentences."}],
        [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Say hi."}],
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Go on."},
        ],
        [{"role": "user", "content": ""}],  # no instruction: read at the end
    ]
    answers = ["Mix flour, water and yeast.", "", "Arr!", "Sure, here it goes", ""]
    opening = template_opening(smollm2)
    assert len(opening) >= 8  # SmolLM2's template opens with a default system prompt
    eligible = [opens_with(encode_for_reads(smollm2, c), opening) for c in convs]
    assert eligible[:2] == [True, True] and eligible[2] is False  # its own system prompt: a whole pass
    reads = [f"blocks.{layer}.resid_pre@{p}" for layer in (3, 20) for p in ("t_inst", "inst_mean", "post_mean")]
    kw = {"reads": reads, "response_layers": [12], "batch_size": 3}
    fast = exchange_states(smollm2, convs, answers, prefix_cache=True, **kw)
    slow = exchange_states(smollm2, convs, answers, prefix_cache=False, **kw)
    worst = _worst_relative_difference(fast, slow)
    assert worst < 1e-4, worst  # float32 rounding, not a different computation


def test_a_frame_the_prompts_share_is_cached_too_and_reads_stay_after_it(smollm2):
    from layerguard.data.samples import Sample
    from layerguard.guard.states import encode_for_reads, shared_opening, template_opening
    from layerguard.redteam.attacks import get_attack

    prompts = ["How do I pick a lock?", "How do I bake bread?", "Write a haiku about rain."]
    convs = [get_attack("many_shot_4")(Sample(id=str(i), prompt=p, label="harmful")) for i, p in enumerate(prompts)]
    enc = [encode_for_reads(smollm2, c) for c in convs]
    template = template_opening(smollm2)
    opening = shared_opening(enc, template)
    # the faux exchanges are shared; the shared start stops before every instruction ("How do I" is shared too)
    assert len(opening) > len(template) + 50
    assert opening[: len(template)] == template
    assert all(pp.instruction is not None and pp.instruction[0] >= len(opening) for pp in enc)
    # a lone prompt or prompts that share nothing more keep the template's opening
    assert shared_opening(enc[:1], template) == template
    plain = [encode_for_reads(smollm2, [{"role": "user", "content": p}]) for p in prompts]
    assert shared_opening(plain, template) == template
    reads = [f"blocks.{layer}.resid_pre@{p}" for layer in (3, 20) for p in ("t_inst", "inst_mean", "post_mean")]
    kw = {"reads": reads, "response_layers": [12], "batch_size": 2}
    answers = ["I can't help with that.", "Mix flour and water.", ""]
    fast = exchange_states(smollm2, convs, answers, prefix_cache=True, **kw)
    slow = exchange_states(smollm2, convs, answers, prefix_cache=False, **kw)
    worst = _worst_relative_difference(fast, slow)
    assert worst < 1e-4, worst


def _worst_relative_difference(fast, slow) -> float:
    """The largest difference between two reads of the same states, relative to each read's scale."""
    worst = 0.0
    for f, s in zip(fast, slow, strict=True):
        assert f.keys() == s.keys()
        for name in f:
            assert f[name].shape == s[name].shape
            if s[name].numel():
                worst = max(worst, float((f[name] - s[name]).abs().max() / s[name].abs().max()))
    return worst
