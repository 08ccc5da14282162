"""Latent ring v2: wrapper augmentation, held-out-wrapper selection, pooled reads, release, debounced monitor."""

from __future__ import annotations

import pytest


def _samples(n: int, label: str) -> list:
    from layerguard.data.samples import Sample

    return [Sample(id=f"{label}-{i}", prompt=f"{label} request number {i}", label=label) for i in range(n)]


def test_training_set_wraps_both_labels_with_training_wrappers_only_and_balanced():
    from collections import Counter

    from layerguard.data.heldout import assert_not_held_out
    from layerguard.data.wrappers import TRAINING_WRAPPERS
    from layerguard.guard.latent_fit import training_set

    ts = training_set(_samples(48, "harmful"), _samples(48, "harmless"), copies=1, seed=3)
    assert len(ts) == 192
    wrapped = [(w, y) for w, y in zip(ts.wrapper, ts.y, strict=True) if w]
    assert len(wrapped) == 96 and {w for w, _ in wrapped} <= set(TRAINING_WRAPPERS)
    # every wrapper wraps harmful and benign prompts alike (within one deal of the deck)
    per = Counter((w, y) for w, y in wrapped)
    for w in {w for w, _ in wrapped}:
        assert abs(per[(w, 1)] - per[(w, 0)]) <= 1
    assert_not_held_out(ts.conversations, "test")  # no evaluation-family text slipped in


def test_wrapper_split_holds_out_whole_wrappers_and_whole_prompts():
    from layerguard.guard.latent_fit import training_set, wrapper_split

    ts = training_set(_samples(60, "harmful"), _samples(60, "harmless"), copies=1, seed=0)
    sp = wrapper_split(ts, seed=1)
    assert sp.held_wrappers
    fit_w = {ts.wrapper[i] for i in sp.fit if ts.wrapper[i]}
    hold_w = {ts.wrapper[i] for i in sp.hold if ts.wrapper[i]}
    assert hold_w <= set(sp.held_wrappers) and not (fit_w & set(sp.held_wrappers))
    text = [c[-1]["content"] for c in ts.conversations]
    plain_hold = {text[i] for i in sp.hold if not ts.wrapper[i]}
    plain_fit = {text[i] for i in sp.fit if not ts.wrapper[i]}
    assert plain_hold and not (plain_hold & plain_fit)


def test_selection_prefers_the_read_that_carries_harm_over_the_one_that_carries_the_wrapper():
    import torch

    from layerguard.guard import latent_fit as lf

    ts = lf.training_set(_samples(120, "harmful"), _samples(120, "harmless"), copies=1, seed=0)
    g = torch.Generator().manual_seed(0)
    n, d = len(ts), 16
    y = torch.tensor(ts.y, dtype=torch.float32)
    wrapped = torch.tensor([1.0 if w else 0.0 for w in ts.wrapper])
    clean = torch.randn(n, d, generator=g)
    clean[:, 0] += 2.0 * y  # harm, whatever the frame
    framed = torch.randn(n, d, generator=g)
    framed[:, 0] += 2.0 * y * (1 - wrapped) + 3.0 * wrapped  # harm on plain prompts, the frame on wrapped ones
    states = {"blocks.1.resid_pre@t_inst": clean, "blocks.2.resid_pre@t_inst": framed}
    for layer in (1, 2):
        for p in ("inst_mean", "post_mean"):
            states[f"blocks.{layer}.resid_pre@{p}"] = torch.randn(n, d, generator=g)
    reads, variant, table = lf.select(states, ts, [1, 2], ["centroid"], target_fpr=0.05, seed=0)
    assert "blocks.1.resid_pre@t_inst" in reads and "blocks.2.resid_pre@t_inst" not in reads
    row = {tuple(r["reads"]): r for r in table}
    assert row[("blocks.2.resid_pre@t_inst",)]["fpr_wrapped_benign"] > 0.5
    assert row[("blocks.1.resid_pre@t_inst",)]["fpr_wrapped_benign"] < 0.25


