"""The service and the red-team runner are adapters over one GuardedModel: same decisions, same scores.

The same prompts go through ``layerguard serve``'s endpoints over real HTTP (the official
``openai`` client, greedy decoding) and through the runner (batched generation, one batched
teacher-forced pass for the guard's states). Input ring scores agree within float tolerance
of the different batching; decisions agree exactly, including answers halted by the output
monitor (the runner decides that on the finished answer, the service while streaming).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.guard.guarded import GuardedModel
from layerguard.redteam.runner import RunConfig, Runner
from tests.service.helpers import LiveServer, make_config, openai_client

MAX_TOKENS = 16


@pytest.fixture(scope="module")
def served(smollm2, tiny_guard: Path, tmp_path_factory: pytest.TempPathFactory):
    from layerguard.service.app import create_app
    from layerguard.service.storage import Store

    guarded = GuardedModel.load(tiny_guard, smollm2)
    store = Store(tmp_path_factory.mktemp("eq") / "service.db")
    server = LiveServer(create_app(guarded.guard, guarded.backend, store, make_config()))
    yield server
    server.stop()
    store.close()


def test_service_and_runner_give_the_same_decisions_and_ring_scores(served, smollm2, tiny_guard, tmp_path):
    samples = load_builtin("harmful", "val")[:3] + load_builtin("harmless", "val")[:3]
    guarded = GuardedModel.load(tiny_guard, smollm2)
    cfg = RunConfig(attacks=["direct"], max_new_tokens=MAX_TOKENS, batch_size=3, live_turns=False)
    rows = Runner(smollm2, guarded, "tiny", tmp_path / "run", cfg).run(samples, [])
    by_id = {r["sample_id"]: r for r in rows if r["guarded"]}
    client = openai_client(served)
    compared = 0
    for s in samples:
        resp = client.chat.completions.create(
            model=smollm2.name,
            messages=[{"role": "user", "content": s.prompt}],
            max_tokens=MAX_TOKENS,
            temperature=0,
        )
        ext = resp.model_extra["layerguard"]
        served_decision = "block" if ext.get("halted_by") else ext["verdict"]["decision"]
        row = by_id[s.id]
        assert row["decision"] == served_decision, (s.id, row["rings"], ext)
        for v in ext["verdict"]["rings"]:
            assert row["rings"][v["ring"]] == pytest.approx(v["score"], abs=2e-3), (s.id, v["ring"])
            compared += 1
    assert compared >= 2 * len(samples)  # at least the latent and one more ring per prompt
