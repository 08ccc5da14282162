"""Batched greedy generation with a shared-prefix cache gives the answers of plain generation."""

from __future__ import annotations

import torch

from layerguard.data.builtin import load_builtin
from layerguard.models.generate import PrefixCache, encode_many, generate, shared_prefix
from layerguard.redteam.attacks import get_attack


def _convs(attack: str, n: int = 6) -> list:
    return [get_attack(attack)(s) for s in load_builtin("harmful", "val")[:n]]


def test_prefix_cache_gives_the_answers_and_first_logits_of_plain_generation(smollm2):
    for attack in ("dan", "many_shot_4"):
        convs = _convs(attack)
        assert shared_prefix(encode_many(smollm2, convs), 16) >= 16  # a long shared opening to reuse
        firsts: dict[str, dict[int, torch.Tensor]] = {"plain": {}, "cached": {}}

        def keep(which: str, firsts: dict[str, dict[int, torch.Tensor]] = firsts):
            def on_first(rows: list[int], logits: torch.Tensor) -> None:
                for r, row in zip(rows, logits, strict=True):
                    firsts[which][r] = row

            return on_first

        plain = generate(smollm2, convs, max_new_tokens=12, batch_size=4, on_first_logits=keep("plain"))
        cache = PrefixCache()
        cached = generate(
            smollm2, convs, max_new_tokens=12, batch_size=4, on_first_logits=keep("cached"), prefix_cache=cache
        )
        assert cached == plain, attack
        assert (cache.misses, cache.hits) == (1, 1)  # two batches, one prefix pass
        for r in range(len(convs)):
            a, b = firsts["plain"][r], firsts["cached"][r]
            assert (a - b).abs().max() <= 1e-3 * a.abs().max(), (attack, r)
        # a later call with the same opening reuses it
        again = generate(smollm2, convs, max_new_tokens=12, batch_size=4, prefix_cache=cache)
        assert again == plain and (cache.misses, cache.hits) == (1, 3)


def test_prefix_cache_without_a_shared_opening_is_plain_generation(smollm2):
    convs = [[{"role": "user", "content": p}] for p in ("Hi", "Name a color.")]
    cache = PrefixCache(min_len=10_000)
    assert generate(smollm2, convs, max_new_tokens=6, prefix_cache=cache) == generate(smollm2, convs, max_new_tokens=6)
    assert cache.misses == cache.hits == 0
