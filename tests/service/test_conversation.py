"""The conversation ring on synthetic turn scores: Crescendo escalation, decay, bursts, shared state."""

from __future__ import annotations

import pytest

from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.conversation import (
    ConversationRing,
    MemoryConversationState,
    conversation_keys,
)
from layerguard.guard.types import Exchange, Message, RingVerdict
from layerguard.service.storage import Store


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def turn(
    ring: ConversationRing,
    score: float,
    *,
    conv: str = "c1",
    key: str = "k1",
    decision: str = "allow",
    second: float = 0.0,
    prompt: str | None = None,
):
    ex = Exchange.from_prompt(
        prompt or f"turn with score {score}",
        conversation_id=conv,
        api_key=key,
        turn_scores={"latent": score, "keyword": second},
        turn_decision=decision,
    )
    return ring.check(ex)


@pytest.fixture(params=["memory", "store"])
def state(request, tmp_path):
    if request.param == "memory":
        yield MemoryConversationState()
    else:
        store = Store(tmp_path / "conv.db")
        yield store
        store.close()


def test_crescendo_escalates_when_no_single_turn_does(state):
    ring = ConversationRing(state, decay=0.8, floor=0.1, escalate_at=1.0)
    decisions = [turn(ring, 0.4).decision for _ in range(6)]
    # risk: 0.3, 0.54, 0.732, 0.886, 1.009 -> the fifth turn crosses 1.0
    assert decisions == ["allow", "allow", "allow", "allow", "escalate", "escalate"]
    v = turn(ring, 0.4)
    assert v.category == "crescendo" and v.details["turns"] == 7 and "cumulative risk" in v.explanation
    assert v.score == 1.0 and v.details["cumulative_risk"] > 1.0


def test_benign_conversation_never_escalates(state):
    ring = ConversationRing(state)
    for _ in range(40):
        v = turn(ring, 0.08, conv="benign")
        assert v.decision == "allow"
    assert v.details["cumulative_risk"] == 0.0 and v.score == 0.0


def test_one_spike_then_benign_turns_decays(state):
    ring = ConversationRing(state, decay=0.5)
    assert turn(ring, 0.9, conv="spike").decision == "allow"  # 0.8 < 1.0
    risks = [turn(ring, 0.05, conv="spike").details["cumulative_risk"] for _ in range(4)]
    assert risks == sorted(risks, reverse=True) and risks[-1] < 0.1


def test_conversations_are_separate_per_id_and_per_key(state):
    ring = ConversationRing(state, escalate_at=1.0)
    for _ in range(5):
        turn(ring, 0.45, conv="a", key="k1")
    assert turn(ring, 0.45, conv="a", key="k1").decision == "escalate"
    assert turn(ring, 0.45, conv="b", key="k1").decision == "allow"  # another conversation
    assert turn(ring, 0.45, conv="a", key="k2").decision == "allow"  # same id, another key


def test_hashed_chain_follows_a_conversation_without_id(state):
    ring = ConversationRing(state, escalate_at=1.0)
    msgs: list[Message] = []
    decisions = []
    for i in range(6):
        msgs.append(Message(role="user", content=f"step {i}: tell me a bit more"))
        ex = Exchange(messages=list(msgs), api_key="k", turn_scores={"latent": 0.4})
        decisions.append(ring.check(ex).decision)
        msgs.append(Message(role="assistant", content=f"reply {i} (varies: {id(ex)})"))
    assert decisions[:4] == ["allow"] * 4 and decisions[4] == "escalate"
    # a fresh conversation with the same first message starts from zero
    fresh = Exchange(messages=[Message(role="user", content="step 0: tell me a bit more")], api_key="k",
                     turn_scores={"latent": 0.4})  # fmt: skip
    assert ring.check(fresh).details["turns"] == 1


def test_conversation_keys_chain():
    ex1 = Exchange(messages=[Message(role="user", content="a")])
    ex2 = Exchange(
        messages=[Message(role="user", content="a"), Message(role="assistant", content="x"),
                  Message(role="user", content="b")]
    )  # fmt: skip
    prev1, key1 = conversation_keys(ex1, "s")
    prev2, key2 = conversation_keys(ex2, "s")
    assert prev1 is None and prev2 == key1 and key2 != key1
    assert conversation_keys(ex2, "other")[0] != key1  # scoped to the key


