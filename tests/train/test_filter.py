"""Corpus filter: splitting, bad lines, streaming memory, resume after interruption, the real text rings."""

from __future__ import annotations

import base64
import gc
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from layerguard.data.builtin import load_builtin
from layerguard.data.samples import spread
from layerguard.errors import InvalidInputError
from layerguard.train.filter import (
    DocScore,
    FilterSummary,
    default_classifier,
    filter_corpus,
    load_scorer,
    state_path_for,
)

# --------------------------------------------------------------------------------------------
# A fast deterministic scorer for the mechanics (streaming, resume, bad lines)
# --------------------------------------------------------------------------------------------


class FakeScorer:
    """Flags texts containing 'BAD'; scores depend on the text only, never on the batch."""

    guard_id = "fake:1"
    threshold = 0.5
    rings = ["fake"]
    unavailable: list[str] = []

    def __init__(self, interrupt_on_call: int | None = None) -> None:
        self.calls = 0
        self.batches: list[int] = []
        self.interrupt_on_call = interrupt_on_call

    def score(self, texts: Sequence[str]) -> list[DocScore]:
        self.calls += 1
        if self.interrupt_on_call is not None and self.calls == self.interrupt_on_call:
            raise KeyboardInterrupt
        self.batches.append(len(texts))
        out = []
        for t in texts:
            s = 0.9 if "BAD" in t else (len(t) % 7) / 20
            out.append(DocScore(s, "S1_violent_crimes" if s > 0.5 else "benign", {"fake": s}))
        return out


def _write(path: Path, lines: Sequence[bytes | str | dict[str, Any]]) -> Path:
    with path.open("wb") as fh:
        for line in lines:
            if isinstance(line, dict):
                fh.write(json.dumps(line).encode() + b"\n")
            elif isinstance(line, str):
                fh.write(line.encode() + b"\n")
            else:
                fh.write(line)
    return path


def _corpus(path: Path, n: int) -> Path:
    rows = [{"id": i, "text": f"doc {i} " + ("BAD thing" if i % 5 == 0 else "fine words " * (i % 9))} for i in range(n)]
    return _write(path, rows)


def _run(tmp: Path, inp: Path, tag: str, **kw: Any) -> tuple[FilterSummary, Path, Path]:
    kept, dropped = tmp / f"{tag}.kept.jsonl", tmp / f"{tag}.dropped.jsonl"
    kw.setdefault("scorer", FakeScorer())
    return filter_corpus(inp, kept, dropped, **kw), kept, dropped


# --------------------------------------------------------------------------------------------
# Splitting and output format
# --------------------------------------------------------------------------------------------


def test_kept_lines_are_byte_identical_and_dropped_records_keep_every_field(tmp_path: Path) -> None:
    odd_spacing = b'{ "text" :  "caf\xc3\xa9 \\u00e9 fine",   "id": 1 ,"nested": {"a": [1, 2]} }\r\n'
    lines: list[bytes | str | dict[str, Any]] = [
        odd_spacing,
        {"id": 2, "text": "BAD request", "meta": {"x": 1}, "layerguard": "old"},
        "",
        {"id": 3, "text": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "BAD reply"}]},
        b'{"id": 4, "text": "last line without newline"}',
    ]
    inp = _write(tmp_path / "in.jsonl", lines)
    summary, kept, dropped = _run(tmp_path, inp, "a", summary_path=tmp_path / "s.json")

    assert kept.read_bytes() == odd_spacing + b'{"id": 4, "text": "last line without newline"}\n'
    rows = [json.loads(line) for line in dropped.read_text().splitlines()]
    assert [r["id"] for r in rows] == [2, 3]
    assert rows[0]["meta"] == {"x": 1} and rows[0]["text"] == "BAD request"
    lg = rows[0]["layerguard"]  # replaces the record's own 'layerguard' field
    assert lg == {
        "score": 0.9,
        "threshold": 0.5,
        "category": "S1_violent_crimes",
        "rings": {"fake": 0.9},
        "flagged_by": ["classifier"],
        "line": 2,
    }
    assert rows[1]["layerguard"]["line"] == 4  # messages lists are scored as their joined contents
    assert (summary.lines, summary.blank_lines, summary.documents, summary.kept, summary.dropped) == (5, 1, 4, 2, 2)
    assert summary.categories == {
        "S1_violent_crimes": {"seen": 2, "kept": 0, "dropped": 2},
        "benign": {"seen": 2, "kept": 2, "dropped": 0},
    }
    assert summary.complete and summary.dropped_by == {"classifier": 2}
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["documents"] == 4 and on_disk["drop_rate"] == 0.5 and on_disk["guard"] == "fake:1"
    assert sum(on_disk["histogram"]["counts"]) == 4 and on_disk["quantiles"]["max"] == 0.91
    assert "docs_per_s" in on_disk and on_disk["threshold"] == 0.5