def _release_model(below: float, refusal_above: float, layer: int = 3, d: int = 576):
    import torch

    from layerguard.directions.direction import Direction
    from layerguard.guard.probe import LogisticProbe
    from layerguard.guard.rings.latent import LatentGuardModel, Release

    g = torch.Generator().manual_seed(0)
    vec = torch.randn(d, generator=g)
    refusal = Direction(torch.zeros(layer + 1, d), "refusal", "post_mean", "m@x", "x" * 64, "t" * 64, layer)
    refusal.vectors[layer] = vec
    scorer = LogisticProbe(torch.zeros(2), -3.0, torch.zeros(2), torch.ones(2))  # score sigmoid(-3) = 0.047
    return LatentGuardModel(
        layer=layer,
        variant="centroid",
        direction=torch.nn.functional.normalize(torch.randn(2, d, generator=g), dim=-1),
        scorer=scorer,
        threshold=0.5,
        model_id="m@x",
        weights_sha256="x" * 64,
        template_sha256="t" * 64,
        reads=[f"blocks.{layer}.resid_pre@t_inst", f"blocks.{layer}.resid_pre@inst_mean"],
        release=Release(refusal, below, refusal_above),
    ), vec


def test_latent_model_with_reads_and_release_round_trips_and_offers_release_only_inside_its_bounds(tmp_path):
    import torch

    from layerguard.guard.rings.latent import LatentGuardModel, LatentRing
    from layerguard.guard.types import Exchange

    model, vec = _release_model(below=0.1, refusal_above=0.0)
    model.save(tmp_path)
    back = LatentGuardModel.load(tmp_path)
    assert back.reads == model.reads and back.release is not None
    assert back.release.below == 0.1 and torch.allclose(back.release.vector(), vec / vec.norm())
    ring = LatentRing(back)
    assert ring.reads[-1] == "blocks.3.resid_pre@post_mean"  # the refusal intent is read too
    states = {r: torch.zeros(576) for r in ring.reads[:2]}
    leaning = Exchange.from_prompt("hi", activations={**states, ring.reads[-1]: vec.clone()})
    not_leaning = Exchange.from_prompt("hi", activations={**states, ring.reads[-1]: -vec.clone()})
    assert ring.check(leaning).details.get("release") is True
    assert "release" not in ring.check(not_leaning).details
    strict, _ = _release_model(below=0.01, refusal_above=0.0)  # the score 0.047 is not low enough
    assert "release" not in LatentRing(strict).check(leaning).details


def test_guarded_model_answers_a_released_request_with_the_refusal_direction_ablated(smollm2):
    import torch

    from layerguard.guard.backend import GenerationParams
    from layerguard.guard.guarded import Finished, GuardedModel, local_backend
    from layerguard.guard.pipeline import Guard
    from layerguard.guard.rings.latent import LatentRing
    from layerguard.guard.types import Exchange

    model, _ = _release_model(below=1.0, refusal_above=-1e9, layer=20, d=smollm2.d_model)
    model.weights_sha256, model.model_id = smollm2.weights_sha256, smollm2.model_id
    ring = LatentRing(model, lm=smollm2)
    ex = Exchange.from_prompt("Name three colours.")
    params = GenerationParams(max_tokens=8)
    g_on, g_off = Guard([ring], release=True), Guard([ring], release=False)
    on = GuardedModel(g_on, local_backend(g_on, smollm2), lm=smollm2)
    off = GuardedModel(g_off, local_backend(g_off, smollm2), lm=smollm2)
    assert on.release_vector(on.check(ex.model_copy())) is not None
    assert off.release_vector(off.check(ex.model_copy())) is None
    many = on.respond_many([ex.model_copy()], max_new_tokens=8)
    assert many[0].released and many[0].text
    with torch.inference_mode():
        before = smollm2.model(input_ids=torch.tensor([[1, 2, 3]])).logits
    done = [e for e in off.respond(ex.model_copy(), params) if isinstance(e, Finished)][0]
    assert not done.released
    done = [e for e in on.respond(ex.model_copy(), params) if isinstance(e, Finished)][0]
    assert done.released and done.text
    with torch.inference_mode():
        after = smollm2.model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert torch.equal(before, after)  # no ablation hook left behind


@pytest.mark.parametrize(("debounce", "halts"), [(1, True), (3, False)])
def test_output_monitor_debounce_ignores_a_one_token_spike(debounce, halts):
    import torch

    from layerguard.guard.probe import LogisticProbe
    from layerguard.guard.rings.output_monitor import OutputMonitor

    probe = LogisticProbe(torch.tensor([10.0]), 0.0, torch.zeros(1), torch.ones(1))  # p = sigmoid(10 x)
    mon = OutputMonitor(0, probe, threshold=0.6, alpha=1.0, min_tokens=1, debounce=debounce)
    spike = torch.tensor([[-1.0], [-1.0], [1.0], [-1.0], [-1.0]])  # one alarming token
    assert (mon.response_score(spike) >= mon.threshold) is halts
    sustained = torch.tensor([[-1.0], [1.0], [1.0], [1.0], [1.0]])
    assert mon.response_score(sustained) >= mon.threshold