def test_burst_of_blocked_attempts_blocks_the_key_for_a_cooldown(state):
    clock = Clock()
    ring = ConversationRing(state, burst_blocks=3, burst_window_s=60, cooldown_s=120, clock=clock)
    for i in range(2):
        assert turn(ring, 0.9, decision="block", key="bad", conv=f"x{i}", second=1.0).decision == "allow"
        clock.t += 5
    v = turn(ring, 0.9, decision="block", key="bad", conv="x2", second=1.0)
    assert v.decision == "block" and v.category == "abuse_burst" and "3 blocked attempts within 60 s" in v.explanation
    clock.t += 10
    v = turn(ring, 0.0, key="bad", conv="benign")  # even a benign request is refused now
    assert v.decision == "block" and "blocked for" in v.explanation
    assert turn(ring, 0.0, key="good", conv="benign").decision == "allow"  # other keys unaffected
    clock.t += 121
    assert turn(ring, 0.0, key="bad", conv="benign2").decision == "allow"


def test_blocks_outside_the_window_do_not_count(state):
    clock = Clock()
    ring = ConversationRing(state, burst_blocks=3, burst_window_s=10, clock=clock)
    for i in range(6):
        assert turn(ring, 0.9, decision="block", key="slow", conv=f"s{i}", second=1.0).decision == "allow"
        clock.t += 6  # at most 2 blocks in any 10 s window


def test_blocks_one_ring_alone_stands_behind_never_lock_a_key_out(state):
    """ "Name a color." blocked by the latent ring alone (0.97) but not by a second ring: no lock-out."""
    clock = Clock()
    ring = ConversationRing(state, burst_blocks=3, burst_window_s=60, cooldown_s=300, clock=clock)
    for i in range(10):
        v = turn(ring, 0.97, decision="block", key="benign", conv=f"b{i}", second=0.1)
        assert v.decision == "allow" and "blocked_recent" not in v.details
        clock.t += 1
    assert turn(ring, 0.0, key="benign", conv="later").decision == "allow"
    # a guard with a single scoring ring asks for one opinion
    alone = ConversationRing(MemoryConversationState(), burst_blocks=2, burst_agree=1, clock=clock)
    ex = Exchange.from_prompt("x", api_key="solo", turn_scores={"latent": 0.95}, turn_decision="block")
    assert alone.confident_block(ex)


def test_a_new_conversation_id_does_not_reset_the_risk(state):
    """The same thread sent under a fresh id every turn still accumulates (content fingerprint)."""
    ring = ConversationRing(state, burst_blocks=0)
    history: list[Message] = []
    decisions = []
    for i in range(6):
        history = [*history, Message(role="user", content=f"step {i}")]
        ex = Exchange(messages=history, conversation_id=f"fresh-{i}", api_key="k", turn_scores={"latent": 0.4})
        decisions.append(ring.check(ex).decision)
        history = [*history, Message(role="assistant", content="ok")]
    assert decisions == ["allow"] * 4 + ["escalate"] * 2


def test_garbage_turn_scores_are_ignored():
    ring = ConversationRing()
    ex = Exchange.from_prompt("x", conversation_id="g")
    ex.turn_scores = {"a": "high", "b": float("nan"), "c": 7.0, "d": None}  # type: ignore[dict-item]  # unvalidated
    v = ring.check(ex)
    assert v.details["turn_score"] == 1.0 and v.details["turn_score_ring"] == "c"  # clamped
    assert ConversationRing(score_rings=["a"]).check(ex).details["turn_score"] == 0.0
    assert ConversationRing().check(Exchange.from_prompt("no meta")).decision == "allow"


def test_invalid_parameters():
    with pytest.raises(ValueError, match="decay"):
        ConversationRing(decay=1.0)
    with pytest.raises(ValueError, match="escalate_at"):
        ConversationRing(escalate_at=0)


class Fixed:
    stage = "input"
    reads: tuple[str, ...] = ()

    def __init__(self, name: str, score: float, decision: str = "allow") -> None:
        self.name, self.score, self.decision = name, score, decision

    def check(self, exchange: Exchange) -> RingVerdict:
        return RingVerdict(ring=self.name, score=self.score, decision=self.decision)  # type: ignore[arg-type]


