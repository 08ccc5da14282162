"""The corpus filter on Ray Data (real cluster, real built-in classifier): same outputs as the local filter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import spread
from layerguard.distributed.filter import filter_corpus_ray
from layerguard.errors import InvalidInputError
from layerguard.train.filter import filter_corpus

# a Ray cluster and model replicas: about 7 minutes for the three files; see tests/distributed/conftest.py

SHARD_LINES = 9


def _concat(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.jsonl")))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """40 documents (harmful and harmless val prompts, some in message form), blank and bad lines."""
    harmful, harmless = spread(load_builtin("harmful", "val"), 20), spread(load_builtin("harmless", "val"), 20)
    lines: list[str] = []
    for i, (h, b) in enumerate(zip(harmful, harmless, strict=True)):
        lines.append(json.dumps({"id": h.id, "text": h.prompt, "n": i}))
        lines.append(json.dumps({"id": b.id, "text": [{"role": "user", "content": b.prompt}]}, ensure_ascii=False))
        if i % 7 == 3:
            lines.append("")  # blank: counted, not written
        if i % 11 == 5:
            lines.append("{not json")  # bad: to the dropped file under skip
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def local(corpus, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("local-filter")
    s = filter_corpus(corpus, out / "kept.jsonl", out / "dropped.jsonl", on_bad_line="skip", batch_size=16)
    return out, s.to_dict()


def _same_dropped(ray_bytes: bytes, local_bytes: bytes) -> None:
    """Dropped records equal, scores to 1e-5: the encoder pads each batch, and Ray cuts batches elsewhere."""
    ray_rows = [json.loads(x) for x in ray_bytes.splitlines()]
    local_rows = [json.loads(x) for x in local_bytes.splitlines()]
    assert len(ray_rows) == len(local_rows)
    for a, b in zip(ray_rows, local_rows, strict=True):
        ga, gb = a.pop("layerguard"), b.pop("layerguard")
        assert a == b
        assert ga.get("score", 0) == pytest.approx(gb.get("score", 0), abs=1e-5)
        assert ga.get("rings", {}) == pytest.approx(gb.get("rings", {}), abs=1e-5)
        for k in ("score", "rings"):
            ga.pop(k, None), gb.pop(k, None)
        assert ga == gb


def _same_counts(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in ("lines", "blank_lines", "bad_lines", "documents", "kept", "dropped", "categories", "dropped_by"):
        assert a[key] == b[key], key
    # the score histogram may differ by a document at a bin edge (scores agree to 1e-5, not bit for bit)
    assert sum(abs(x - y) for x, y in zip(a["histogram"]["counts"], b["histogram"]["counts"], strict=True)) <= 2
    assert a["threshold"] == b["threshold"] and a["guard"] == b["guard"]


def test_ray_filter_equals_local_and_resumes_per_shard(ray_cluster, corpus, local, tmp_path):
    local_out, local_summary = local
    out = tmp_path / "ray"
    logs: list[str] = []
    summary = filter_corpus_ray(
        corpus, out, on_bad_line="skip", batch_size=16, shard_lines=SHARD_LINES, actors=2, log=logs.append
    ).to_dict()
    shards = sorted((out / "shards").glob("*.json"))
    assert len(shards) == -(-local_summary["lines"] // SHARD_LINES) > 1
    assert _concat(out / "kept") == (local_out / "kept.jsonl").read_bytes()
    _same_dropped(_concat(out / "dropped"), (local_out / "dropped.jsonl").read_bytes())
    _same_counts(summary, local_summary)
    assert 0 < summary["dropped"] < summary["documents"]
    assert json.loads((out / "summary.json").read_text())["categories"] == local_summary["categories"]

    # a run that stopped during shard 2: its marker and outputs are missing; only that shard is redone
    victim = shards[1]
    victim.unlink()
    for sub in ("kept", "dropped"):
        (out / sub / f"{victim.stem}.jsonl").unlink()
    logs.clear()
    again = filter_corpus_ray(
        corpus, out, on_bad_line="skip", batch_size=16, shard_lines=SHARD_LINES, actors=1, log=logs.append
    ).to_dict()
    assert any(f"{len(shards) - 1} shard(s) done earlier, 1 to filter" in m for m in logs), logs
    assert _concat(out / "kept") == (local_out / "kept.jsonl").read_bytes()
    _same_dropped(_concat(out / "dropped"), (local_out / "dropped.jsonl").read_bytes())
    _same_counts(again, local_summary)

    # other settings refuse to resume instead of mixing two runs' shards
    with pytest.raises(InvalidInputError, match="cannot resume"):
        filter_corpus_ray(corpus, out, on_bad_line="skip", threshold=0.01, shard_lines=SHARD_LINES)


def test_ray_filter_reads_parquet(ray_cluster, corpus, local, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    local_out, local_summary = local
    rows = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip() and line != "{not json"]
    rows = [{"id": r["id"], "text": r["text"] if isinstance(r["text"], str) else r["text"][0]["content"]} for r in rows]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "corpus.parquet")
    summary = filter_corpus_ray(tmp_path / "corpus.parquet", tmp_path / "out", batch_size=16, actors=1).to_dict()
    kept_ids = [json.loads(line)["id"] for line in _concat(tmp_path / "out" / "kept").splitlines()]
    local_kept = [json.loads(line)["id"] for line in (local_out / "kept.jsonl").read_text().splitlines()]
    assert kept_ids == local_kept
    assert summary["documents"] == local_summary["documents"] and summary["categories"] == local_summary["categories"]


def test_ray_filter_stops_at_a_bad_line_under_fail(ray_cluster, corpus, tmp_path):
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl:\d+: not valid JSON"):
        filter_corpus_ray(corpus, tmp_path / "out", shard_lines=SHARD_LINES, actors=1)
