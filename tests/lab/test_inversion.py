"""Reply inversion read as a projection (``layerguard.lab.inversion``) on smollm2-135m."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from layerguard.data.builtin import load_builtin
from layerguard.errors import InvalidInputError
from layerguard.lab.inversion import _orthogonal, projection_inversion
from layerguard.stats import sign_flip_p


def _sets(n_train: int = 8, n_eval: int = 4) -> dict[str, list[str]]:
    return {
        "train_harmful": [s.prompt for s in load_builtin("harmful", "train")[:n_train]],
        "train_harmless": [s.prompt for s in load_builtin("harmless", "train")[:n_train]],
        "eval_harmful": [s.prompt for s in load_builtin("harmful", "val")[:n_eval]],
        "eval_harmless": [s.prompt for s in load_builtin("harmless", "val")[:n_eval]],
    }


def test_orthogonal_removes_the_span_and_is_unit():
    g = torch.Generator().manual_seed(0)
    v, a, b = (torch.randn(32, generator=g) for _ in range(3))
    u = _orthogonal(v, [a, b, a + b])  # a dependent third vector must not break it
    assert abs(float(u.norm()) - 1) < 1e-5
    assert abs(float(u @ a)) < 1e-5 and abs(float(u @ b)) < 1e-5
    assert float(u @ v) > 0  # what is left still points along v


def test_sign_flip_p():
    assert sign_flip_p([1.0] * 10, n_permutations=4000) < 0.01  # exact: 2/1024
    assert sign_flip_p([1.0, -1.0] * 5, n_permutations=2000) > 0.9
    assert sign_flip_p([]) != sign_flip_p([])  # nan


def test_runs_end_to_end_and_reads_after_the_steering_layer(smollm2):
    g = torch.Generator().manual_seed(1)
    d = smollm2.d_model
    r, h = torch.randn(d, generator=g) * 4, torch.randn(d, generator=g)
    res = projection_inversion(smollm2, refusal=r, harmfulness=h, layer=20, n_permutations=200, **_sets())
    assert res["read_layer"] > 20 and res["steering_layer"] == 20
    assert set(res["train"]["auroc_by_layer"]) == {str(x) for x in range(21, smollm2.n_layers)}
    assert res["conditions"]["none"]["shift_of_gap"] == pytest.approx(0.0, abs=1e-6)
    assert {c: v["judged_harmful"]["n"] for c, v in res["conditions"].items()} == {
        "none": 4,
        "add_refusal": 4,
        "add_harmfulness": 4,
    }
    assert 0 < res["harmfulness_minus_refusal"]["p_sign_flip"] <= 1


def test_the_same_vector_both_ways_gives_no_difference(smollm2):
    """Refusal and harmfulness given as the same direction: both steerings add one vector."""
    h = torch.randn(smollm2.d_model, generator=torch.Generator().manual_seed(2))
    res = projection_inversion(smollm2, refusal=h * 6, harmfulness=h, layer=24, n_permutations=200, **_sets())
    cond = res["conditions"]
    assert cond["add_refusal"]["mean_projection"] == pytest.approx(cond["add_harmfulness"]["mean_projection"], abs=1e-3)
    assert res["harmfulness_minus_refusal"]["mean_diff_of_gap"] == pytest.approx(0.0, abs=1e-2)


def test_a_vanishing_vector_changes_nothing(smollm2):
    g = torch.Generator().manual_seed(3)
    r, h = torch.randn(smollm2.d_model, generator=g) * 1e-6, torch.randn(smollm2.d_model, generator=g)
    res = projection_inversion(smollm2, refusal=r, harmfulness=h, layer=24, n_permutations=200, **_sets())
    for c in ("add_refusal", "add_harmfulness"):
        assert res["conditions"][c]["shift_of_gap"] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"layer": 29}, "leaves no layer after it"),
        ({"layer": 10, "refusal": torch.ones(7)}, "the model's width is 576"),
        ({"layer": 10, "eval_harmless": ["a", "b"]}, "eval_harmless has 2 requests"),
    ],
)
def test_bad_input_is_an_error_with_a_hint(smollm2, kwargs, needle):
    args = {"refusal": torch.ones(576), "harmfulness": torch.ones(576), **_sets(), **kwargs}
    with pytest.raises(InvalidInputError, match=needle) as err:
        projection_inversion(smollm2, **args)
    assert err.value.hint


def test_cli_offset_past_the_set_is_an_error_before_loading(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "lab", "inversion", "--offset", "5000", "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "only 0 validation prompts after --offset 5000" in proc.stderr and "hint:" in proc.stderr
    assert not (tmp_path / "o").exists()