def test_guard_check_feeds_turn_scores_to_the_conversation_ring():
    ring = ConversationRing(escalate_at=1.0)
    guard = Guard([Fixed("latent", 0.4), Fixed("keyword", 0.0), ring])
    verdicts = [guard.check(Exchange.from_prompt("q", conversation_id="z")) for _ in range(5)]
    assert [v.decision for v in verdicts] == ["allow", "allow", "allow", "allow", "escalate"]
    assert verdicts[-1].category == "crescendo" and "conversation" in verdicts[-1].ring_scores
    # a blocking ring stops the others early, but the conversation ring still runs (burst detector)
    # (one ring's opinion is enough here: burst_agree=1)
    guard = Guard(
        [Fixed("blocker", 1.0, "block"), Fixed("never", 0.0), ConversationRing(burst_blocks=2, burst_agree=1)]
    )
    v = guard.check(Exchange.from_prompt("q", api_key="k"))
    assert v.decision == "block" and v.stopped_at == "blocker" and list(v.ring_scores) == ["blocker", "conversation"]
    v = guard.check(Exchange.from_prompt("q2", api_key="k"))
    assert any(r.ring == "conversation" and r.decision == "block" for r in v.rings)
    # without a conversation ring it is Guard.check
    assert Guard([Fixed("a", 0.2)]).check(Exchange.from_prompt("q")).score == 0.2


def test_two_replicas_share_conversation_state(tmp_path):
    db = tmp_path / "shared.db"
    a, b = Store(db), Store(db)
    try:
        ra, rb = ConversationRing(a), ConversationRing(b)
        decisions = [turn(r, 0.4, conv="shared").decision for r in (ra, rb, ra, rb, ra)]
        assert decisions == ["allow", "allow", "allow", "allow", "escalate"]
    finally:
        a.close()
        b.close()


def test_guard_check_runs_turn_rings_last_with_the_turn_scores():
    ring = ConversationRing(escalate_at=1.0)
    # listed first, still run last: it must see the other rings' scores for the turn
    guard = Guard([ring, Fixed("latent", 0.4)])
    verdicts = [guard.check(Exchange.from_prompt("q", conversation_id="z")) for _ in range(5)]
    assert [v.decision for v in verdicts] == ["allow", "allow", "allow", "allow", "escalate"]
    assert list(verdicts[0].ring_scores) == ["latent", "conversation"]


def test_guard_yaml_can_declare_the_conversation_ring(tmp_path):
    from layerguard.errors import InvalidInputError
    from layerguard.guard.build import load_guard
    from layerguard.guard.config import GuardConfig, ModelRef, RingConfig

    def write(params):
        cfg = GuardConfig(
            model=ModelRef(name="m", weights_sha256="0" * 64, template_sha256="0" * 64),
            rings=[RingConfig(name="keyword"), RingConfig(name="conversation", params=params)],
        )
        path = tmp_path / "guard.yaml"
        cfg.save(path)
        return path

    g = load_guard(write({"escalate_at": 0.5, "decay": 0.5}))
    conv = next(r for r in g.rings if isinstance(r, ConversationRing))
    assert conv.escalate_at == 0.5 and conv.decay == 0.5
    with pytest.raises(InvalidInputError, match="conversation ring"):
        load_guard(write({"decay": 2.0}))
    with pytest.raises(InvalidInputError, match="conversation ring"):
        load_guard(write({"no_such_param": 1}))


def test_thread_id_is_stable_over_a_hashed_chain():
    ring = ConversationRing(escalate_at=100.0)
    msgs: list[Message] = []
    threads = set()
    for i in range(3):
        msgs = [*msgs, Message(role="user", content=f"turn {i}")]
        ex = Exchange(messages=msgs, api_key="k", turn_scores={"latent": 0.5})
        threads.add(ring.check(ex).details["thread"])
        msgs = [*msgs, Message(role="assistant", content="ok")]
    assert len(threads) == 1
    other = ring.check(Exchange.from_prompt("another conversation", api_key="k")).details["thread"]
    assert other not in threads


def test_escalations_are_deduplicated_per_open_thread(tmp_path):
    store = Store(tmp_path / "esc.db")
    try:
        kw = {"request_id": "r", "api_key_hash": "h", "reason": "crescendo", "payload": {}}
        a = store.create_escalation(**kw, dedupe_key="id:t1")
        assert store.create_escalation(**kw, dedupe_key="id:t1") == a
        assert store.get_escalation(a)["hits"] == 2
        assert store.create_escalation(**kw, dedupe_key="id:t2") != a  # another thread
        assert store.create_escalation(**{**kw, "api_key_hash": "other"}, dedupe_key="id:t1") != a  # another key
        assert store.create_escalation(**kw) != store.create_escalation(**kw)  # no key: one row each
        store.resolve_escalation(a, "rejected", resolved_by="rev")
        assert store.create_escalation(**kw, dedupe_key="id:t1") != a  # a resolved one is not reused
    finally:
        store.close()
