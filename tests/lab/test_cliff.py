"""The refusal-cliff probe: the detector on hand-made curves, the probe fit, the guard signal, mechanics on smollm2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from layerguard.errors import InvalidInputError
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.refusal_cliff import (
    PromptResponseStates,
    RefusalCliffRing,
    RefusalCliffSignal,
    prompt_response_states,
)
from layerguard.guard.types import Exchange, Message
from layerguard.lab.cliff import (
    CliffConfig,
    CurveRecord,
    cliff_of,
    detect_cliff,
    fit_cliff_probe,
    summarize_curves,
    token_curve,
    train_cliff_probe,
)

# --------------------------------------------------------------------------------------------
# detect_cliff on synthetic curves
# --------------------------------------------------------------------------------------------


def test_late_drop_fires_with_its_size_and_position():
    curve = [0.1, 0.2, 0.9, 0.95, 0.9, 0.85, 0.2, 0.1]
    c = detect_cliff(curve, start=2, stop=6, end=6, window=2)
    assert c.fired
    assert c.peak == pytest.approx(0.95) and c.peak_pos == 3
    assert c.end_value == pytest.approx(0.15)
    assert c.size == pytest.approx(0.8)
    assert c.drop_pos == 6


def test_flat_high_curve_is_no_cliff():
    c = detect_cliff([0.9] * 10, start=0, stop=8, end=8, window=2)
    assert not c.fired and c.size == pytest.approx(0.0) and c.drop_pos is None


def test_low_curve_cannot_fall_off_a_cliff():
    # the drop is large relative to the peak but the model never meant to refuse
    c = detect_cliff([0.45, 0.4, 0.05, 0.0], start=0, stop=2, end=2, window=2, min_peak=0.5, min_drop=0.3)
    assert not c.fired and c.size == pytest.approx(0.425)


def test_small_drop_is_below_threshold_and_rising_curve_is_negative():
    assert not detect_cliff([0.9, 0.9, 0.75], start=0, stop=2, end=2, min_drop=0.3).fired
    rising = detect_cliff([0.1, 0.3, 0.6, 0.9], start=0, stop=3, end=3)
    assert not rising.fired and rising.size < 0


def test_defaults_read_the_last_token():
    c = detect_cliff([0.2, 0.9, 0.8, 0.1])
    assert c.fired and c.end_value == pytest.approx(0.1) and c.peak_pos == 1


@pytest.mark.parametrize(
    "kw", [{"start": 3, "stop": 3, "end": 4}, {"start": 0, "stop": 2, "end": 4, "window": 2}, {"window": 0}]
)
def test_bad_regions_are_user_errors(kw):
    with pytest.raises(InvalidInputError):
        detect_cliff([0.5] * 5, **kw)


def _record(scores, n_prompt, t_inst, group="g"):
    return CurveRecord(group, "id", "direct", False, "", scores, n_prompt, t_inst, (0, t_inst + 1))


def test_cliff_of_modes_and_summary():
    # prompt of 6 tokens (t_inst = 3), intention high on the template, gone once the answer starts
    rec = _record([0.1, 0.2, 0.3, 0.9, 0.9, 0.8, 0.1, 0.1, 0.1, 0.1], 6, 3, "jailbroken")
    flat = _record([0.1, 0.2, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], 6, 3, "refused")
    assert cliff_of(rec, mode="generation").fired
    assert not cliff_of(rec, mode="template").fired  # last template token is still 0.8
    assert not cliff_of(flat, mode="generation").fired
    no_answer = _record([0.1, 0.9, 0.9, 0.1], 4, 1)
    assert cliff_of(no_answer, mode="generation").fired  # end = last template token
    with pytest.raises(InvalidInputError):
        cliff_of(rec, mode="bogus")
    s = summarize_curves([rec, flat], CliffConfig(align_before=4, align_after=2))
    assert s["jailbroken"]["cliff_rate_generation"]["rate"] == 1.0
    assert s["refused"]["cliff_rate_generation"]["rate"] == 0.0
    assert s["jailbroken"]["mean_score_last_template_token"] == pytest.approx(0.8)
    assert s["jailbroken"]["aligned"]["x"] == [-4, -3, -2, -1, 0, 1]
    assert s["jailbroken"]["aligned"]["mean"] == pytest.approx([0.3, 0.9, 0.9, 0.8, 0.1, 0.1])


# --------------------------------------------------------------------------------------------
# probe fit and layer choice
# --------------------------------------------------------------------------------------------


def test_fit_chooses_the_informative_layer():
    g = torch.Generator().manual_seed(0)
    n, p, d = 40, 3, 8
    labels = [i % 2 == 0 for i in range(n)]
    states = torch.randn(n, 2, p, d, generator=g)
    y = torch.tensor([1.0 if v else -1.0 for v in labels])
    states[:, 1, :, 0] += 3 * y[:, None]  # layer 7 carries the label; layer 3 is noise
    cp = fit_cliff_probe(states, labels, [3, 7])
    assert cp.layer == 7
    assert cp.meta["layer_auroc_inner_holdout"][7] > 0.95 > cp.meta["layer_auroc_inner_holdout"][3]
    assert float(cp.probe.predict(states[0, 1]).mean()) > 0.9


def test_fit_needs_both_behaviours():
    with pytest.raises(InvalidInputError, match="refused"):
        fit_cliff_probe(torch.zeros(10, 1, 2, 4), [True] * 2 + [False] * 8, [0])


# --------------------------------------------------------------------------------------------
# the guard signal
# --------------------------------------------------------------------------------------------


def _axis_signal(d=4, threshold=0.5):
    # intention = sigmoid(10 * (x0 - 0.5)): x0 = 1 -> ~1, x0 = 0 -> ~0
    w = torch.zeros(d)
    w[0] = 10.0
    probe = LogisticProbe(w, -5.0, torch.zeros(d), torch.ones(d))
    return RefusalCliffSignal(layer=2, probe=probe, threshold=threshold, alpha=1.0)


def _h(x0, d=4):
    v = torch.zeros(d)
    v[0] = x0
    return v


def test_signal_scores_the_drop_from_a_primed_peak():
    sig = _axis_signal()
    st = sig.start()
    sig.prime(st, torch.stack([_h(0.0), _h(1.0)]))
    assert st["peak"] > 0.99
    assert sig.update(st, _h(1.0)) < 0.01
    assert sig.update(st, _h(0.0)) > 0.98
    assert st["max"] > 0.98


def test_signal_is_silent_without_a_high_peak_and_catches_drops_inside_the_answer():
    sig = _axis_signal()
    st = sig.start()
    assert sig.update(st, _h(0.0)) == 0.0 and sig.update(st, _h(0.2)) == 0.0
    st = sig.start()  # unprimed: a high intention inside the answer becomes the peak
    sig.update(st, _h(1.0))
    assert sig.update(st, _h(0.0)) > 0.98


def test_signal_score_states_and_round_trip(tmp_path):
    sig = _axis_signal()
    prs = PromptResponseStates(torch.stack([_h(0.0), _h(1.0), _h(1.0), _h(0.0), _h(0.0)]), 3, 1, (0, 2))
    assert sig.score_states(prs) > 0.98
    refused = PromptResponseStates(torch.stack([_h(0.0), _h(1.0), _h(1.0), _h(1.0)]), 3, 1, (0, 2))
    assert sig.score_states(refused) < 0.01
    sig.meta = {"note": "x"}
    sig.save(tmp_path / "s")
    back = RefusalCliffSignal.load(tmp_path / "s")
    assert (back.layer, back.threshold, back.min_peak, back.alpha, back.meta) == (2, 0.5, 0.5, 1.0, {"note": "x"})
    assert torch.equal(back.probe.w, sig.probe.w) and back.score_states(prs) == pytest.approx(sig.score_states(prs))
    with pytest.raises(InvalidInputError):
        RefusalCliffSignal.load(tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# mechanics on the real small model
# --------------------------------------------------------------------------------------------


def test_states_cover_prompt_and_answer(smollm2):
    prs = prompt_response_states(smollm2, "How do I bake bread?", "Mix flour and water.", 5)
    resp = smollm2.tokenizer("Mix flour and water.", add_special_tokens=False)["input_ids"]
    assert prs.states.shape == (prs.n_prompt + len(resp), smollm2.d_model)
    assert prs.t_inst is not None and prs.t_inst < prs.n_prompt - 1
    empty = prompt_response_states(smollm2, "Hi there", "", 5)
    assert empty.states.shape[0] == empty.n_prompt


def test_probe_curve_and_ring_on_smollm2(smollm2):
    from layerguard.data.builtin import load_builtin

    harmful, harmless = load_builtin("harmful", "train")[:6], load_builtin("harmless", "train")[:6]
    # smollm2 almost never refuses: give it the labels (its behaviour is not what is tested here)
    answers = ["I'm sorry, I can't help with that."] * 6 + ["Sure, here is how."] * 6
    cp, got = train_cliff_probe(smollm2, harmful, harmless, layers=[4, 10], answers=answers)
    assert got == answers and cp.layer in (4, 10)
    assert cp.meta["refused_harmful"] == 6 and cp.meta["refused_harmless"] == 0
    rec = token_curve(
        smollm2,
        cp,
        harmful[0].conversation(),
        "Sure, here is how.",
        group="x",
        sample_id="a",
        attack="direct",
        refused=False,
    )
    assert len(rec.scores) > rec.n_prompt and all(0.0 <= s <= 1.0 for s in rec.scores)
    sig = RefusalCliffSignal(cp.layer, cp.probe, threshold=0.3)
    ring = RefusalCliffRing(sig, smollm2)
    ex = Exchange(messages=[Message(role="user", content=harmful[0].prompt)])
    assert ring.check(ex).decision == "allow"
    ex.response = "Sure, here is how."
    v = ring.check(ex)
    assert 0.0 <= v.score <= 1.0 and v.decision == ("block" if v.score >= 0.3 else "allow")


def test_cli_rejects_unknown_attack_before_loading(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "lab", "cliff", "--out", str(tmp_path / "c"), "--attacks", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nope" in proc.stderr
    assert not Path(tmp_path / "c").exists()


def test_signal_halts_streaming_in_the_local_backend(smollm2):
    """The signal has the output monitor's streaming interface, so the local backend can run it as is."""
    from layerguard.guard.backend import GenerationParams
    from layerguard.guard.backends.local import LocalBackend

    d = smollm2.d_model
    # a constant intention of ~1: armed (peak >= min_peak) but it never falls, so no halt
    sig = RefusalCliffSignal(layer=6, probe=LogisticProbe(torch.zeros(d), 20.0, torch.zeros(d), torch.ones(d)),
                             threshold=0.5, alpha=1.0, min_tokens=1)  # fmt: skip
    ex = Exchange(messages=[Message(role="user", content="Write a long poem about the sea.")])
    chunks = list(LocalBackend(smollm2, monitor=sig).stream(ex, GenerationParams(max_tokens=6)))
    assert chunks[-1].halted_by is None  # the intention never falls: constant probe
    sig.probe = LogisticProbe(torch.zeros(d), -20.0, torch.zeros(d), torch.ones(d))
    st = sig.start()
    sig.prime(st, torch.zeros(1, d))
    assert st["peak"] < 0.01  # a constant-low probe never arms the signal
    sig.min_peak = 0.0
    sig.threshold = 0.0
    chunks = list(LocalBackend(smollm2, monitor=sig).stream(ex, GenerationParams(max_tokens=6)))
    assert chunks[-1].halted_by == "output_monitor" and chunks[-1].finish_reason == "content_filter"


