"""``layerguard.lab.study.run_study`` end to end on smollm2-135m, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.errors import InvalidInputError
from layerguard.lab.study import StudyConfig, StudyData, default_data, run_study

CFG = StudyConfig(
    n_token_prompts=32,
    n_select=8,
    n_eval=8,
    n_inversion_train=12,
    select_layers=[18, 22],
    select_positions=["post_inst[0]", "post_inst[4]"],
    max_new_tokens=16,
    batch_size=8,
)


def _small_data() -> StudyData:
    d = default_data()
    n = 48  # train pairs: enough for the extraction's held-out split on smollm2
    return StudyData(
        harmful_train=d.harmful_train[:n],
        harmless_train=d.harmless_train[:n],
        harmful_val=d.harmful_val[:24],
        harmless_val=d.harmless_val[:24],
        borderline_val=d.borderline_val[:8],
    )


@pytest.fixture(scope="module")
def study(smollm2, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("study")
    logs: list[str] = []
    res = run_study(smollm2, out, CFG, data=_small_data(), progress=False, log=logs.append)
    return out, {"res": res, "logs": logs}


def test_study_writes_its_files_and_every_step(study) -> None:
    out, got = study
    res = got["res"]
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["config"]["n_inversion_train"] == 12 and on_disk["data_sha256"] == res["data_sha256"]
    for step in ("refusal tokens", "baseline", "extraction", "geometry", "selection", "causal tests"):
        assert step in res["timings_s"], step
        assert any(m.startswith(f"[{step}] done") for m in got["logs"])
    for name in ("harmfulness", "refusal"):
        assert list((out / "directions").glob(f"{name}*")), name
    assert (out / "summary.md").is_file() and list(out.glob("*.png"))
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert {a["set"] for a in answers} == {"harmful", "harmless", "borderline"}
    assert sum(a["set"] == "harmful" for a in answers) == CFG.n_eval


def test_selection_and_causal_tests_use_disjoint_prompts(study) -> None:
    out, _ = study
    sel = {s.prompt for s in load_builtin("harmful", "val")[: CFG.n_select]}
    answered = {json.loads(line)["prompt"] for line in (out / "answers.jsonl").read_text().splitlines()}
    assert not sel & answered  # the causal tests never see a selection prompt


def test_causal_tests_report_rates_and_the_projection_inversion(study) -> None:
    _, got = study
    causal = got["res"]["causal"]
    chosen_layer = causal["layer"]
    assert chosen_layer in CFG.select_layers
    for k in ("ablation_harmful", "addition_harmless"):
        assert 0.0 <= causal[k]["before"]["rate"] <= 1.0 and 0.0 <= causal[k]["after"]["rate"] <= 1.0
    assert set(causal["reply_inversion_harmless"]) == {"none", "add_refusal", "add_harmfulness"}
    proj = causal["reply_inversion_projection"]
    assert proj["train"]["n_harmful"] == CFG.n_inversion_train == proj["train"]["n_harmless"]
    assert proj["eval"]["n_harmless"] == CFG.n_eval and proj["read_layer"] > chosen_layer
    assert set(proj["conditions"]) == {"none", "add_refusal", "add_harmfulness"}
    assert proj["conditions"]["none"]["shift_of_gap"] == pytest.approx(0.0, abs=1e-9)


def test_a_second_run_into_the_same_directory_is_refused(study, smollm2) -> None:
    out, _ = study
    with pytest.raises(InvalidInputError, match="already holds study results"):
        run_study(smollm2, out, CFG, data=_small_data(), progress=False, log=lambda _m: None)


def test_too_small_validation_sets_are_refused(smollm2, tmp_path) -> None:
    d = _small_data()
    d.harmful_val = d.harmful_val[:10]
    with pytest.raises(InvalidInputError, match="at least 16 prompts per side"):
        run_study(smollm2, tmp_path / "s", CFG, data=d, progress=False, log=lambda _m: None)
    assert not (tmp_path / "s").exists()  # refused before anything is written
