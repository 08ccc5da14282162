"""layerguard and garak: results as a garak report, a garak report's prompts as a dataset, garak aimed at the service.

garak writes one ``report.jsonl`` per scan: an ``init`` entry, two ``attempt`` entries per
prompt (``status`` 1 when sent; ``status`` 2 once answered and judged, with
``detector_results``: detector name -> one score per output, 1 = the probe hit, i.e. the
attack succeeded), one ``eval`` entry per probe and
detector (``passed`` of ``total_evaluated``) and a ``completion`` entry. :func:`garak_report`
writes layerguard result rows in that form (garak 0.17 field names): each attack is a probe
``layerguard.<attack>``, each judge a detector ``layerguard.<judge>``. garak's own reader
(``python -m garak.analyze.analyze_log report.jsonl``) reads it.

:func:`load_garak_report` goes the other way: the prompts of any garak report (whatever
probes produced them) become layerguard samples, so layerguard can replay garak's probes
against a guarded model. :func:`garak_generator_config` is a ``--generator_option_file`` for
garak's ``openai.OpenAICompatible`` generator pointing at ``layerguard serve``.

garak itself is never imported here.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.version import __version__

REPORT_FORMAT = "0.17.1"
"""The garak release whose report fields these entries follow."""


def _message(text: str) -> dict[str, Any]:
    return {"text": text, "lang": "en", "data_path": None, "data_type": None, "data_checksum": None, "notes": {}}


def _conversation(turns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"turns": [{"role": role, "content": _message(text)} for role, text in turns], "notes": {}}


def _won(row: dict[str, Any], judge: str) -> bool:
    return (not row["refused"]) and (bool(row["harmful"]) if judge == "harm" else True)


def garak_report(
    rows: Sequence[dict[str, Any]], *, judges: Sequence[str] = ("refusal", "harm"), guarded: bool = False
) -> list[dict[str, Any]]:
    """Result rows of one guard setting as garak report entries.

    Args:
        rows: Rows of ``results.jsonl`` (the runner's cells); borderline-benign and live
            escalation rows are skipped, as are rows of the other guard setting.
        judges: Detectors to write: ``refusal`` (hit = not refused) and/or ``harm`` (hit =
            rubric-harmful and not refused).
        guarded: Export the guarded cells (True) or the unguarded ones.

    Returns:
        Entries in report order: init, attempts, evals (one per probe and detector), completion.
    """
    cells = [r for r in rows if bool(r.get("guarded")) == guarded and r.get("label") != "borderline"]
    cells = [r for r in cells if "refused_by_turn" not in r]
    run = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).isoformat()
    out: list[dict[str, Any]] = [
        {
            "entry_type": "init",
            "garak_version": REPORT_FORMAT,
            "start_time": now,
            "run": run,
            "written_by": f"layerguard {__version__}",
            "guarded": guarded,
        }
    ]
    for seq, r in enumerate(cells):
        prompt = str(r.get("prompt", ""))
        response = str(r.get("response", ""))
        prompt_conv = _conversation([("user", prompt)])
        attempt_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{seq}"))
        probe = f"layerguard.{r['attack']}"
        # garak logs an attempt twice: when sent (status 1) and once judged (status 2)
        out.append(
            {
                "entry_type": "attempt",
                "uuid": attempt_id,
                "seq": seq,
                "status": 1,
                "probe_classname": probe,
                "prompt": prompt_conv,
                "outputs": [],
                "detector_results": {},
            }
        )
        out.append(
            {
                "entry_type": "attempt",
                "uuid": attempt_id,
                "seq": seq,
                "status": 2,
                "probe_classname": probe,
                "probe_params": {"family": r.get("family")},
                "targets": [],
                "prompt": prompt_conv,
                "outputs": [_message(response)],
                "detector_results": {f"layerguard.{j}": [1.0 if _won(r, j) else 0.0] for j in judges},
                "notes": {
                    "sample_id": r.get("sample_id"),
                    "category": r.get("category"),
                    "decision": r.get("decision"),
                    "rings": r.get("rings", {}),
                },
                "goal": str(r.get("request", prompt))[:500],
                "conversations": [_conversation([("user", prompt), ("assistant", response)])],
                "reverse_translation_outputs": [],
                "intent": None,
            }
        )
    for attack in dict.fromkeys(r["attack"] for r in cells):
        sub = [r for r in cells if r["attack"] == attack]
        for j in judges:
            hits = sum(_won(r, j) for r in sub)
            out.append(
                {
                    "entry_type": "eval",
                    "probe": f"layerguard.{attack}",
                    "detector": f"layerguard.{j}",
                    "passed": len(sub) - hits,
                    "fails": hits,
                    "nones": 0,
                    "total_evaluated": len(sub),
                    "total_processed": len(sub),
                }
            )
    out.append({"entry_type": "completion", "end_time": dt.datetime.now(dt.UTC).isoformat(), "run": run})
    return out


def write_garak_report(rows: Sequence[dict[str, Any]], path: Path, **kwargs: Any) -> Path:
    """Write :func:`garak_report` entries as JSONL; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in garak_report(rows, **kwargs)), encoding="utf-8")
    return path


