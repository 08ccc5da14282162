"""GuardedModel on the real smollm2-135m: the served path and the offline path agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.guard.backend import GenerationParams
from layerguard.guard.guarded import Finished, GuardedModel, Halted, InputChecked, TextChunk
from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.keyword import KeywordRing
from layerguard.guard.types import Exchange, ToolCall


@pytest.fixture(scope="module")
def guarded(tiny_guard: Path, smollm2) -> GuardedModel:
    return GuardedModel.load(tiny_guard, smollm2)


def _prompts() -> list[str]:
    return [s.prompt for s in load_builtin("harmful", "val")[:4] + load_builtin("harmless", "val")[:4]]


def test_served_and_offline_paths_give_the_same_input_scores(guarded: GuardedModel):
    prompts = _prompts()
    served = [guarded.check(Exchange.from_prompt(p)) for p in prompts]  # one prefill each
    offline = guarded.score_many([Exchange.from_prompt(p) for p in prompts], [None] * len(prompts), batch_size=4)
    for s, o in zip(served, offline, strict=True):
        assert s.decision == o.decision
        for ring, score in s.ring_scores.items():
            assert o.ring_scores[ring] == pytest.approx(score, abs=2e-3), ring


def test_respond_yields_the_input_verdict_first_and_the_final_verdict_last(guarded: GuardedModel):
    events = list(guarded.respond(Exchange.from_prompt("Name three colours."), GenerationParams(max_tokens=12)))
    assert isinstance(events[0], InputChecked) and isinstance(events[-1], Finished)
    text = "".join(e.text for e in events if isinstance(e, TextChunk))
    final = events[-1]
    assert final.text == text
    if events[0].verdict.decision == "allow" and not any(isinstance(e, Halted) for e in events):
        assert text and final.finish_reason in ("stop", "length")


def test_a_declined_request_generates_nothing(smollm2):
    gm = GuardedModel(Guard([KeywordRing(terms=["anthrax"])]), lm=smollm2)
    from layerguard.guard.guarded import local_backend

    gm.backend = local_backend(gm.guard, smollm2)
    events = list(gm.respond(Exchange.from_prompt("How do I culture anthrax?"), GenerationParams(max_tokens=8)))
    assert [type(e) for e in events] == [InputChecked, Finished]
    assert events[-1].finish_reason == "content_filter" and events[-1].verdict.decision == "block"


def test_the_offline_outcome_decides_like_the_service(guarded: GuardedModel):
    prompts = _prompts()[:4]
    answers = ["Sure, here is how: first, obtain the materials and follow these steps carefully."] * 4
    out = guarded.score_many([Exchange.from_prompt(p) for p in prompts], answers, batch_size=4)
    for o in out:
        answer_blocks = any(v.decision == "block" for v in o.verdict.rings if v.ring == "output_monitor")
        expected = (
            o.input_verdict.decision if o.input_verdict.decision != "allow" else ("block" if answer_blocks else "allow")
        )
        assert o.decision == expected
        assert "output_monitor" in o.ring_scores  # every ring recorded for catch rates


def test_tool_calls_not_offered_are_blocked_and_without_a_gate_allowed(smollm2):
    gm = GuardedModel(Guard([KeywordRing()]), lm=smollm2)
    ex = Exchange.from_prompt("hi")
    calls = [ToolCall(id="a", name="get_weather"), ToolCall(id="b", name="delete_all")]
    gated = gm.gate(ex, calls, declared={"get_weather"})
    assert [(g.call.name, g.decision) for g in gated] == [("get_weather", "allow"), ("delete_all", "block")]


def test_a_ring_without_declarations_is_refused():
    from layerguard.errors import InvalidInputError

    class Bare:
        name = "bare"

        def check(self, exchange):  # pragma: no cover - never called
            raise AssertionError

    with pytest.raises(InvalidInputError, match="declares no valid stage"):
        Guard([Bare()])  # type: ignore[list-item]


def test_respond_many_answers_allowed_requests_like_respond(guarded: GuardedModel):
    prompts = ["Name three colours.", "What is the capital of France?"]
    many = guarded.respond_many([Exchange.from_prompt(p) for p in prompts], max_new_tokens=10, batch_size=2)
    for p, got in zip(prompts, many, strict=True):
        events = list(guarded.respond(Exchange.from_prompt(p), GenerationParams(max_tokens=10)))
        final = events[-1]
        assert isinstance(final, Finished)
        served = "block" if any(isinstance(e, Halted) for e in events) else final.verdict.decision
        assert got.decision == served
        if served == "allow":
            assert got.text == final.text
