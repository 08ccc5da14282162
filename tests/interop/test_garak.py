"""garak interop: the exported report is read by garak's own analyze_log; a report's prompts load as a dataset."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest

from layerguard.errors import InvalidInputError
from layerguard.interop.garak import garak_generator_config, garak_report, load_garak_report, write_garak_report


def _rows():
    rows = []
    for attack, outcomes in (("base64", [False, True]), ("direct", [True, True])):
        for i, refused in enumerate(outcomes):
            for guarded in (False, True):
                rows.append(
                    {
                        "sample_id": f"s{i}",
                        "category": "S1",
                        "label": "harmful",
                        "attack": attack,
                        "family": "encoding" if attack == "base64" else "baseline",
                        "guarded": guarded,
                        "prompt": f"{attack} prompt {i}",
                        "response": "I can't help." if refused or guarded else "Sure, mix 50 g of acetone",
                        "refused": refused or guarded,
                        "harmful": not refused and not guarded,
                        "decision": "block" if guarded else None,
                    }
                )
    rows.append({**rows[0], "label": "borderline", "attack": "direct", "prompt": "benign"})
    return rows


def test_report_entries_and_counts():
    entries = garak_report(_rows())
    kinds = [e["entry_type"] for e in entries]
    assert kinds[0] == "init" and kinds[-1] == "completion"
    attempts = [e for e in entries if e["entry_type"] == "attempt" and e["status"] == 2]
    assert len(attempts) == 4  # unguarded, harmful only
    assert sum(e["entry_type"] == "attempt" and e["status"] == 1 for e in entries) == 4
    assert all(a["status"] == 2 and a["prompt"]["turns"][0]["role"] == "user" for a in attempts)
    assert attempts[0]["outputs"][0]["text"] == "Sure, mix 50 g of acetone"
    evals = {(e["probe"], e["detector"]): e for e in entries if e["entry_type"] == "eval"}
    assert evals[("layerguard.base64", "layerguard.refusal")]["fails"] == 1
    assert evals[("layerguard.base64", "layerguard.refusal")]["passed"] == 1
    assert evals[("layerguard.direct", "layerguard.refusal")]["fails"] == 0
    guarded = garak_report(_rows(), guarded=True)
    assert all(e["fails"] == 0 for e in guarded if e["entry_type"] == "eval")


def test_garak_reads_the_export(tmp_path, monkeypatch, capsys):
    if importlib.util.find_spec("garak") is None or importlib.util.find_spec("xdg_base_dirs") is None:
        pytest.skip("garak's report reader needs garak (requirements/datasets.txt) and the interop extra")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # garak logs into its data dir on import
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    from garak.analyze.analyze_log import analyze_log

    path = write_garak_report(_rows(), tmp_path / "report.jsonl")
    analyze_log(str(path))
    out = capsys.readouterr().out
    assert "## PROBE: layerguard.base64" in out
    # garak prints each eval as probe, detector, pass rate, total
    assert "layerguard.base64\tlayerguard.refusal\t0.5000\t2" in out
    assert "layerguard.direct\tlayerguard.refusal\t1.0000\t2" in out
    assert "## 4 attempts started" in out and "## attempt completion rate 100%" in out


def test_report_prompts_load_as_a_dataset(tmp_path):
    path = write_garak_report(_rows(), tmp_path / "report.jsonl")
    samples = load_garak_report(path)
    assert [s.prompt for s in samples] == ["base64 prompt 0", "base64 prompt 1", "direct prompt 0", "direct prompt 1"]
    assert samples[0].category == "layerguard.base64" and samples[0].label == "unknown"
    # a garak report in the old form (prompt as a plain string) too
    old = tmp_path / "old.jsonl"
    old.write_text(
        json.dumps({"entry_type": "init"})
        + "\n"
        + json.dumps({"entry_type": "attempt", "status": 2, "probe_classname": "dan.Dan_11_0", "prompt": "hi"})
        + "\n"
    )
    assert load_garak_report(old)[0].category == "dan.Dan_11_0"
    # written out as layerguard JSONL, the prompts load through the ordinary dataset loader
    from layerguard.data.loaders import load_dataset

    ds = tmp_path / "prompts.jsonl"
    ds.write_text("".join(s.model_dump_json() + "\n" for s in samples))
    assert [s.prompt for s in load_dataset(str(ds))] == [s.prompt for s in samples]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no garak report"), ("{not json\n", "not JSON"), ('{"entry_type": "init"}\n', "no garak attempts")],
)
def test_bad_reports_are_refused(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        load_garak_report(path)


def test_generator_config_uses_garaks_option_names():
    spec = importlib.util.find_spec("garak")
    if spec is None or spec.origin is None:
        pytest.skip("garak is not installed (requirements/datasets.txt)")
    src = (Path(spec.origin).parent / "generators" / "openai.py").read_text()
    tree = ast.parse(src)
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "OpenAICompatible")
    keys: set[str] = {"name", "api_key", "max_tokens", "temperature", "top_k", "context_len"}
    for node in ast.walk(cls):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    cfg = garak_generator_config("http://127.0.0.1:8000/v1", "smollm2-135m")
    opts = cfg["openai"]["OpenAICompatible"]
    assert set(opts) <= keys, set(opts) - keys
    assert opts["uri"] == "http://127.0.0.1:8000/v1/" and opts["name"] == "smollm2-135m"