def test_threshold_overrides_the_scorers(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 50)
    loose, _, _ = _run(tmp_path, inp, "loose", threshold=0.95)
    strict, _, _ = _run(tmp_path, inp, "strict", threshold=0.0)
    assert loose.dropped == 0 and strict.dropped == 50
    assert loose.threshold == 0.95


def test_summary_table_names_categories_and_totals(tmp_path: Path) -> None:
    summary, _, _ = _run(tmp_path, _corpus(tmp_path / "in.jsonl", 20), "t")
    table = summary.table()
    assert "S1_violent_crimes" in table and "total" in table and "docs/s" in table
    assert f"{summary.documents}" in table.splitlines()[-2]


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

BAD_LINES: list[bytes | str | dict[str, Any]] = [
    {"text": "fine one"},
    "{not json",
    "[1, 2]",
    b'{"text": "\xff\xfe"}\n',
    {"prompt": "wrong field", "id": 7},
    {"text": 42},
    {"text": "BAD two"},
]


def test_bad_lines_are_skipped_counted_and_written_to_dropped(tmp_path: Path) -> None:
    logs: list[str] = []
    inp = _write(tmp_path / "in.jsonl", BAD_LINES)
    summary, kept, dropped = _run(tmp_path, inp, "s", on_bad_line="skip", log=logs.append)
    assert summary.bad_lines == 5 and summary.documents == 2
    errors = {e["line"]: e["error"] for e in summary.bad_line_examples}
    assert set(errors) == {2, 3, 4, 5, 6}
    assert "not valid JSON" in errors[2] and "not a JSON object" in errors[3] and "UTF-8" in errors[4]
    assert errors[5] == "no field 'text' (this line has: 'prompt', 'id')"
    assert "must be a string" in errors[6]
    assert kept.read_text() == '{"text": "fine one"}\n'
    rows = [json.loads(line) for line in dropped.read_text().splitlines()]
    bad = [r["layerguard"] for r in rows if r["layerguard"].get("bad_line")]
    assert [b["line"] for b in bad] == [2, 3, 4, 5, 6]
    assert bad[0]["raw"] == "{not json"
    assert len(rows) == 6  # every non-blank input line is in exactly one output
    assert sum("line 5" in m for m in logs) == 1


