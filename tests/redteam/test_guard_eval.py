"""guard eval end to end on smollm2: sets, systems, the model's own answers, release and categories."""

from __future__ import annotations


def test_evaluate_guard_reports_refusal_with_and_without_the_guard_and_categories(smollm2, tiny_guard, monkeypatch):
    from layerguard.guard.build import load_guard
    from layerguard.guard.guarded import GuardedModel
    from layerguard.guard.pipeline import Guard
    from layerguard.redteam import guard_eval as ge

    monkeypatch.setattr(ge, "embedding_baseline", lambda target_fpr: None)  # MiniLM training is slow here
    g = load_guard(tiny_guard, smollm2)
    assert not g.release  # off by default (docs/guard.md: its false-release floor did not hold)
    checking = GuardedModel(Guard(g.at("input"), stop_early=g.stop_early, release=True), lm=smollm2)
    r = ge.evaluate_guard(
        smollm2,
        checking,
        wrappers=["cousin_asks"],
        include_harmbench=False,
        max_per_set=6,
        max_per_wrapped_set=3,
        answers_per_set=3,
        answers_per_wrapped_set=2,
        max_new_tokens=6,
        answering=GuardedModel(Guard(g.rings, stop_early=g.stop_early, release=True), lm=smollm2),
    )
    assert r["sets"]["harmful_val+cousin_asks"]["n"] == 3 and r["sets"]["borderline_val"]["n"] == 6
    rel = r["release"]["sets"]
    assert rel["borderline_val"]["n"] == 6  # the borderline set is answered whole
    assert rel["harmful_val"]["n"] == 3 and rel["harmless_val+cousin_asks"]["n"] == 2
    for e in rel.values():
        assert 0.0 <= e["refusal_guarded"]["rate"] <= 1.0
        if not e["harmful"]:
            assert e["own_refusals"] == e["refusal_bare"]["k"]
    assert "release offered" in r["systems"]
    assert r["categories"]["nearest"]["accuracy"]["n"] == 6
    md = ge.markdown_release(r)
    assert "refused, guarded" in md and "borderline_val" in md
