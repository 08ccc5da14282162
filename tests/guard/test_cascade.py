"""The cascade: a ring's block stands only where a second ring does not read the request as harmless."""

from __future__ import annotations

import pytest

from layerguard.guard.pipeline import Guard
from layerguard.guard.rings.conversation import ConversationRing
from layerguard.guard.types import Exchange, RingVerdict, SecondOpinion


class Fixed:
    """An input ring with a fixed verdict that counts its calls."""

    stage = "input"
    reads: tuple[str, ...] = ()

    def __init__(self, name: str, decision: str, score: float, rewrite: str | None = None) -> None:
        self.name, self.decision, self.score, self.rewrite = name, decision, score, rewrite
        self.calls = 0

    def check(self, exchange: Exchange) -> RingVerdict:
        self.calls += 1
        return RingVerdict(ring=self.name, score=self.score, decision=self.decision, rewrite=self.rewrite)  # type: ignore[arg-type]


OPINION = SecondOpinion(ring="classifier", by="latent", below=0.2)


@pytest.mark.parametrize(
    ("latent_score", "latent_decision", "expected"),
    [
        (0.05, "allow", "allow"),  # latent confidently harmless: the classifier's block is overruled
        (0.19, "allow", "allow"),
        (0.2, "allow", "block"),  # at the band's lower edge the classifier decides
        (0.6, "allow", "block"),  # inside the uncertain band
        (0.95, "block", "block"),  # both block
    ],
)
def test_a_classifier_block_stands_only_where_the_latent_ring_is_not_confidently_harmless(
    latent_score, latent_decision, expected
):
    clf, lat = Fixed("classifier", "block", 0.9), Fixed("latent", latent_decision, latent_score)
    v = Guard([clf, lat], second_opinions=[OPINION]).check(Exchange.from_prompt("x"))
    assert v.decision == expected
    assert lat.calls == 1  # no early stop on a block that waits for its second opinion
    first = next(r for r in v.rings if r.ring == "classifier")
    if expected == "allow":
        assert first.decision == "allow" and first.score == 0.9  # the evidence is kept
        assert first.details["overruled"] == {"was": "block", "by": "latent", "below": 0.2}
        assert "second opinion" in first.explanation
        assert v.score == latent_score  # an overruled score does not count
        assert v.category is None
    else:
        assert "overruled" not in first.details and v.score == max(0.9, latent_score)


def test_without_a_cascade_or_without_the_second_ring_either_ring_blocks_alone():
    clf, lat = Fixed("classifier", "block", 0.9), Fixed("latent", "allow", 0.01)
    assert Guard([clf, lat]).check(Exchange.from_prompt("x")).decision == "block"
    assert lat.calls == 0  # plain early stop
    # a text-only backend has no latent ring: the step is inert and the classifier blocks
    g = Guard([Fixed("classifier", "block", 0.9)], second_opinions=[OPINION], unavailable=["latent"])
    v = g.check(Exchange.from_prompt("x"))
    assert v.decision == "block" and v.stopped_at == "classifier"


def test_a_rewrite_is_overruled_like_a_block_and_other_rings_keep_their_say():
    clf = Fixed("classifier", "rewrite", 0.8, rewrite="Here is some support ...")
    lat, kw = Fixed("latent", "allow", 0.01), Fixed("keyword", "block", 0.7)
    v = Guard([clf, lat], second_opinions=[OPINION]).check(Exchange.from_prompt("x"))
    assert v.decision == "allow" and v.rewrite is None
    v = Guard([clf, lat, kw], second_opinions=[OPINION]).check(Exchange.from_prompt("x"))
    assert v.decision == "block" and v.stopped_at == "keyword"  # not overruled: no step names it


def test_check_many_applies_the_same_cascade_as_check():
    clf = Fixed("classifier", "block", 0.9)
    g_low = Guard([clf, Fixed("latent", "allow", 0.05)], second_opinions=[OPINION])
    g_mid = Guard([clf, Fixed("latent", "allow", 0.5)], second_opinions=[OPINION])
    exs = [Exchange.from_prompt("a"), Exchange.from_prompt("b")]
    assert [v.decision for v in g_low.check_many(exs)] == ["allow", "allow"]
    assert [v.decision for v in g_mid.check_many(exs)] == ["block", "block"]
    assert g_low.check_many(exs)[0].decision == g_low.check(Exchange.from_prompt("a")).decision


def test_an_overruled_score_adds_no_conversation_risk():
    conv = ConversationRing(decay=0.5, floor=0.1, escalate_at=1.0)
    g = Guard([Fixed("classifier", "block", 0.95), Fixed("latent", "allow", 0.05), conv], second_opinions=[OPINION])
    ex = Exchange.from_prompt("x")
    g.check(ex)
    assert ex.turn_scores == {"latent": 0.05}


def test_the_band_edge_is_the_latent_score_at_the_band_fpr_out_of_fold_and_never_above_the_threshold():
    from layerguard.guard.latent_fit import _band

    class TS:
        y = [0] * 100 + [1] * 10

    benign = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    harmful = [0.1, 0.5, 0.9, 0.95, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99]
    band = _band(benign + harmful, TS(), 0.2, threshold=0.97)  # type: ignore[arg-type]
    assert 0.79 < band["below"] <= 0.8 and band["benign_fpr"] == 0.2
    assert sum(s >= band["below"] for s in benign) == 20
    assert band["harmful_under"] == pytest.approx(0.2)
    assert _band(benign + harmful, TS(), 0.2, threshold=0.5)["below"] == 0.5  # type: ignore[arg-type]


def test_a_built_guard_with_a_classifier_writes_its_cascade_and_loads_it(smollm2, tmp_path):
    from layerguard.data.builtin import load_builtin
    from layerguard.guard.build import build_guard, load_guard
    from layerguard.guard.config import GuardConfig

    path = build_guard(
        smollm2,
        tmp_path / "g",
        harmful=load_builtin("harmful", "train")[:32],
        benign=load_builtin("harmless", "train")[:24] + load_builtin("borderline", "train")[:8],
        layers=[8, 14],
        augment=0,
        conversation=False,
        classifier=True,
        second_opinion_fpr=0.25,
    )
    cfg = GuardConfig.load(path)
    band = cfg.build["band"]
    assert cfg.second_opinions == [
        SecondOpinion(ring="classifier", by="latent", below=band["below"], note=cfg.second_opinions[0].note)
    ]
    assert band["benign_fpr"] == 0.25 and band["below"] <= cfg.build["threshold"]
    g = load_guard(path, smollm2)
    assert g.second_opinions == cfg.second_opinions and g.names == ["decode", "classifier", "latent"]
    # the loaded guard decides by the cascade: a classifier block with a latent score under the edge is allowed
    for s in load_builtin("harmless", "val")[:6]:
        v = g.check(Exchange.from_prompt(s.prompt))
        c, lat = (next(r for r in v.rings if r.ring == n) for n in ("classifier", "latent"))
        if "overruled" in c.details:
            assert lat.score < band["below"] and v.decision == lat.decision
        elif c.decision == "block":
            assert lat.score >= band["below"] and v.decision == "block"
