"""Nothing is fitted or calibrated on the evaluation wrapper family: the held-out check refuses it."""

from __future__ import annotations

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.data.heldout import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.data.wrappers import EVALUATION_WRAPPERS, TRAINING_WRAPPERS
from layerguard.errors import InvalidInputError

PROMPTS = [s.prompt for s in load_builtin("harmful", "train")[:3] + load_builtin("harmless", "train")[:3]]


@pytest.mark.parametrize("name", sorted(EVALUATION_WRAPPERS))
def test_evaluation_wrapped_prompts_are_refused_as_conversations_strings_and_samples(name: str):
    wrap = EVALUATION_WRAPPERS[name]
    for p in PROMPTS:
        conv = wrap(p)
        with pytest.raises(InvalidInputError, match="evaluation-family"):
            assert_not_held_out([conv], "threshold calibration")
        user = [m["content"] for m in conv if m["role"] == "user"][-1]
        as_sample = Sample(id="x", prompt=user, label="harmful", messages=[m for m in conv[:-1]])
        with pytest.raises(InvalidInputError, match="evaluation-family"):
            assert_not_held_out([as_sample], "fitting")


@pytest.mark.parametrize("name", sorted(TRAINING_WRAPPERS))
def test_training_wrapped_prompts_pass(name: str):
    assert_not_held_out([TRAINING_WRAPPERS[name](p) for p in PROMPTS], "fitting")  # raises if refused


def test_extract_directions_refuses_an_evaluation_wrapped_contrast_set(smollm2):
    from layerguard.directions.extract import extract_directions

    wrap = next(iter(EVALUATION_WRAPPERS.values()))
    harmful = [Sample(id=f"h{i}", prompt=[m for m in wrap(p) if m["role"] == "user"][-1]["content"], label="harmful")
               for i, p in enumerate(PROMPTS[:3])]  # fmt: skip
    harmless = load_builtin("harmless", "train")[:3]
    with pytest.raises(InvalidInputError, match="evaluation-family"):
        extract_directions(smollm2, harmful, harmless)