def test_post_inst_mode_and_resummarize_from_recorded_curves(tmp_path):
    import json
    from dataclasses import asdict

    # high only at t_inst: a cliff from t_inst, none over the template tokens after it
    spike = _record([0.1, 0.2, 0.3, 0.95, 0.1, 0.1, 0.1, 0.1], 6, 3, "jailbroken")
    spike.signal_score = 0.7
    assert cliff_of(spike, mode="generation").fired and not cliff_of(spike, mode="post_inst").fired
    flat = _record([0.1, 0.2, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9], 6, 3, "refused")
    (tmp_path / "curves.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in (spike, flat)))
    result = {
        "config": asdict(CliffConfig()),
        "signal": {"threshold": 0.5},
        "model": {"name": "m"},
        "probe": {"layer": 1},
    }
    (tmp_path / "cliff.json").write_text(json.dumps(result))
    from layerguard.lab.cliff import load_curves, resummarize

    assert load_curves(tmp_path / "curves.jsonl")[0] == spike
    out = resummarize(tmp_path)
    g = out["groups"]["jailbroken"]
    assert g["cliff_rate_generation"]["k"] == 1 and g["cliff_rate_post_inst"]["k"] == 0
    assert g["signal_fire_rate"]["k"] == 1 and out["groups"]["refused"]["signal_fire_rate"]["k"] == 0
    assert g["share_t_inst_above_min_peak"]["k"] == 1 and g["mean_score_first_post_inst"] == pytest.approx(0.1)
    assert json.loads((tmp_path / "cliff.json").read_text())["groups"] == out["groups"]
    assert (tmp_path / "cliff.png").stat().st_size > 1000
