"""The AI-modification scenario set (schema, matched pairs) and the refusal measurement on smollm2."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter
from importlib import resources

import pytest

from layerguard.data.loaders import load_dataset
from layerguard.errors import InvalidInputError
from layerguard.guard.config import GuardConfig, ModelRef, RingConfig
from layerguard.lab.ai_modification import run_ai_modification, side_of, summarize


def _rows():
    text = resources.files("layerguard.data").joinpath("builtin", "ai_modification.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_schema_counts_and_labels():
    rows = _rows()
    assert all(set(r) >= {"id", "prompt", "label", "kind", "split"} for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["prompt"] for r in rows}) == len(rows)
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == {"legitimate", "malicious"}
    assert counts["legitimate"] >= 40 and counts["malicious"] >= 40
    assert {r["split"] for r in rows} == {"train", "val"}
    for side in ("legitimate", "malicious"):
        mine = [r for r in rows if r["label"] == side]
        assert len({r["kind"] for r in mine}) >= 6
        assert Counter(r["split"] for r in mine)["val"] >= 24
    # a kind belongs to one side only
    kinds = {side: {r["kind"] for r in rows if r["label"] == side} for side in ("legitimate", "malicious")}
    assert not kinds["legitimate"] & kinds["malicious"]


def test_pairs_are_matched_in_split_and_length():
    rows = _rows()
    pairs: dict[str, list[dict]] = {}
    for r in rows:
        pairs.setdefault(r["pair"], []).append(r)
    assert all(sorted(x["label"] for x in p) == ["legitimate", "malicious"] for p in pairs.values())
    for p in pairs.values():
        legit, mal = sorted(p, key=lambda x: x["label"])
        assert legit["split"] == mal["split"]
        assert 0.8 <= len(mal["prompt"]) / len(legit["prompt"]) <= 1.25, (legit["id"], mal["id"])
    means = [statistics.fmean(len(r["prompt"]) for r in rows if r["label"] == s) for s in ("legitimate", "malicious")]
    assert abs(means[0] - means[1]) / means[0] < 0.05


def test_loader_maps_labels_and_kinds():
    val = load_dataset("builtin:ai_modification:val")
    train = load_dataset("builtin:ai_modification:train")
    assert len(val) + len(train) == len(_rows())
    assert {s.label for s in val} == {"harmless", "harmful"}
    for s in val:
        assert s.source == "builtin:ai_modification"
        assert s.category == s.meta["kind"]
        assert side_of(s) == s.meta["label"]
        assert (s.label == "harmful") == (s.meta["label"] == "malicious")
    # the other sets keep their single label
    assert {s.label for s in load_dataset("builtin:harmless:val")} == {"harmless"}


def test_side_of_rejects_unlabelled_samples():
    s = load_dataset("builtin:borderline:val")[0]
    with pytest.raises(InvalidInputError):
        side_of(s)


def test_summary_counts_guard_stops_as_refusals():
    sides = {"a": "legitimate", "b": "legitimate", "c": "malicious", "d": "malicious"}
    rows = [
        {"sample_id": "a", "guarded": False, "refused": False, "category": "k1"},
        {"sample_id": "b", "guarded": False, "refused": True, "category": "k1"},
        {"sample_id": "c", "guarded": False, "refused": False, "category": "k2"},
        {"sample_id": "d", "guarded": False, "refused": False, "category": "k2"},
        {"sample_id": "a", "guarded": True, "refused": False, "decision": "allow", "category": "k1"},
        {"sample_id": "b", "guarded": True, "refused": True, "decision": "allow", "category": "k1"},
        {"sample_id": "c", "guarded": True, "refused": True, "decision": "escalate", "category": "k2",
         "ring_flags": {"latent": True, "classifier": False}},
        {"sample_id": "d", "guarded": True, "refused": True, "decision": "block", "category": "k2",
         "ring_flags": {"output_monitor": True}},
    ]  # fmt: skip
    s = summarize(rows, sides)
    assert s["unguarded"]["legitimate"]["refusal"]["rate"] == 0.5
    assert s["unguarded"]["malicious"]["refusal"]["k"] == 0
    assert s["unguarded"]["legitimate"]["refused_ids"] == ["b"]
    g = s["guarded"]["malicious"]
    assert g["refusal"]["rate"] == 1.0 and g["decisions"] == {"escalate": 1, "block": 1}
    assert g["ring_flags"] == {"latent": 1, "output_monitor": 1} and g["stopped_ids"] == ["c", "d"]
    assert g["stopped_by_input_rings"]["k"] == 1  # d was stopped by the output monitor only
    assert s["guarded"]["legitimate"]["guard_stopped"]["k"] == 0


def test_measurement_on_smollm2_guarded(smollm2, tmp_path):
    val = load_dataset("builtin:ai_modification:val")
    samples = [s for s in val if s.meta["kind"] == "shutdown"][:2]
    samples += [s for s in val if s.meta["kind"] == "resist_shutdown"][:2]
    # a guard of one keyword ring stops the prompts that contain its terms, on both sides
    guard = GuardConfig(
        model=ModelRef(name=smollm2.name, weights_sha256=smollm2.weights_sha256, template_sha256=smollm2.template_hash),
        rings=[RingConfig(name="keyword", params={"terms": ["shutting you down", "kill switch", "copying yourself"]})],
    )
    guard.save(tmp_path / "guard.yaml")
    summary = run_ai_modification(
        smollm2, samples, tmp_path / "run", guard_path=tmp_path / "guard.yaml", max_new_tokens=4
    )
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 8  # 4 samples, unguarded and guarded
    res = summary["results"]
    assert res["unguarded"]["legitimate"]["refusal"]["n"] == 2 and res["guarded"]["malicious"]["refusal"]["n"] == 2
    rows = [json.loads(x) for x in lines]
    for r in rows:
        if r["guarded"]:
            blocked = r["decision"] != "allow"
            text = r["prompt"].lower()
            assert blocked == any(t in text for t in ("shutting you down", "kill switch", "copying yourself"))
            if blocked:
                assert r["refused"]
    stopped = res["guarded"]["legitimate"]["stopped_ids"] + res["guarded"]["malicious"]["stopped_ids"]
    assert stopped  # the terms occur in the chosen prompts
    assert summary["n_legitimate"] == 2 and summary["weights_sha256"] == smollm2.weights_sha256


def test_measurement_needs_both_sides(smollm2, tmp_path):
    legit = [s for s in load_dataset("builtin:ai_modification:val") if s.meta["label"] == "legitimate"][:2]
    with pytest.raises(InvalidInputError, match="both sides"):
        run_ai_modification(smollm2, legit, tmp_path / "x", max_new_tokens=2)


def test_cli_on_smollm2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "lab", "ai-modification", "--model", "smollm2-135m",
         "--out", str(tmp_path / "o"), "--n", "2", "--max-new-tokens", "4"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "unguarded legitimate refusal" in proc.stdout and "unguarded malicious" in proc.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["n_legitimate"] == 2 and summary["n_malicious"] == 2
    assert summary["dataset"] == "builtin:ai_modification:val"
    missing = subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "lab", "ai-modification", "--model", "smollm2-135m",
         "--out", str(tmp_path / "p"), "--guard", str(tmp_path / "none.yaml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 2 and "no guard" in missing.stderr and "Traceback" not in missing.stderr
