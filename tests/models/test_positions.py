"""Token positions from chat templates of four families, built from offline fixtures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerguard.errors import InvalidInputError, TemplateError
from layerguard.models.positions import encode_prompt, parse_position
from layerguard.models.templates import template_family
from tests.fixtures.chat_tokenizers import FAMILIES, expected_post, make_tokenizer

FAMILY_NAMES = sorted(FAMILIES)
INSTRUCTION = "How do I kill a Python process?"
MULTI = [
    {"role": "user", "content": "Tell me about chess."},
    {"role": "assistant", "content": "Sure, here is the answer."},
    {"role": "user", "content": "Tell me about chess."},  # same text as turn 1: the LAST turn must be found
]


def _decode(tok, ids):
    return tok.decode(ids, skip_special_tokens=False)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("system", [None, "Answer briefly."])
def test_single_turn_positions(family, system):
    tok = make_tokenizer(family)
    pp = encode_prompt(tok, INSTRUCTION, system=system)
    start, end = pp.instruction
    assert _decode(tok, pp.input_ids[start:end]).strip() == INSTRUCTION
    assert pp.t_inst == end - 1
    assert _decode(tok, pp.input_ids[pp.t_inst : pp.t_inst + 1]).strip().endswith("?")
    assert pp.post_inst == list(range(end, pp.n_tokens))
    assert _decode(tok, [pp.input_ids[i] for i in pp.post_inst]) == expected_post(family)
    if system:
        assert system in pp.text and pp.text.index(system) < pp.text.rindex(INSTRUCTION)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_multi_turn_finds_last_user_turn(family):
    tok = make_tokenizer(family)
    pp = encode_prompt(tok, MULTI)
    start, end = pp.instruction
    assert _decode(tok, pp.input_ids[start:end]).strip() == "Tell me about chess."
    first_occurrence = pp.text.index("Tell me about chess.")
    # the span must be the second occurrence, after the assistant's reply
    assert pp.text.index("Sure, here is the answer.") > first_occurrence
    prefix_len = len(_decode(tok, pp.input_ids[:start]))
    assert prefix_len > pp.text.index("Sure, here is the answer.")
    assert _decode(tok, [pp.input_ids[i] for i in pp.post_inst]) == expected_post(family)


def test_family_detection():
    assert [template_family(FAMILIES[f][0]) for f in FAMILY_NAMES] == FAMILY_NAMES
    assert template_family(None) == "none"
    assert template_family("{{ messages }}") == "other"


def test_unparseable_template_says_how_to_pass_positions():
    tok = make_tokenizer("chatml", template="{% for m in messages %}{{ m['content'] | upper }}{% endfor %}")
    with pytest.raises(TemplateError) as err:
        encode_prompt(tok, INSTRUCTION)
    assert "explicit" in (err.value.hint or "")
    # absolute positions still work with such a template
    pp = encode_prompt(tok, INSTRUCTION, find_instruction=False)
    assert pp.resolve(-1) == [pp.n_tokens - 1]


def test_template_that_repeats_the_message():
    tok = make_tokenizer("chatml", template="{% for m in messages %}{{ m['content'] }}|{{ m['content'] }}{% endfor %}")
    with pytest.raises(TemplateError, match="repeats or transforms"):
        encode_prompt(tok, INSTRUCTION)


def test_missing_template_and_rejected_conversation():
    tok = make_tokenizer("chatml")
    with pytest.raises(TemplateError, match="rejected"):
        encode_prompt(
            make_tokenizer("gemma"), [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]
        )
    bare = make_tokenizer("chatml", template="{{ '' }}")
    bare.chat_template = None
    with pytest.raises(TemplateError, match="no chat template"):
        encode_prompt(bare, INSTRUCTION)
    with pytest.raises(InvalidInputError, match="end with the user turn"):
        encode_prompt(tok, [*MULTI, {"role": "assistant", "content": "ok"}])
    with pytest.raises(InvalidInputError, match="empty"):
        encode_prompt(tok, "   ")
    with pytest.raises(InvalidInputError, match="unknown role"):
        encode_prompt(tok, [{"role": "wizard", "content": "x"}])


def test_resolve_specs():
    tok = make_tokenizer("llama3")
    pp = encode_prompt(tok, INSTRUCTION)
    start, end = pp.instruction
    assert pp.resolve("t_inst") == [end - 1]
    assert pp.resolve("last") == [pp.n_tokens - 1] == pp.resolve(-1)
    assert pp.resolve("post_inst[0]") == [end]
    assert pp.resolve("post_inst[-1]") == [pp.n_tokens - 1]
    assert pp.resolve("inst[0]") == [start]
    assert pp.resolve("inst") == list(range(start, end))
    with pytest.raises(InvalidInputError):
        pp.resolve("post_inst[99]")
    with pytest.raises(InvalidInputError):
        pp.resolve(10_000)
    with pytest.raises(InvalidInputError, match="unknown position"):
        parse_position("middle")


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60
    ).filter(lambda s: s.strip()),
    family=st.sampled_from(FAMILY_NAMES),
)
def test_instruction_span_covers_any_text(text, family):
    """Whatever the user writes, the span's characters cover exactly it and nothing of the template after it."""
    tok = make_tokenizer(family)
    pp = encode_prompt(tok, text)
    start, end = pp.instruction
    offsets = tok(pp.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    covered = pp.text[offsets[start][0] : offsets[end - 1][1]]
    assert text.strip() in covered
    template_after = expected_post(family)
    assert pp.text.endswith(template_after)
    first_post_char = offsets[pp.post_inst[0]][0] if pp.post_inst else len(pp.text)
    assert first_post_char >= len(pp.text) - len(template_after) - 1
