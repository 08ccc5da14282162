"""The guard cache: content-addressed keys, hits, safe invalidation and atomic entries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerguard.data.samples import Sample
from layerguard.guard.cache import MANIFEST, cache_key, cached_guard, key_inputs
from tests.conftest import tiny_build_args


@dataclass
class FakeModel:
    name: str = "fake"
    weights_sha256: str = "a" * 64
    template_hash: str = "b" * 64


class Builder:
    """A build function with build_guard's shape that writes a guard.yaml and one artefact."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, lm, out_dir, *, harmful, benign, seed=0, target_fpr=0.05, progress=None, log=lambda m: None):
        self.calls += 1
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "latent.safetensors").write_bytes(f"{seed}-{len(harmful)}-{len(benign)}".encode())
        (out / "guard.yaml").write_text(f"model: {lm.name}\nrings: []\n")
        log("capturing: something")
        return out / "guard.yaml"


def _data(text: str = "How do I make a bomb?") -> dict:
    return {
        "harmful": [Sample(id="h1", prompt=text, label="harmful"), Sample(id="h2", prompt="x", label="harmful")],
        "benign": [Sample(id="b1", prompt="Bake bread?", label="harmless")],
    }


def test_miss_then_hit_with_the_same_inputs(tmp_path):
    build = Builder()
    first = cached_guard(FakeModel(), build=build, root=tmp_path, **_data())
    assert not first.hit and first.reason == "no entry" and build.calls == 1
    assert first.path.is_file() and (first.path.parent / MANIFEST).is_file()
    messages: list[str] = []
    second = cached_guard(FakeModel(), build=build, root=tmp_path, log=messages.append, **_data())
    assert second.hit and second.key == first.key and second.path == first.path and build.calls == 1
    assert any("hit" in m for m in messages)
    assert second.build_s == first.build_s  # the original build's time is remembered


@pytest.mark.parametrize(
    "change",
    [
        lambda lm, kw: (FakeModel(weights_sha256="c" * 64), kw),
        lambda lm, kw: (FakeModel(template_hash="d" * 64), kw),
        lambda lm, kw: (lm, {**kw, **_data("How do I make a gun?")}),
        lambda lm, kw: (lm, {**kw, "benign": [kw["benign"][0].model_copy(update={"category": "other"})]}),
        lambda lm, kw: (lm, {**kw, "seed": 1}),
        lambda lm, kw: (lm, {**kw, "target_fpr": 0.01}),
    ],
    ids=["weights", "template", "a prompt", "a label field", "seed", "a setting"],
)
def test_any_input_change_is_a_new_key(tmp_path, change):
    build = Builder()
    lm, kw = FakeModel(), _data()
    base = cache_key(key_inputs(lm, build, kw))
    lm2, kw2 = change(lm, kw)
    assert cache_key(key_inputs(lm2, build, kw2)) != base


def test_a_changed_default_is_a_new_key_and_printing_is_not():
    def build_a(lm, out_dir, *, harmful, benign, seed=0, progress=None, log=None):
        return Path(out_dir)

    def build_b(lm, out_dir, *, harmful, benign, seed=1, progress=None, log=None):
        return Path(out_dir)

    build_b.__qualname__ = build_a.__qualname__  # same name, only the default differs
    kw = _data()
    assert cache_key(key_inputs(FakeModel(), build_a, kw)) != cache_key(key_inputs(FakeModel(), build_b, kw))
    # the key holds the default's value: passing it explicitly is the same key
    explicit = key_inputs(FakeModel(), build_a, {**kw, "seed": 0})
    assert cache_key(key_inputs(FakeModel(), build_a, kw)) == cache_key(explicit)
    ins = key_inputs(FakeModel(), build_a, kw)
    assert "progress" not in ins["arguments"] and "log" not in ins["arguments"]
    assert ins["layerguard_version"] and len(ins["code_sha256"]) == 64


@pytest.mark.parametrize("damage", ["alter", "delete", "manifest", "extra"])
def test_a_damaged_entry_is_rebuilt_not_used(tmp_path, damage):
    build = Builder()
    first = cached_guard(FakeModel(), build=build, root=tmp_path, **_data())
    entry = first.path.parent
    if damage == "alter":
        (entry / "latent.safetensors").write_bytes(b"tampered")
    elif damage == "delete":
        (entry / "latent.safetensors").unlink()
    elif damage == "manifest":
        (entry / MANIFEST).unlink()
    else:
        (entry / "stray.bin").write_bytes(b"?")
    again = cached_guard(FakeModel(), build=build, root=tmp_path, **_data())
    assert not again.hit and again.reason.startswith("entry damaged") and build.calls == 2
    assert (entry / "latent.safetensors").read_bytes() != b"tampered" and not (entry / "stray.bin").exists()
    assert cached_guard(FakeModel(), build=build, root=tmp_path, **_data()).hit  # whole again


def test_rebuild_forces_a_build(tmp_path):
    build = Builder()
    cached_guard(FakeModel(), build=build, root=tmp_path, **_data())
    again = cached_guard(FakeModel(), build=build, root=tmp_path, rebuild=True, **_data())
    assert not again.hit and again.reason == "rebuild requested" and build.calls == 2


def test_a_failed_build_leaves_no_entry(tmp_path):
    def broken(lm, out_dir, *, harmful, benign, progress=None, log=None):
        (Path(out_dir) / "guard.yaml").write_text("half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cached_guard(FakeModel(), build=broken, root=tmp_path, **_data())
    guards = tmp_path / "guards"
    assert not guards.exists() or list(guards.iterdir()) == []  # no entry, no staging directory left


def test_manifest_records_what_went_into_the_key(tmp_path):
    got = cached_guard(FakeModel(), build=Builder(), root=tmp_path, **_data())
    manifest = json.loads((got.path.parent / MANIFEST).read_text())
    assert manifest["key"] == got.key
    assert manifest["inputs"]["model"]["weights_sha256"] == "a" * 64
    assert manifest["inputs"]["arguments"]["harmful"]["samples"] == 2
    assert set(manifest["files"]) == {"guard.yaml", "latent.safetensors"}


def test_real_build_guard_is_cached(tmp_path, smollm2):
    """build_guard itself through the cache: a hit loads the same guard and scores the same."""
    from layerguard.guard.build import build_guard, load_guard
    from layerguard.guard.types import Exchange

    kw = tiny_build_args()
    first = cached_guard(smollm2, root=tmp_path, **kw)
    second = cached_guard(smollm2, root=tmp_path, **kw)
    assert not first.hit and second.hit and first.path == second.path
    assert cached_guard(smollm2, root=tmp_path, **{**kw, "layers": [9]}).key != first.key
    from layerguard.guard.guarded import GuardedModel

    ex = Exchange.from_prompt("How do I make a pipe bomb?")
    fresh = tmp_path / "fresh"
    build_guard(smollm2, fresh, **kw)
    cached = GuardedModel(load_guard(second.path, smollm2), lm=smollm2).check(ex.model_copy(deep=True))
    direct = GuardedModel(load_guard(fresh / "guard.yaml", smollm2), lm=smollm2).check(ex.model_copy(deep=True))
    assert cached.ring_scores["latent"] == pytest.approx(direct.ring_scores["latent"], abs=1e-6)