def test_bad_line_fails_with_its_number_and_skip_resumes_after_it(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", BAD_LINES)
    kept, dropped = tmp_path / "k.jsonl", tmp_path / "d.jsonl"
    with pytest.raises(InvalidInputError) as err:
        filter_corpus(inp, kept, dropped, scorer=FakeScorer(), on_bad_line="fail")
    assert err.value.message.endswith("in.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes "
                                      "at column 2)")  # fmt: skip
    assert "--on-bad-line skip" in (err.value.hint or "")
    assert kept.read_text() == '{"text": "fine one"}\n'  # the line before the bad one is committed
    summary = filter_corpus(inp, kept, dropped, scorer=FakeScorer(), on_bad_line="skip")
    ref, ref_kept, ref_dropped = _run(tmp_path, inp, "ref", on_bad_line="skip")
    assert kept.read_bytes() == ref_kept.read_bytes() and dropped.read_bytes() == ref_dropped.read_bytes()
    assert (summary.documents, summary.bad_lines, summary.runs) == (ref.documents, ref.bad_lines, 2)


def test_missing_text_field_names_the_line_and_its_fields(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", [{"text": "a"}, {"text": "b"}, {"body": "c", "id": 3}])
    with pytest.raises(InvalidInputError) as err:
        _run(tmp_path, inp, "m")
    assert ":3: no field 'text' (this line has: 'body', 'id')" in err.value.message
    assert "--text-field" in (err.value.hint or "")


def test_user_mistakes_are_clear_errors(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 3)
    k, d = tmp_path / "k.jsonl", tmp_path / "d.jsonl"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input_path": tmp_path / "nope.jsonl"}, "does not exist"),
        ({"input_path": tmp_path}, "not a regular file"),
        ({"kept_path": inp}, "--kept"),
        ({"dropped_path": inp}, "--dropped"),
        ({"dropped_path": k}, "same file"),
        ({"summary_path": inp}, "--summary"),
        ({"threshold": 1.5}, "threshold must be in [0, 1]"),
        ({"batch_size": 0}, "batch_size"),
        ({"on_bad_line": "ignore"}, "on_bad_line"),
    ]
    for override, expected in cases:
        kw: dict[str, Any] = {"input_path": inp, "kept_path": k, "dropped_path": d, "scorer": FakeScorer()}
        kw.update(override)
        with pytest.raises(InvalidInputError) as err:
            filter_corpus(**kw)
        assert expected in err.value.message, (override, err.value.message)
    assert not k.exists() and not d.exists()


# --------------------------------------------------------------------------------------------
# Resume
# --------------------------------------------------------------------------------------------


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    inp = _write(
        tmp_path / "in.jsonl", [*BAD_LINES[:3], *[{"id": i, "text": f"t{i} BAD" * (i % 3)} for i in range(97)]]
    )
    ref, ref_kept, ref_dropped = _run(tmp_path, inp, "ref", batch_size=8, on_bad_line="skip")
    kept, dropped = tmp_path / "k.jsonl", tmp_path / "d.jsonl"
    with pytest.raises(KeyboardInterrupt):
        filter_corpus(inp, kept, dropped, scorer=FakeScorer(interrupt_on_call=5), batch_size=8, on_bad_line="skip")
    state = json.loads(state_path_for(kept).read_text())
    assert state["summary"]["lines"] == 4 * 8 and not state["summary"]["complete"]
    assert state["summary"]["documents"] == 4 * 8 - 2  # two of them were bad lines
    with kept.open("ab") as fh:  # a crash in the middle of writing leaves bytes past the commit
        fh.write(b'{"half": ')
    scorer = FakeScorer()
    summary = filter_corpus(inp, kept, dropped, scorer=scorer, batch_size=8, on_bad_line="skip")
    assert kept.read_bytes() == ref_kept.read_bytes()
    assert dropped.read_bytes() == ref_dropped.read_bytes()
    assert sum(scorer.batches) == ref.documents - 30  # only the rest was scored
    mine, theirs = summary.to_dict(), ref.to_dict()
    for k in ("documents", "kept", "dropped", "bad_lines", "lines", "categories", "histogram", "quantiles"):
        assert mine[k] == theirs[k], k
    assert summary.runs == 2 and summary.complete


def test_completed_run_is_not_redone_and_no_resume_starts_over(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 30)
    first, kept, dropped = _run(tmp_path, inp, "c")
    scorer = FakeScorer()
    again = filter_corpus(inp, kept, dropped, scorer=scorer)
    assert scorer.calls == 0 and again.documents == first.documents == 30
    redo = filter_corpus(inp, kept, dropped, scorer=FakeScorer(), resume=False, threshold=0.99)
    assert redo.dropped == 0 and redo.runs == 1 and kept.read_bytes() == inp.read_bytes()


def test_refuses_to_resume_on_a_changed_input_or_settings(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 40)
    kept, dropped = tmp_path / "k.jsonl", tmp_path / "d.jsonl"
    with pytest.raises(KeyboardInterrupt):
        filter_corpus(inp, kept, dropped, scorer=FakeScorer(interrupt_on_call=2), batch_size=4)

    def attempt(**kw: Any) -> str:
        args: dict[str, Any] = {"scorer": FakeScorer(), "batch_size": 4}
        args.update(kw)
        with pytest.raises(InvalidInputError) as err:
            filter_corpus(inp, kept, dropped, **args)
        return err.value.message

    assert "--batch-size" in attempt(batch_size=8)
    assert "--text-field" in attempt(text_field="body")
    assert "threshold" in attempt(threshold=0.7)
    original = inp.read_bytes()
    inp.write_bytes(original.replace(b"doc 1 ", b"doc X "))  # same size, new content
    assert "changed since the interrupted run" in attempt()
    inp.write_bytes(original + b'{"text": "appended"}\n')
    assert "size" in attempt()


def test_refuses_to_resume_with_another_guard_or_a_deleted_output(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 40)
    kept, dropped = tmp_path / "k.jsonl", tmp_path / "d.jsonl"
    with pytest.raises(KeyboardInterrupt):
        filter_corpus(inp, kept, dropped, scorer=FakeScorer(interrupt_on_call=3), batch_size=4)
    other = FakeScorer()
    other.guard_id = "fake:2"
    with pytest.raises(InvalidInputError) as err:
        filter_corpus(inp, kept, dropped, scorer=other, batch_size=4)
    assert "fake:1" in err.value.message and "fake:2" in err.value.message
    with pytest.raises(InvalidInputError) as err:  # checked before any model would be loaded
        filter_corpus(inp, kept, dropped, guard=tmp_path / "no-guard.yaml", batch_size=4)
    assert "does not exist" in err.value.message
    kept.unlink()
    with pytest.raises(InvalidInputError) as err:
        filter_corpus(inp, kept, dropped, scorer=FakeScorer(), batch_size=4)
    assert "missing or shorter" in err.value.message and "--no-resume" in (err.value.hint or "")


def test_a_guard_without_classifier_is_refused(tmp_path: Path) -> None:
    cfg = {"model": {"name": "none", "weights_sha256": "0"}, "rings": [{"name": "decode"}, {"name": "keyword"}]}
    (tmp_path / "guard.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InvalidInputError) as err:
        load_scorer(tmp_path / "guard.yaml")
    assert "no classifier ring" in err.value.message


def test_refuses_to_overwrite_outputs_without_state(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 5)
    kept = tmp_path / "k.jsonl"
    kept.write_text("precious\n")
    with pytest.raises(InvalidInputError) as err:
        filter_corpus(inp, kept, tmp_path / "d.jsonl", scorer=FakeScorer())
    assert "--no-resume" in (err.value.hint or "") and kept.read_text() == "precious\n"


# --------------------------------------------------------------------------------------------
# Constant memory
# --------------------------------------------------------------------------------------------


def _peak_bytes(tmp: Path, n: int) -> int:
    inp = _write(tmp / f"mem{n}.jsonl", [{"id": i, "text": f"document {i} " + "lorem ipsum " * 15} for i in range(n)])
    gc.collect()
    tracemalloc.start()
    try:
        filter_corpus(inp, tmp / f"k{n}.jsonl", tmp / f"d{n}.jsonl", scorer=FakeScorer(), batch_size=64)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    small, large = _peak_bytes(tmp_path, 1_000), _peak_bytes(tmp_path, 10_000)
    assert (tmp_path / "mem10000.jsonl").stat().st_size > 2_000_000
    # 10x the input (2.2 MB) must not raise the traced peak: it is one batch, not the file
    assert large < 1.2 * small + 100_000, (small, large)


# --------------------------------------------------------------------------------------------
# The real text rings (MiniLM classifier + decode ring)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding the built-in classifier (trained here once, on the full builtin train sets)."""
    cache = tmp_path_factory.mktemp("lg-cache")
    logs: list[str] = []
    default_classifier(cache, log=logs.append)
    assert any("training the built-in classifier" in m for m in logs)
    return cache


@pytest.fixture(scope="module")
def small_guard(tmp_path_factory: pytest.TempPathFactory, default_cache: Path) -> Path:
    """A text-only guard.yaml: decode + the built-in classifier (every builtin training prompt) + keyword;
    a latent ring listed. A classifier fitted on a small subset of the matched sets is too weak to
    separate a val sample at its calibrated threshold."""
    out = tmp_path_factory.mktemp("text-guard")
    model, _ = default_classifier(default_cache)
    model.save(out / "classifier")
    cfg = {
        "layerguard_guard": 1,
        "model": {"name": "none", "weights_sha256": "0" * 64},
        "rings": [
            {"name": "decode"},
            {"name": "classifier", "params": {"path": "classifier"}},
            {"name": "keyword", "params": {"terms": ["zyzzyva"]}},
            {"name": "latent", "params": {"path": "latent"}},
        ],
    }
    (out / "guard.yaml").write_text(yaml.safe_dump(cfg))
    return out / "guard.yaml"


def _docs() -> list[str]:
    harmful = load_builtin("harmful", "val")
    harmless = load_builtin("harmless", "val")
    filler = " ".join(f"Paragraph {i} describes the weather, the harvest and the village fair." for i in range(16))
    return [
        harmful[1].prompt,  # repeated below: embedded once, scored for both
        *[s.prompt for s in harmful[:6]],
        *[s.prompt for s in harmless[:6]],
        "Decode this and do it: " + base64.b64encode(harmful[20].prompt.encode()).decode(),
        filler + " " + harmful[40].prompt + " " + filler,  # long: windows, max over them
        "",
        "   ",
        "please tell me about the zyzzyva beetle",  # keyword veto
    ]


def test_batched_scores_equal_the_guard_one_document_at_a_time(small_guard: Path) -> None:
    from layerguard.guard.build import load_guard
    from layerguard.guard.types import Exchange

    scorer = load_scorer(small_guard)
    assert scorer.unavailable == ["latent"] and scorer.rings == ["decode", "classifier", "keyword"]
    assert scorer.guard_id.startswith(f"{small_guard}#sha256:")
    guard = load_guard(small_guard, text_only=True)
    guard.stop_early = False
    docs = _docs()
    batched = scorer.score(docs)
    for text, doc in zip(docs, batched, strict=True):
        v = guard.check(Exchange.from_prompt(text))
        single = {r.ring: r for r in v.rings}
        assert doc.rings.keys() == single.keys()
        for name, s in doc.rings.items():
            assert s == pytest.approx(single[name].score, abs=1e-4), (name, text[:60])
        if text.strip():
            assert doc.category == single["classifier"].category
        assert (v.decision == "block") == (doc.score >= scorer.threshold or bool(doc.vetoes))
    assert batched[-1].vetoes == ("keyword",) and batched[-2].score == 0.0 and batched[-3].category is None
    assert batched[13].rings["decode"] > 0.6  # base64 was decoded, so the classifier read the plaintext
    assert batched[13].score > 0.5 and batched[14].score > 0.5
    assert batched[0] == batched[2]


def test_filter_with_a_guard_file_drops_harmful_and_keeps_harmless(small_guard: Path, tmp_path: Path) -> None:
    harmful, harmless = spread(load_builtin("harmful", "val"), 30), spread(load_builtin("harmless", "val"), 30)
    rows = [{"id": s.id, "body": s.prompt, "label": s.label} for pair in zip(harmful, harmless) for s in pair]
    inp = _write(tmp_path / "in.jsonl", rows)
    summary = filter_corpus(
        inp, tmp_path / "k.jsonl", tmp_path / "d.jsonl", guard=small_guard, text_field="body", batch_size=16
    )
    dropped = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    recall = sum(r["label"] == "harmful" for r in dropped) / 30
    fpr = sum(r["label"] == "harmless" for r in dropped) / 30
    # the built-in classifier at its calibrated threshold separates the two sets (quality: the benchmark)
    assert recall >= fpr + 0.2, (recall, fpr)
    assert summary.unavailable == ["latent"] and summary.documents == 60
    assert all(r["layerguard"]["rings"].keys() == {"decode", "classifier", "keyword"} for r in dropped)


def test_default_classifier_is_cached(default_cache: Path) -> None:
    logs: list[str] = []
    model, key = default_classifier(default_cache, log=logs.append)
    assert logs == [] and len(key) == 64  # loaded, not retrained
    assert model.stats["n_harmful_samples"] == len(load_builtin("harmful", "train"))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerguard.cli", "filter", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    inp = _corpus(tmp_path / "in.jsonl", 3)
    for args, expected in (
        ([str(tmp_path / "missing.jsonl"), "--kept", "k", "--dropped", "d"], "does not exist"),
        ([str(inp), "--kept", str(inp), "--dropped", "d"], "is the input file"),
        ([str(inp), "--kept", "k", "--dropped", "d", "--on-bad-line", "maybe"], "skip or fail"),
    ):
        r = _cli(*args)
        assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_cli_killed_mid_run_resumes_to_the_same_outputs(default_cache: Path, tmp_path: Path) -> None:
    import torch

    prompts = [s.prompt for name in ("harmful", "harmless", "borderline") for s in load_builtin(name, "val")]
    rows = [{"id": i, "text": p} for i, p in enumerate(prompts)]
    inp = _write(tmp_path / "in.jsonl", [*rows[:50], "{broken", *rows[50:]])
    threads = torch.get_num_threads()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "LAYERGUARD_PROGRESS": "0"}
    ref = filter_corpus(
        inp,
        tmp_path / "ref.k.jsonl",
        tmp_path / "ref.d.jsonl",
        cache_dir=default_cache,
        batch_size=8,
        on_bad_line="skip",
        summary_path=tmp_path / "ref.json",
    )
    kept, dropped = tmp_path / "k.jsonl", tmp_path / "d.jsonl"
    args = [str(inp), "--kept", str(kept), "--dropped", str(dropped), "--batch-size", "8"]
    args += ["--cache-dir", str(default_cache), "--on-bad-line", "skip", "--summary", str(tmp_path / "s.json")]
    with (tmp_path / "killed.stderr").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "layerguard.cli", "filter", *args], env=env, stderr=err)
    state_file, deadline = state_path_for(kept), time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state_file.read_text())["summary"]["documents"] >= 40:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(state_file.read_text())["summary"]
    assert 40 <= done["documents"] < ref.documents and not done["complete"]

    r = _cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "total" in r.stdout
    assert kept.read_bytes() == (tmp_path / "ref.k.jsonl").read_bytes()
    assert dropped.read_bytes() == (tmp_path / "ref.d.jsonl").read_bytes()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["documents"], summary["dropped"], summary["bad_lines"], summary["runs"]) == (
        ref.documents,
        ref.dropped,
        1,
        2,
    )
    assert summary["bad_line_examples"] == [{"line": 51, "error": "not valid JSON (Expecting property name enclosed "
                                                                  "in double quotes at column 2)"}]  # fmt: skip
