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