def _turn_text(turn: dict[str, Any]) -> str:
    content = turn.get("content")
    if isinstance(content, dict):
        return str(content.get("text") or "")
    return str(content or "")


def _prompt_text(prompt: Any) -> str:
    """The last user message of a garak prompt (a Conversation dict in 0.11+, a string before)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        users = [_turn_text(t) for t in prompt.get("turns", []) if t.get("role", "user") == "user"]
        return users[-1] if users else ""
    return ""


def load_garak_report(path: Path) -> list[Sample]:
    """The distinct prompts of a garak ``report.jsonl`` as layerguard samples (label ``unknown``).

    Each sample's category is the probe that produced it (``encoding.InjectBase64``) and its meta
    holds the probe, the attempt's goal and its uuid.

    Raises:
        InvalidInputError: the file is missing, not JSONL, or holds no attempts.
    """
    if not path.is_file():
        raise InvalidInputError(f"no garak report at {path}", hint="pass the report.jsonl garak wrote")
    samples: list[Sample] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidInputError(f"{path}:{n} is not JSON", hint="pass a garak report.jsonl") from None
        if not isinstance(entry, dict) or entry.get("entry_type") != "attempt" or entry.get("status") == 1:
            continue
        text = _prompt_text(entry.get("prompt")).strip()
        if not text or text in seen:
            continue
        seen.add(text)
        probe = str(entry.get("probe_classname", "garak"))
        samples.append(
            Sample(
                id=f"garak-report-{probe}-{entry.get('seq', len(samples))}",
                prompt=text,
                label="unknown",
                category=probe,
                source=f"garak-report:{path.name}",
                meta={"probe": probe, "goal": entry.get("goal"), "uuid": entry.get("uuid")},
            )
        )
    if not samples:
        raise InvalidInputError(f"{path} holds no garak attempts", hint="pass the report.jsonl of a garak scan")
    return samples


def garak_generator_config(base_url: str, model: str, *, api_key: str = "layerguard", **params: Any) -> dict[str, Any]:
    """A garak ``--generator_option_file`` aiming ``openai.OpenAICompatible`` at ``layerguard serve``.

    Usage: ``garak --target_type openai.OpenAICompatible --generator_option_file
    garak-generator.json --probes encoding`` (``name`` is the model, as ``--target_name`` sets it).

    Args:
        base_url: The service's OpenAI base URL, e.g. ``http://127.0.0.1:8000/v1``.
        model: The model name the service serves.
        api_key: The service's API key (any string when it has none).
        **params: Other generator options (``max_tokens``, ``temperature`` ...).
    """
    opts: dict[str, Any] = {
        "uri": base_url.rstrip("/") + "/",
        "name": model,
        "api_key": api_key,
        "temperature": 0.0,
        "max_tokens": 128,
        "stop": [],
        "suppressed_params": ["frequency_penalty", "presence_penalty", "n"],
        **params,
    }
    return {"openai": {"OpenAICompatible": opts}}
