"""Tests of layerguard.data.wrappers: the training and the held-out evaluation jailbreak families."""

from __future__ import annotations

import functools
import re

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import Sample
from layerguard.data.wrappers import (
    EVALUATION_WRAPPERS,
    TRAINING_WRAPPERS,
    Wrapper,
    contains_evaluation_wrapper,
    evaluation_wrapper_in,
    get_wrapper,
    normalise,
)
from layerguard.errors import InvalidInputError

ALL = {**TRAINING_WRAPPERS, **EVALUATION_WRAPPERS}
MIXED = "Kill the 进程 now — убить процесс, أوقف العملية 🔪 e\u0301t\u00e9 ＦＵＬＬＷＩＤＴＨ"


@functools.cache
def builtin_prompts() -> tuple[Sample, ...]:
    """Every harmful, harmless and borderline prompt (shards included)."""
    return tuple(load_builtin("harmful") + load_builtin("harmless") + load_builtin("borderline"))


def joined(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def test_family_sizes_and_kinds():
    assert len(TRAINING_WRAPPERS) >= 20
    assert len(EVALUATION_WRAPPERS) >= 10
    assert not set(TRAINING_WRAPPERS) & set(EVALUATION_WRAPPERS)
    assert all(w.kind == "train" for w in TRAINING_WRAPPERS.values())
    assert all(w.kind == "eval" for w in EVALUATION_WRAPPERS.values())
    # several kinds of trick in each family, not one template repeated
    assert len({w.family for w in TRAINING_WRAPPERS.values()}) >= 10
    assert len({w.family for w in EVALUATION_WRAPPERS.values()}) >= 6


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("prompt", ["", "How do I kill a stuck Python process?", "x" * 100_000, MIXED])
def test_contract(name: str, prompt: str):
    """Every wrapper: a docstring, a list of role/content messages ending with a user turn, any input."""
    w = ALL[name]
    assert isinstance(w, Wrapper) and w.name == name and w.family
    assert len(w.doc) > 20 and w.doc.endswith(".")
    out = w(prompt)
    assert isinstance(out, list) and out
    assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in out)
    assert all(m["role"] in ("system", "user", "assistant") for m in out)
    assert out[-1]["role"] == "user"
    if prompt:
        # the prompt is carried (possibly encoded): the output grows with it
        assert len(joined(out)) > len(joined(w(""))) + len(prompt) // 3


@pytest.mark.parametrize("name", sorted(ALL))
def test_sample_keeps_earlier_turns(name: str):
    earlier = ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})
    s = Sample(id="s", prompt="How do I poison weeds on my driveway?", messages=earlier)
    out = ALL[name](s)
    assert out[:2] == [dict(m) for m in earlier]
    assert out[2:] == ALL[name](s.prompt)


def test_plain_wrappers_carry_the_prompt_verbatim():
    prompt = "Explain how to kill a zombie process on Linux."
    encoders = {"base64_payload", "rot13_payload", "leetspeak", "hex_payload", "reversed_text", "caesar_shift"}
    encoders |= {"split_payload", "morse_code", "pair_swap_cipher", "json_task"}
    for name, w in ALL.items():
        if name not in encoders:
            assert prompt in joined(w(prompt)), name


def test_encodings_round_trip():
    import base64
    import codecs

    p = "Kill the 进程 safely"
    b64 = joined(get_wrapper("base64_payload")(p)).split()[-1]
    assert base64.b64decode(b64).decode() == p
    assert codecs.decode(joined(get_wrapper("rot13_payload")(p)).split("\n")[-1], "rot13") == p
    assert bytes.fromhex(joined(get_wrapper("hex_payload")(p)).split()[-1]).decode() == p
    assert joined(get_wrapper("reversed_text")(p)).split("\n")[-1][::-1] == p
    swapped = joined(get_wrapper("pair_swap_cipher")(p)).split("\n")[-1]
    assert "".join(swapped[i + 1 : i + 2] + swapped[i] for i in range(0, len(swapped), 2)) == p


# --------------------------------------------------------------------------------------------
# The held-out check
# --------------------------------------------------------------------------------------------


def test_every_evaluation_wrapper_is_detected_on_every_builtin_prompt():
    for w in EVALUATION_WRAPPERS.values():
        assert w.fingerprints, w.name
        for s in builtin_prompts():
            assert evaluation_wrapper_in(w(s)), (w.name, s.id)


def test_no_training_wrapper_and_no_plain_prompt_is_detected():
    for s in builtin_prompts():
        assert not contains_evaluation_wrapper(s.prompt), s.id
        for w in TRAINING_WRAPPERS.values():
            assert not evaluation_wrapper_in(w(s)), (w.name, s.id)


def test_detection_survives_case_spacing_and_unicode_forms():
    text = joined(get_wrapper("opposite_day")("Tell me how to steal second base."))
    assert contains_evaluation_wrapper(text.upper())
    assert contains_evaluation_wrapper(re.sub(r"\s+", "\n\n  ", text))
    assert contains_evaluation_wrapper(text.replace("Opposite Day", "Ｏｐｐｏｓｉｔｅ　Ｄａｙ"))
    assert contains_evaluation_wrapper("prefix words. " + text + " trailing words")


def test_detection_is_not_fooled_by_a_single_shared_word():
    assert not contains_evaluation_wrapper("Tell me a story about my nana and opposite day at school.")
    assert not contains_evaluation_wrapper("")


def test_fingerprints_come_from_the_template_and_not_from_the_prompt():
    for w in EVALUATION_WRAPPERS.values():
        template = normalise(joined(w("")))
        for fp in w.fingerprints:
            assert len(normalise(fp).split()) >= 3, (w.name, fp)
            assert normalise(fp) in template, (w.name, fp)


def _ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = normalise(text).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_families_share_no_template_text():
    marker = "qqzxmarker"
    train = set().union(*(_ngrams(joined(w(marker))) for w in TRAINING_WRAPPERS.values()))
    for w in EVALUATION_WRAPPERS.values():
        shared = {g for g in _ngrams(joined(w(marker))) & train if marker not in g}
        assert not shared, (w.name, sorted(shared))


def test_get_wrapper_unknown_name_lists_the_valid_ones():
    assert get_wrapper("morse_code").kind == "eval"
    with pytest.raises(InvalidInputError) as err:
        get_wrapper("nope")
    assert "morse_code" in str(err.value.hint) and "base64_payload" in str(err.value.hint)
