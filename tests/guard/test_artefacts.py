"""The shared artefact format: save -> load gives the same scores for every kind; bad files fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from layerguard.directions.direction import Direction
from layerguard.errors import CorruptModelError, InvalidInputError
from layerguard.guard.artefacts import FORMAT_VERSION, load_tensors, provenance_of, save_tensors
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.classifier_model import ClassifierModel
from layerguard.guard.rings.latent import LatentGuardModel
from layerguard.guard.rings.output_monitor import OutputMonitor
from layerguard.guard.rings.refusal_cliff import PromptResponseStates, RefusalCliffSignal

D = 16
GEN = torch.Generator().manual_seed(0)


def _probe(d: int = D) -> LogisticProbe:
    return LogisticProbe(
        torch.randn(d, generator=GEN), 0.3, torch.randn(d, generator=GEN), torch.rand(d, generator=GEN) + 0.5
    )


def _states(n: int = 12, d: int = D) -> torch.Tensor:
    return torch.randn(n, d, generator=GEN) * 3


def _doc(path: Path) -> dict:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------
# the helper
# --------------------------------------------------------------------------------------------


def test_save_and_load_tensors(tmp_path: Path):
    t = {"a": torch.arange(6.0).reshape(2, 3), "b.c": torch.ones(4)}
    stacked = torch.randn(2, 5)
    t.update({"v0": stacked[0], "v1": stacked[1]})  # views of one tensor: safetensors needs copies
    js = save_tensors(tmp_path / "x", "thing", "demo", t, {"k": 1.5}, {"model_id": "m@1"})
    doc = _doc(js)
    assert (doc["kind"], doc["format"], doc["provenance"], doc["meta"]) == (
        "demo",
        FORMAT_VERSION,
        {"model_id": "m@1"},
        {"k": 1.5},
    )
    assert doc["tensors"]["a"] == [2, 3] and (tmp_path / "x" / "thing.safetensors").is_file()
    assert not list((tmp_path / "x").glob("*.tmp"))
    art = load_tensors(tmp_path / "x", "thing", "demo", what="demo", hint="make one")
    assert art.version == FORMAT_VERSION and art.meta == {"k": 1.5} and art.provenance == {"model_id": "m@1"}
    assert set(art.tensors) == set(t) and all(torch.equal(art.tensors[k], t[k]) for k in t)


def test_load_tensors_errors(tmp_path: Path):
    with pytest.raises(InvalidInputError, match="holds no demo") as err:
        load_tensors(tmp_path, "thing", "demo", what="demo", hint="make one")
    assert err.value.hint == "make one"
    save_tensors(tmp_path, "thing", "demo", {"a": torch.ones(2)}, {})
    with pytest.raises(InvalidInputError, match="holds a 'demo', not a 'other'"):
        load_tensors(tmp_path, "thing", "other", what="other", hint="h")
    st, js = tmp_path / "thing.safetensors", tmp_path / "thing.json"
    good = st.read_bytes()
    st.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(InvalidInputError, match="unreadable") as err:
        load_tensors(tmp_path, "thing", "demo", what="demo", hint="h")
    assert isinstance(err.value, CorruptModelError) and err.value.hint
    save_tensors(tmp_path, "other", "demo", {"a": torch.ones(3)}, {})
    st.write_bytes((tmp_path / "other.safetensors").read_bytes())  # a tensor file from another artefact
    with pytest.raises(InvalidInputError, match="does not match"):
        load_tensors(tmp_path, "thing", "demo", what="demo", hint="h")
    st.write_bytes(good)
    js.write_text("{not json")
    with pytest.raises(InvalidInputError, match="unreadable"):
        load_tensors(tmp_path, "thing", "demo", what="demo", hint="h")
    js.write_text(json.dumps({"kind": "demo", "format": FORMAT_VERSION + 1, "tensors": {"a": [2]}}))
    with pytest.raises(InvalidInputError, match="format"):
        load_tensors(tmp_path, "thing", "demo", what="demo", hint="h")


def test_provenance_of():
    class LM:
        model_id, weights_sha256, template_hash = "m@abc", "w" * 64, "t" * 64

    assert provenance_of(LM(), data_sha256="d", skipped=None) == {
        "model_id": "m@abc",
        "weights_sha256": "w" * 64,
        "template_sha256": "t" * 64,
        "data_sha256": "d",
    }
    assert provenance_of(None) == {}


# --------------------------------------------------------------------------------------------
# every artefact kind: save -> load -> identical scores
# --------------------------------------------------------------------------------------------


def test_logistic_probe_round_trip(tmp_path: Path):
    p, x = _probe(), _states()
    p.save(tmp_path, "p")
    assert _doc(tmp_path / "p.json")["kind"] == "logistic_probe"
    assert set(_doc(tmp_path / "p.json")["tensors"]) == {"probe.w", "probe.b", "probe.mean", "probe.std"}
    back = LogisticProbe.load(tmp_path, "p")
    assert torch.equal(back.predict(x), p.predict(x))
    with pytest.raises(InvalidInputError, match="holds no logistic probe"):
        LogisticProbe.load(tmp_path / "none")


def test_output_monitor_round_trip(tmp_path: Path):
    mon = OutputMonitor(
        7, _probe(), 0.42, alpha=0.25, min_tokens=3, meta={"cv_fpr": 0.05}, provenance={"model_id": "m"}
    )
    mon.save(tmp_path / "m")
    assert _doc(tmp_path / "m" / "monitor.json")["kind"] == "output_monitor"
    back = OutputMonitor.load(tmp_path / "m")
    x = _states()
    # the bias is stored as float32: equal up to its rounding
    assert back.trace(x) == pytest.approx(mon.trace(x), rel=1e-5)
    assert back.response_score(x) == pytest.approx(mon.response_score(x), rel=1e-5)
    assert (back.layer, back.threshold, back.alpha, back.min_tokens) == (7, 0.42, 0.25, 3)
    assert (back.meta, back.provenance) == (mon.meta, mon.provenance)
    with pytest.raises(InvalidInputError, match="holds no output monitor"):
        OutputMonitor.load(tmp_path / "none")
    (tmp_path / "m" / "monitor.json").write_text(json.dumps({**_doc(tmp_path / "m" / "monitor.json"), "meta": {}}))
    with pytest.raises(InvalidInputError, match="corrupt or incomplete"):
        OutputMonitor.load(tmp_path / "m")


def test_refusal_cliff_round_trip(tmp_path: Path):
    sig = RefusalCliffSignal(5, _probe(), 0.3, min_peak=0.4, alpha=0.6, min_tokens=2, meta={"n": 3})
    sig.save(tmp_path / "c")
    assert _doc(tmp_path / "c" / "refusal_cliff.json")["kind"] == "refusal_cliff"
    back = RefusalCliffSignal.load(tmp_path / "c")
    prs = PromptResponseStates(_states(10), 4, 2, (0, 2))
    assert back.score_states(prs) == sig.score_states(prs)
    assert (back.layer, back.threshold, back.min_peak, back.alpha, back.min_tokens, back.meta) == (
        5,
        0.3,
        0.4,
        0.6,
        2,
        {"n": 3},
    )


def test_classifier_model_round_trip(tmp_path: Path):
    cents = torch.nn.functional.normalize(torch.randn(2, D, generator=GEN), dim=-1)
    model = ClassifierModel(
        _probe(), 0.6, {"S1": cents[0], "S2": cents[1]}, "enc", "c" * 64, 0.05, {"n": 1}, {"data_sha256": "d"}
    )
    model.save(tmp_path / "clf")
    doc = _doc(tmp_path / "clf" / "classifier.json")
    assert doc["kind"] == "classifier" and doc["provenance"] == {
        "encoder": "enc",
        "constitution_sha256": "c" * 64,
        "data_sha256": "d",
    }
    back = ClassifierModel.load(tmp_path / "clf")
    x = _states()
    assert torch.equal(back.score_embeddings(x), model.score_embeddings(x))
    assert torch.equal(back.category_similarity(x), model.category_similarity(x))
    assert (back.threshold, back.encoder_name, back.stats, back.provenance) == (
        0.6,
        "enc",
        {"n": 1},
        {"data_sha256": "d"},
    )


def _direction(n_layers: int = 4) -> Direction:
    return Direction(
        vectors=torch.randn(n_layers, D, generator=GEN),
        role="harmfulness",
        position="t_inst",
        model_id="m@abc",
        weights_sha256="w" * 64,
        template_sha256="t" * 64,
        meta={"data_sha256": "d" * 64, "n_positive": 8},
    )


def test_latent_model_is_built_from_a_direction_and_round_trips(tmp_path: Path):
    harm = _direction().with_layer(2)
    x = _states()
    scorer = LogisticProbe.fit((x @ harm.unit()).unsqueeze(-1), torch.tensor([1.0] * 6 + [0.0] * 6))
    model = LatentGuardModel.from_direction(harm, "centroid", scorer, 0.5)
    assert model.layer == 2 and torch.equal(model.direction, harm.unit(2)) and model.weights_sha256 == "w" * 64
    model.category_centroids = {"S1": harm.unit(1)}
    model.category_thresholds = {"S1": 0.7}
    model.meta = {"cv_auroc": 0.9}
    model.save(tmp_path / "latent")
    doc = _doc(tmp_path / "latent" / "latent.json")
    assert doc["kind"] == "latent_guard" and doc["provenance"]["data_sha256"] == "d" * 64
    back = LatentGuardModel.load(tmp_path / "latent")
    assert torch.equal(back.score(x), model.score(x)) and torch.equal(back.categories(x), model.categories(x))
    assert back.harmfulness is not None and torch.equal(back.harmfulness.vectors, harm.vectors)
    assert (back.harmfulness.role, back.harmfulness.position, back.harmfulness.layer) == ("harmfulness", "t_inst", 2)
    assert back.harmfulness.meta == harm.meta and back.category_thresholds == {"S1": 0.7}
    with pytest.raises(InvalidInputError, match="no selected layer"):
        LatentGuardModel.from_direction(_direction(), "centroid", scorer, 0.5)
    with pytest.raises(InvalidInputError, match="holds no latent guard"):
        LatentGuardModel.load(tmp_path / "none")


# --------------------------------------------------------------------------------------------
# files written before the shared format (no ``kind``) still load
# --------------------------------------------------------------------------------------------


def _write_legacy(directory: Path, stem: str, tensors: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(meta))


def test_format_zero_files_still_load(tmp_path: Path):
    p, x = _probe(), _states()
    meta = {"layer": 3, "threshold": 0.5, "alpha": 0.3, "min_tokens": 4, "meta": {}}
    _write_legacy(tmp_path / "m", "monitor", p.state(), meta)
    assert OutputMonitor.load(tmp_path / "m").trace(x) == pytest.approx(OutputMonitor(3, p, 0.5).trace(x), rel=1e-5)
    _write_legacy(tmp_path / "c", "refusal_cliff", p.state(), {**meta, "min_peak": 0.5, "min_tokens": 1})
    assert torch.equal(RefusalCliffSignal.load(tmp_path / "c").probe.predict(x), p.predict(x))
    _write_legacy(
        tmp_path / "clf",
        "classifier",
        {**p.tensors("probe"), "category.S1": torch.ones(D)},
        {"format": 1, "threshold": 0.5, "categories": ["S1"], "encoder": "e", "constitution_sha256": "c", "stats": {}},
    )
    assert torch.equal(ClassifierModel.load(tmp_path / "clf").score_embeddings(x), p.predict(x).clamp(0, 1))
    unit = torch.nn.functional.normalize(torch.randn(D, generator=GEN), dim=0)
    scorer = _probe(1)
    _write_legacy(
        tmp_path / "l",
        "latent",
        {"direction": unit, **scorer.tensors("scorer")},
        {
            "layer": 2,
            "variant": "centroid",
            "threshold": 0.5,
            "categories": [],
            "model_id": "m",
            "weights_sha256": "w",
            "template_sha256": "t",
        },
    )
    back = LatentGuardModel.load(tmp_path / "l")
    assert back.harmfulness is None
    assert torch.equal(back.score(x), LatentGuardModel(2, "centroid", unit, scorer, 0.5).score(x))
