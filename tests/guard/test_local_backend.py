"""The local backend and the output monitor on the real smollm2-135m."""

from __future__ import annotations

import pytest
import torch

from layerguard.data.builtin import load_builtin
from layerguard.guard.backend import GenerationParams
from layerguard.guard.backends.local import LocalBackend
from layerguard.guard.rings.latent import latent_states
from layerguard.guard.rings.output_monitor import OutputMonitor, OutputMonitorRing, build_output_monitor
from layerguard.guard.types import Exchange
from layerguard.models.generate import generate


def test_prefill_activations_equal_capture_and_generation_equals_generate(smollm2):
    be = LocalBackend(smollm2, reads=["blocks.10.resid_pre@t_inst", "blocks.4.resid_pre@t_inst"])
    prompt = "What is the capital of France? Answer in one word."
    ex = Exchange.from_prompt(prompt)
    be.prepare(ex)
    ref = latent_states(smollm2, [ex], [4, 10])[0]
    for key in ("blocks.4.resid_pre@t_inst", "blocks.10.resid_pre@t_inst"):
        assert torch.allclose(ex.activations[key], ref[key], atol=1e-4 * ref[key].abs().max())
    chunks = list(be.stream(ex, GenerationParams(max_tokens=20)))
    assert "".join(c.text for c in chunks) == generate(smollm2, [prompt], max_new_tokens=20)[0]
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage["completion_tokens"] > 0


def test_a_check_only_batch_runs_after_the_cached_opening_and_reads_the_same_states(smollm2):
    from layerguard.guard.states import encode_for_reads, opens_with

    reads = [f"blocks.{layer}.resid_pre@{p}" for layer in (4, 10) for p in ("t_inst", "inst_mean", "post_mean")]
    be = LocalBackend(smollm2, reads=reads)
    prompts = ["Name a color.", "How do I pick a lock on my own front door?", "Write a limerick about tea."]
    opening, kv = be.opening()
    assert len(opening) >= 8 and kv.get_seq_length() == len(opening)
    checks = [Exchange.from_prompt(p) for p in prompts]
    assert all(opens_with(encode_for_reads(smollm2, [{"role": "user", "content": p}]), opening) for p in prompts)
    be.prefill_batch(checks, keep_cache=[False] * 3)  # checks only: after the cached opening
    whole = [Exchange.from_prompt(p) for p in prompts]
    be.prefill_batch(whole, keep_cache=[True] * 3)  # generation follows: a whole pass
    for c, w in zip(checks, whole, strict=True):
        assert c.prefill is None and w.prefill is not None
        for key in reads:
            ref = w.activations[key]
            assert torch.allclose(c.activations[key], ref, atol=1e-4 * ref.abs().max()), key


def test_stop_strings_max_tokens_and_sampling_seed(smollm2):
    be = LocalBackend(smollm2)
    ex = Exchange.from_prompt("Count from 1 to 20, separated by commas.")
    text = "".join(c.text for c in be.stream(ex, GenerationParams(max_tokens=40, stop=["5"])))
    assert "5" not in text and "4" in text
    chunks = list(be.stream(Exchange.from_prompt("Write a long story."), GenerationParams(max_tokens=5)))
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage["completion_tokens"] == 5
    p = GenerationParams(max_tokens=12, temperature=1.0, seed=7)
    a = "".join(c.text for c in be.stream(Exchange.from_prompt("Name a colour."), p))
    b = "".join(c.text for c in be.stream(Exchange.from_prompt("Name a colour."), p))
    assert a == b


@pytest.fixture(scope="module")
def monitor(smollm2):
    harmful = [s.prompt for s in load_builtin("harmful", "train")[:16]]
    benign = [s.prompt for s in load_builtin("harmless", "train")[:12]]
    return build_output_monitor(smollm2, harmful, benign, layer=12, max_new_tokens=24, target_fpr=0.1)


def test_monitor_trains_calibrates_and_round_trips(tmp_path, monitor, smollm2):
    assert monitor.meta["n_positive"] >= 2 and monitor.meta["cv_fpr"] <= 0.1 + 1e-9
    monitor.save(tmp_path / "m")
    back = OutputMonitor.load(tmp_path / "m")
    h = torch.randn(5, smollm2.d_model)
    assert back.trace(h) == pytest.approx(monitor.trace(h), rel=1e-5) and back.threshold == monitor.threshold


def test_monitor_halts_generation_mid_stream(smollm2, monitor):
    # a threshold of 0 trips as soon as min_tokens have been generated: the halt path itself
    strict = OutputMonitor(monitor.layer, monitor.probe, threshold=0.0, min_tokens=3)
    be = LocalBackend(smollm2, monitor=strict)
    chunks = list(
        be.stream(Exchange.from_prompt("Write a long story about a dragon."), GenerationParams(max_tokens=40))
    )
    last = chunks[-1]
    assert last.finish_reason == "content_filter" and last.halted_by == "output_monitor"
    assert last.usage["completion_tokens"] == 3
    # and a threshold above 1 never halts
    lax = OutputMonitor(monitor.layer, monitor.probe, threshold=1.01)
    chunks = list(
        LocalBackend(smollm2, monitor=lax).stream(Exchange.from_prompt("Say hi."), GenerationParams(max_tokens=8))
    )
    assert chunks[-1].halted_by is None


def test_monitor_ring_scores_responses(smollm2, monitor):
    ring = OutputMonitorRing(monitor, smollm2)
    ex = Exchange.from_prompt("Tell me about chess.")
    assert ring.check(ex).score == 0.0  # no response yet
    ex.response = "Chess is a strategy board game for two players."
    v = ring.check(ex)
    assert 0.0 <= v.score <= 1.0 and v.ring == "output_monitor"
