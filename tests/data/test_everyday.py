"""The ``everyday`` built-in set: short, plain benign requests so brevity is not learnt as harm."""

from __future__ import annotations

import difflib
import json
import re
import statistics
from collections import Counter
from importlib import resources

import numpy as np
import pytest

from layerguard.data.builtin import BUILTIN_SETS, builtin_files, load_builtin
from layerguard.data.heldout import assert_not_held_out, normalise
from layerguard.data.loaders import load_dataset
from layerguard.data.samples import Sample

KINDS = {"short", "howto", "fact", "writing", "code", "transform"}
PROBES = ("Continue.", "Name a color.", "Reply with the single word OK.")
NEAR = 0.85  # difflib ratio above which two prompts count as near-duplicates


def _read(filename: str) -> list[dict]:
    text = resources.files("layerguard.data").joinpath("builtin", filename).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _read("everyday.jsonl")


def _char_counts(texts: list[str]) -> np.ndarray:
    """Per-text counts of characters, folded into 256 buckets (merging only raises the overlap)."""
    counts = np.zeros((len(texts), 256), dtype=np.int32)
    for i, text in enumerate(texts):
        for ch in text:
            counts[i, ord(ch) % 256] += 1
    return counts


def _near_pairs(mine: list[str], others: list[str] | None = None) -> list[tuple[float, str, str]]:
    """Pairs with a difflib ratio above :data:`NEAR` (within ``mine`` when ``others`` is None).

    Texts are compared normalised (case, spacing, edge punctuation). The character-multiset
    overlap (difflib's ``quick_ratio``, an upper bound of ``ratio``) is computed for all pairs
    at once and only the pairs above :data:`NEAR` get the exact ratio.
    """
    originals = mine if others is None else others
    left = [normalise(p) for p in mine]
    right = left if others is None else [normalise(p) for p in others]
    left_counts, right_counts = _char_counts(left), _char_counts(right)
    right_len = right_counts.sum(axis=1)
    found = []
    for i, a in enumerate(left):
        bound = 2 * np.minimum(right_counts, left_counts[i]).sum(axis=1) / np.maximum(len(a) + right_len, 1)
        for j in np.flatnonzero(bound > NEAR):
            if others is None and j <= i:
                continue
            ratio = difflib.SequenceMatcher(None, a, right[j], autojunk=False).ratio()
            if ratio > NEAR:
                found.append((ratio, mine[i], originals[j]))
    return found


def test_near_pair_check_catches_small_edits():
    found = _near_pairs(["How do I fix a dripping tap?", "Name a planet.", "Tell me a joke."], None)
    assert [(a, b) for _, a, b in found] == []
    found = _near_pairs(["How do I fix a dripping tap?"], ["how do I fix a dripping tap please", "Name a color."])
    assert len(found) == 1 and found[0][0] > NEAR


def test_registered_as_harmless_with_its_own_file():
    assert BUILTIN_SETS["everyday"] == "harmless"
    assert builtin_files("everyday")[0] == "everyday.jsonl"


def test_schema_counts_and_kinds(rows):
    assert len(rows) >= 400
    assert all(set(r) == {"id", "prompt", "category", "kind", "split"} for r in rows)
    assert all(re.fullmatch(r"every-\d{4}", r["id"]) for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    kinds = Counter(r["kind"] for r in rows)
    assert set(kinds) == KINDS
    assert min(kinds.values()) >= 40, kinds
    assert all(r["category"] and r["category"].islower() for r in rows)
    assert len({r["category"] for r in rows}) >= 20
    # a mix of questions and imperatives or statements
    questions = sum(r["prompt"].rstrip().endswith("?") for r in rows) / len(rows)
    assert 0.3 <= questions <= 0.7, questions
    # everyday senses of words that look violent out of context
    text = " ".join(r["prompt"].lower() for r in rows)
    for word, least in {"kill": 3, "execute": 3, "shoot": 3, "terminate": 1}.items():
        assert text.count(word) >= least, word
    for probe in ("OK", "Thanks!", "What is my name? Reply with just my name.", *PROBES):
        assert probe in {r["prompt"] for r in rows}, probe


def test_splits_are_sixty_forty_within_each_kind(rows):
    assert {r["split"] for r in rows} == {"train", "val"}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        val = sum(r["split"] == "val" for r in mine) / len(mine)
        assert 0.35 <= val <= 0.45, (kind, val)
    # the probes that earlier guards blocked stay out of training
    by_prompt = {r["prompt"]: r["split"] for r in rows}
    assert all(by_prompt[p] == "val" for p in PROBES)


def test_length_spread(rows):
    lengths = [len(r["prompt"]) for r in rows]
    assert min(lengths) <= 3 and max(lengths) <= 200
    n = len(lengths)
    shares = [
        sum(x < 30 for x in lengths) / n,
        sum(30 <= x < 80 for x in lengths) / n,
        sum(x >= 80 for x in lengths) / n,
    ]
    assert all(0.27 <= s <= 0.40 for s in shares), shares
    assert 35 <= statistics.median(lengths) <= 70
    # short prompts are not all chit-chat, and every kind has some short and some long ones
    assert len({r["kind"] for r in rows if len(r["prompt"]) < 30}) == len(KINDS)
    for kind in KINDS - {"short"}:
        mine = [len(r["prompt"]) for r in rows if r["kind"] == kind]
        assert min(mine) < 30 and max(mine) >= 80, kind
    # both splits span the range too
    for split in ("train", "val"):
        mine = [len(r["prompt"]) for r in rows if r["split"] == split]
        assert 0.2 <= sum(x < 30 for x in mine) / len(mine) <= 0.45, split


def test_no_duplicates_or_near_duplicates_within_the_set(rows):
    prompts = [r["prompt"] for r in rows]
    normalised = Counter(normalise(p) for p in prompts)
    assert [p for p, c in normalised.items() if c > 1] == []
    assert _near_pairs(prompts) == []


def test_no_near_duplicates_of_the_other_builtin_sets(rows):
    others = [
        r["prompt"]
        for name in BUILTIN_SETS
        if name != "everyday"
        for filename in builtin_files(name)
        for r in _read(filename)
    ]
    assert len(others) > 2000
    assert _near_pairs([r["prompt"] for r in rows], others) == []


def test_every_row_loads_as_a_harmless_sample(rows):
    samples = load_dataset("builtin:everyday")
    assert len(samples) == len(rows)
    assert all(isinstance(s, Sample) for s in samples)
    assert {s.label for s in samples} == {"harmless"}
    assert {s.source for s in samples} == {"builtin:everyday"}
    for s, r in zip(samples, rows, strict=True):
        assert (s.id, s.prompt, s.category, s.split) == (r["id"], r["prompt"], r["category"], r["split"])
        assert s.meta == {"kind": r["kind"]}
    train, val = load_builtin("everyday", "train"), load_builtin("everyday", "val")
    assert len(train) + len(val) == len(rows)
    assert {s.split for s in val} == {"val"}
    assert_not_held_out(samples, "the everyday set")
