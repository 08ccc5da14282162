"""Refusal tokens: a CI-sized LoRA run on smollm2 must learn the tags; thresholds, save/load and errors."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.train.refusal_tokens import (
    META_FILE,
    RESPOND,
    add_tag_tokens,
    build_examples,
    load_adapter,
    refuse_tag,
    save_adapter,
    train_refusal_tokens,
)
from layerguard.train.refusal_tokens_eval import (
    RefusalTokenProcessor,
    decide,
    generate_with_tags,
    plot_sweep,
    resolve_thresholds,
    sweep,
    tag_probabilities,
)

CATS = ("S1_violent_crimes", "S10_hate")


def _tiny() -> tuple[list[Sample], list[Sample]]:
    harmful = load_builtin("harmful", "train")
    h = [s for c in CATS for s in [x for x in harmful if x.category == c][:4]]
    b = load_builtin("harmless", "train")[:5] + load_builtin("borderline", "train")[:3]
    return h, b


def _labelled(h: list[Sample], b: list[Sample]) -> list[tuple[Sample, str]]:
    return [(s, refuse_tag(s.category)) for s in h] + [(s, RESPOND) for s in b]


def _greedy_first(model, tokenizer, lm, items) -> list[str]:
    """The greedy first answer token over the whole vocabulary, decoded (one left-padded batch)."""
    import torch

    from layerguard.models.generate import left_pad

    enc = [lm.encode(s.conversation(), find_instruction=False) for s, _ in items]
    ids, mask, pos = left_pad(enc, lm.tokenizer.pad_token_id)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
    return tokenizer.convert_ids_to_tokens(logits.argmax(-1).tolist())


@pytest.fixture(scope="module")
def tiny(smollm2):
    h, b = _tiny()
    res = train_refusal_tokens(smollm2, h, b, steps=12, batch_size=4, lr=3e-3, seed=0, progress=False)
    return res, h, b


def test_tags_are_learnt_and_not_by_the_untrained_model(smollm2, tiny):
    res, h, b = tiny
    items = _labelled(h, b)
    trained = _greedy_first(res.model, res.tokenizer, smollm2, items)
    acc = sum(p == lab for p, (_, lab) in zip(trained, items, strict=True)) / len(items)
    # The same tags, added but not trained: the baseline the training must beat.
    model, tok = copy.deepcopy(smollm2.model), copy.deepcopy(smollm2.tokenizer)
    add_tag_tokens(model, tok, res.meta["tags"])
    untrained = _greedy_first(model, tok, smollm2, items)
    base_acc = sum(p == lab for p, (_, lab) in zip(untrained, items, strict=True)) / len(items)
    assert acc >= 0.75, list(zip(trained, [lab for _, lab in items], strict=True))
    assert acc >= base_acc + 0.4, (acc, base_acc)
    assert res.meta["tag_loss_last"] < 0.3 * res.meta["tag_loss_first"], res.losses
    # The user's model was not touched.
    assert smollm2.model.get_input_embeddings().weight.shape[0] == res.meta["base_vocab_size"]
    assert len(smollm2.tokenizer) == res.meta["base_vocab_size"]


def test_save_load_roundtrip_and_metadata(smollm2, tiny, tmp_path):
    res, h, b = tiny
    save_adapter(res, tmp_path / "a")
    meta = json.loads((tmp_path / "a" / META_FILE).read_text())
    assert meta["weights_sha256"] == smollm2.weights_sha256
    assert meta["tags"] == [RESPOND, *(refuse_tag(c) for c in sorted(CATS))]
    assert meta["seed"] == 0 and meta["steps"] == 12 and meta["duration_seconds"] > 0
    assert len(meta["data_sha256"]) == 64
    loaded = load_adapter(tmp_path / "a", smollm2)
    convs = [s.conversation() for s in h[:2] + b[:2]]
    for p, q in zip(tag_probabilities(res, convs), tag_probabilities(loaded, convs), strict=True):
        assert p.keys() == q.keys()
        assert max(abs(p[k] - q[k]) for k in p) < 1e-4
    # An adapter trained on other weights is refused with a clear message.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    meta["weights_sha256"] = "0" * 64
    meta["model_id"] = "other@000000000000"
    (tmp_path / "b" / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="trained on other@"):
        load_adapter(tmp_path / "b", smollm2)
    with pytest.raises(InvalidInputError, match="not a refusal-token adapter"):
        load_adapter(tmp_path, smollm2)


def test_processor_forces_the_thresholded_tag(tiny):
    res, h, b = tiny
    convs = [s.conversation() for s in [h[0], h[-1], b[0], b[-1]]]
    qs = tag_probabilities(res, convs)
    expected = [decide(q, resolve_thresholds(res.meta["categories"], 0.5)) for q in qs]
    got = generate_with_tags(res, convs, 0.5, max_new_tokens=3)
    assert [t for t, _ in got] == expected
    assert all(isinstance(text, str) for _, text in got)
    # Threshold 0 refuses everything (with the most likely category).
    assert all(t != RESPOND for t, _ in generate_with_tags(res, convs, 0.0, max_new_tokens=1))


def test_sweep_is_monotone_and_plots(tiny, tmp_path):
    res, h, b = tiny
    out = sweep(res, harmful=h, borderline=b[5:], harmless=b[:5], grid=[0.0, 0.5, 1.0], per_category=True)
    rates = [r["harmful_refusal"]["rate"] for r in out["shared"]]
    assert rates[0] == 1.0 and rates == sorted(rates, reverse=True)
    assert out["shared"][0]["borderline_refusal"]["rate"] == 1.0
    assert set(out["per_category"]) == set(CATS)
    out["model_id"] = res.meta["model_id"]
    png = plot_sweep(out, tmp_path / "s.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_decision_rule_and_threshold_errors():
    cats = ["a", "b"]
    q = {RESPOND: 0.3, "[refuse:a]": 0.45, "[refuse:b]": 0.25}
    assert decide(q, resolve_thresholds(cats, 0.5)) == RESPOND
    assert decide(q, resolve_thresholds(cats, 0.2)) == "[refuse:a]"
    assert decide(q, resolve_thresholds(cats, {"a": 0.9, "b": 0.2})) == "[refuse:b]"
    assert decide(q, resolve_thresholds(cats, 0.0)) == "[refuse:a]"
    for bad in (-0.1, 1.5, float("nan"), {"a": 2.0}):
        with pytest.raises(InvalidInputError, match="outside"):
            resolve_thresholds(cats, bad)
    with pytest.raises(InvalidInputError, match="unknown refusal category"):
        resolve_thresholds(cats, {"zzz": 0.3})


def test_processor_forces_first_step_and_masks_tags_later():
    import torch

    tag_ids = {RESPOND: 5, "[refuse:a]": 6, "[refuse:b]": 7}
    proc = RefusalTokenProcessor(tag_ids, resolve_thresholds(["a", "b"], 0.5), prompt_len=3)
    scores = torch.zeros((2, 10))
    scores[0, 6] = 5.0  # row 0: [refuse:a] dominates the tags -> forced
    scores[1, 7] = 0.5  # row 1: no category reaches 0.5 of the tag mass -> [respond]
    first = proc(torch.zeros((2, 3), dtype=torch.long), scores.clone())
    assert first.argmax(-1).tolist() == [6, 5]
    assert torch.isinf(first).sum().item() == 2 * 9  # everything but the forced tag is -inf
    assert [t for t, _ in proc.decisions] == ["[refuse:a]", RESPOND]
    later = proc(torch.zeros((2, 4), dtype=torch.long), scores.clone())
    assert torch.isinf(later[:, 5:8]).all() and not torch.isinf(later[:, :5]).any()


def test_data_without_categories_is_refused():
    h = [Sample(id="x", prompt="do harm", label="harmful")]  # category defaults to "uncategorized"
    with pytest.raises(InvalidInputError, match="no hazard category"):
        build_examples(h, load_builtin("harmless", "train")[:2])
    with pytest.raises(InvalidInputError, match="empty"):
        build_examples([], load_builtin("harmless", "train")[:2])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "train", *args], capture_output=True, text=True, timeout=120
    )


def _user_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert needle in proc.stderr and "hint:" in proc.stderr, proc.stderr


def test_cli_bad_input(tiny, tmp_path: Path):
    res, _, _ = tiny
    _user_error(_cli("refusal-tokens", "--model", "no-such-model-xyz", "--out", str(tmp_path / "o")), "no-such")
    nocat = tmp_path / "nocat.jsonl"
    nocat.write_text('{"prompt": "do something bad"}\n')
    _user_error(_cli("refusal-tokens", "--harmful", str(nocat), "--out", str(tmp_path / "o")), "no hazard category")
    save_adapter(res, tmp_path / "a")
    proc = _cli(
        "refusal-tokens-sweep", "--adapter", str(tmp_path / "a"), "--out", str(tmp_path / "s"), "--grid", "0,1.5"
    )
    _user_error(proc, "outside [0, 1]")
    proc = _cli("refusal-tokens-sweep", "--adapter", str(tmp_path), "--out", str(tmp_path / "s"))
    _user_error(proc, "not a refusal-token adapter")
