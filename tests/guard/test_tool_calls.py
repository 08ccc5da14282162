"""Tool-call text parsing: Qwen-format ``<tool_call>`` blocks, streamed and whole."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerguard.guard.tool_calls import TOOL_OPEN, ToolCallFilter, openai_tool_call, split_tool_calls
from layerguard.guard.types import ToolCall


def _feed_all(pieces: list[str]) -> tuple[str, str, str]:
    filt = ToolCallFilter()
    sent = "".join(filt.feed(p) for p in pieces)
    held, captured = filt.finish()
    return sent, held, captured


def test_split_parses_calls_and_keeps_text() -> None:
    text = 'Sure.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n'
    content, calls = split_tool_calls(text)
    assert content == "Sure."
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert calls[0].id.startswith("call_")


def test_split_accepts_string_arguments_parameters_and_unclosed_block() -> None:
    _, calls = split_tool_calls('<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}</tool_call>')
    assert calls[0].arguments == {"x": 1}
    _, calls = split_tool_calls('<tool_call>{"name": "b", "parameters": {"y": 2}}')
    assert (calls[0].name, calls[0].arguments) == ("b", {"y": 2})
    _, calls = split_tool_calls('<tool_call>{"name": "c", "arguments": null}</tool_call>')
    assert calls[0].arguments == {}


def test_malformed_blocks_stay_in_the_text() -> None:
    bad_blocks = (
        "<tool_call>not json</tool_call>",
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "x", "arguments": [1]}</tool_call>',
        '<tool_call>{"name": ""}</tool_call>',
    )
    for bad in bad_blocks:
        text = f"before {bad} after"
        assert split_tool_calls(text) == (text, [])


def test_text_without_calls_is_unchanged() -> None:
    assert split_tool_calls("  plain answer \n") == ("  plain answer \n", [])


def test_openai_format() -> None:
    call = ToolCall(id="call_1", name="f", arguments={"q": "é"})
    assert openai_tool_call(call) == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"q": "é"}'},
    }
    assert openai_tool_call(call, 3)["index"] == 3
    assert json.loads(openai_tool_call(call)["function"]["arguments"]) == {"q": "é"}


def test_filter_holds_back_a_split_opening_tag() -> None:
    sent, held, captured = _feed_all(["Hello <tool", "_ca", 'll>{"name": "f"}</tool_call>'])
    assert sent == "Hello "
    assert held == ""
    assert captured == '<tool_call>{"name": "f"}</tool_call>'


def test_filter_releases_a_false_alarm() -> None:
    filt = ToolCallFilter()
    assert filt.feed("a <tool") == "a "
    assert filt.feed("box> b") == "<toolbox> b"
    assert filt.finish() == ("", "")


@given(st.text(alphabet="ab<>_/clot{}", max_size=60), st.lists(st.integers(0, 60), max_size=8))
def test_filter_loses_nothing_and_never_sends_the_tag(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    pieces = [text[i:j] for i, j in zip(bounds, bounds[1:], strict=False)]
    sent, held, captured = _feed_all(pieces)
    assert sent + held + captured == text
    assert TOOL_OPEN not in sent
    i = text.find(TOOL_OPEN)
    assert captured == (text[i:] if i >= 0 else "")


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "run_shell", "arguments": {"command": "ls"}}',
        '```json\n{\n  "name": "run_shell",\n  "arguments": {"command": "ls"}\n}\n```',
        '  [{"name": "run_shell", "parameters": {"command": "ls"}}]  ',
    ],
)
def test_a_bare_json_call_to_an_offered_tool_is_a_call(text: str) -> None:
    content, calls = split_tool_calls(text, {"run_shell", "read_file"})
    assert content == "" and [(c.name, c.arguments) for c in calls] == [("run_shell", {"command": "ls"})]
    assert split_tool_calls(text) == (text, [])  # without the offered names it stays text


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "rm_everything", "arguments": {}}',  # not offered
        'Here you go: {"name": "run_shell", "arguments": {"command": "ls"}}',  # text around it
        '[{"name": "run_shell", "arguments": {}}, {"name": "nope", "arguments": {}}]',  # one is not offered
        '{"name": "run_shell", "arguments": "not json"}',
        '```json\n{"name": "run_shell", "arguments": {}}\n``` and more',
    ],
)
def test_other_json_stays_text(text: str) -> None:
    assert split_tool_calls(text, {"run_shell"}) == (text, [])


def test_a_tagged_call_wins_over_the_bare_form() -> None:
    text = '<tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>'
    content, calls = split_tool_calls(text, {"run_shell", "read_file"})
    assert [c.name for c in calls] == ["read_file"] and content == ""
