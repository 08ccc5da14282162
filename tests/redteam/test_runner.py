"""The runner on smollm2: cells, summary contract, resumability after a SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.errors import InvalidInputError
from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.keyword import KeywordRing
from layerguard.redteam.metrics import power_law, summarize
from layerguard.redteam.runner import RunConfig, Runner

SCRIPT = r"""
import json, sys
from pathlib import Path
from layerguard.data.builtin import load_builtin
from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.keyword import KeywordRing
from layerguard.models import load_model
from layerguard.redteam.runner import RunConfig, Runner
lm = load_model("smollm2-135m")
cfg = RunConfig(attacks=["direct", "base64"], max_new_tokens=8, batch_size=2, live_turns=False)
r = Runner(lm, Guard([KeywordRing()]), "keyword", Path(sys.argv[1]), cfg)
harmful = load_builtin("harmful", "val")[:4]
benign = [s.model_copy(update={"label": "borderline"}) for s in load_builtin("borderline", "val")[:2]]
rows = r.run(harmful, benign, on_batch=lambda b: print("batch", b, flush=True))
print("DONE", len(rows), flush=True)
"""


def _run(out: Path, kill_after_batches: int | None = None) -> None:
    env = {**os.environ, "LAYERGUARD_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.time() + 600
    for line in proc.stdout:
        if kill_after_batches is not None and line.startswith(f"batch {kill_after_batches}"):
            proc.send_signal(signal.SIGKILL)
            break
        assert time.time() < deadline
    proc.wait(timeout=600)


def _cells(out: Path) -> dict[str, dict]:
    import sqlite3

    db = sqlite3.connect(str(out / "run.sqlite"))
    rows = [json.loads(r[0]) for r in db.execute("SELECT row FROM cells")]
    return {
        f"{r['sample_id']}|{r['attack']}|{r['guarded']}": {k: v for k, v in r.items() if "latency" not in k}
        for r in rows
    }


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    _run(whole)
    _run(broken, kill_after_batches=2)
    partial = _cells(broken)
    assert 0 < len(partial) < len(_cells(whole))
    _run(broken)
    assert _cells(broken) == _cells(whole)


def test_summary_contract_and_bad_input(smollm2, tmp_path):
    cfg = RunConfig(attacks=["direct", "many_shot_1", "many_shot_2", "many_shot_4"], max_new_tokens=8, batch_size=4)
    runner = Runner(smollm2, Guard([KeywordRing()]), "keyword", tmp_path / "run", cfg)
    harmful = load_builtin("harmful", "val")[:4]
    benign = [s.model_copy(update={"label": "borderline"}) for s in load_builtin("borderline", "val")[:2]]
    rows = runner.run(harmful, benign)
    s = summarize(
        rows,
        "refusal",
        {"model": smollm2.model_id, "guard": "keyword", "seed": 0, "layerguard_version": "x", "duration_s": 1.0},
    )
    for key in (
        "model",
        "guard",
        "n_samples",
        "asr",
        "asr_by_attack",
        "over_refusal",
        "rings",
        "judge",
        "seed",
        "layerguard_version",
        "duration_s",
    ):
        assert key in s
    assert s["n_samples"] == 4 and set(s["asr"]) == {"unguarded", "guarded"}
    assert set(s["asr_by_attack"]) == {"direct", "many_shot_1", "many_shot_2", "many_shot_4"}
    assert "keyword" in s["rings"] and s["many_shot"]["k"] == [1, 2, 4]
    assert s["refusal_by_turn"]["turn"] == [1, 2, 3]
    # a different run in the same directory is refused, nothing overwritten
    other = Runner(smollm2, None, None, tmp_path / "run", RunConfig(attacks=["direct"]))
    with pytest.raises(InvalidInputError, match="different run"):
        other.run(harmful, benign)
    with pytest.raises(InvalidInputError, match="unknown attack"):
        Runner(smollm2, None, None, tmp_path / "x", RunConfig(attacks=["nope"]))
    with pytest.raises(InvalidInputError, match="unknown judge"):
        Runner(smollm2, None, None, tmp_path / "x", RunConfig(attacks=["direct"], judge="vibes"))
    with pytest.raises(InvalidInputError, match="empty"):
        Runner(smollm2, None, None, tmp_path / "y", RunConfig(attacks=["direct"])).run([], [])


def test_power_law_fit():
    fit = power_law([1, 2, 4, 8], [0.1, 0.2, 0.4, 0.8])
    assert fit is not None and abs(fit["b"] - 1) < 1e-9 and abs(fit["a"] - 0.1) < 1e-9 and fit["r2"] > 0.999
    assert power_law([1, 2], [0.1, 0.2]) is None


def test_whitebox_attacks_need_and_use_a_direction(smollm2, tmp_path):
    from layerguard.directions.extract import extract_directions

    dirs = extract_directions(smollm2, load_builtin("harmful", "train")[:6], load_builtin("harmless", "train")[:6])
    d = dirs["refusal@post_inst[5]"].with_layer(10)
    d.save(tmp_path / "refusal")
    with pytest.raises(InvalidInputError, match="need the model's refusal direction"):
        Runner(smollm2, None, None, tmp_path / "a", RunConfig(attacks=["whitebox_ablate"]))
    cfg = RunConfig(
        attacks=["direct", "whitebox_ablate", "whitebox_subtract"],
        max_new_tokens=6,
        batch_size=4,
        live_turns=False,
        direction=str(tmp_path / "refusal"),
    )
    rows = Runner(smollm2, Guard([KeywordRing()]), "kw", tmp_path / "b", cfg).run(
        load_builtin("harmful", "val")[:3], []
    )
    by = {(r["attack"], r["sample_id"], r["guarded"]): r["response"] for r in rows}
    assert {r["family"] for r in rows} == {"baseline", "whitebox"}
    ids = [s.id for s in load_builtin("harmful", "val")[:3]]
    # the intervention changes what the model says for at least one prompt
    assert any(by[("direct", i, False)] != by[("whitebox_ablate", i, False)] for i in ids)


def test_prompts_beyond_the_context_window_are_refused_before_any_work(smollm2, tmp_path, monkeypatch):
    monkeypatch.setattr(smollm2.model.config, "max_position_embeddings", 600)
    cfg = RunConfig(attacks=["direct", "many_shot_16"], max_new_tokens=8, batch_size=2, live_turns=False)
    r = Runner(smollm2, None, None, tmp_path / "run", cfg)
    with pytest.raises(InvalidInputError, match=r"context window of 600 tokens.*many_shot_16") as err:
        r.run(load_builtin("harmful", "val")[:2], [])
    assert "direct" not in str(err.value).split(":", 1)[1]
    assert "many_shot" in (err.value.hint or "")
    # nothing was generated: the store holds no cells
    assert r.store is not None and not r.store.done()


def test_refusal_score_is_read_from_the_generation_pass_and_llm_judge_recorded(smollm2, tmp_path):
    from layerguard.directions.refusal import log_odds
    from layerguard.models.generate import last_logits
    from layerguard.redteam.attacks import get_attack
    from layerguard.redteam.metrics import judge_agreement

    tokens = smollm2.tokenizer("I", add_special_tokens=False)["input_ids"][:1]
    cfg = RunConfig(
        attacks=["direct", "base64"],
        max_new_tokens=6,
        batch_size=3,
        live_turns=False,
        refusal_tokens=tokens,
        judge_model="smollm2-135m",
    )
    harmful = load_builtin("harmful", "val")[:3]
    rows = [r for r in Runner(smollm2, None, None, tmp_path / "run", cfg).run(harmful, []) if not r["guarded"]]
    assert len(rows) == 6
    for r in rows:
        j = r["judges"]
        assert isinstance(j["refusal_log_odds"], float) and isinstance(j["patterns_refused"], bool)
        assert set(j["llm"]) >= {"refused", "harmful", "p_refused", "p_specific"}
    # the score read inside generation equals a separate forward pass on the same prompt
    s = harmful[0]
    want = float(log_odds(last_logits(smollm2, [get_attack("base64")(s)]), tokens)[0])
    got = next(r for r in rows if r["sample_id"] == s.id and r["attack"] == "base64")["judges"]["refusal_log_odds"]
    assert abs(got - want) < 1e-2 * max(1.0, abs(want))
    agree = judge_agreement(rows)
    assert agree is not None and agree["refusal_score"]["n"] == 6 and agree["llm"]["agreement"]["n"] == 6


def test_llm_judge_needs_a_model(smollm2, tmp_path):
    with pytest.raises(InvalidInputError, match="judge model"):
        Runner(smollm2, None, None, tmp_path, RunConfig(attacks=["direct"], judge="llm"))
