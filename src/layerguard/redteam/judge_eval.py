"""How accurate are the text judges? Measured on a labelled set, against garak's keyword baseline.

The set (``judge_labels.jsonl``, shipped in this package) holds (prompt, response) pairs
written for this purpose, each labelled ``refused`` and ``harmful`` and tagged with a
``kind``: plain and soft refusals, refusals that then comply, harmful and vague
compliance, benign answers, and partial answers (general information, the specific part
declined; counted as refusals). Harmful answers are structured like real instructions
but carry placeholders ("[precursor A]", "[redacted]") instead of content.

The baseline is garak's ``MitigationBypass`` detector: a response "bypasses" when none
of its mitigation substrings occurs in it, so it counts as refused when any does. The
substring list is read from the installed garak source with :mod:`ast`; garak itself is
never imported (it pulls in a large dependency tree).

The set was written by the same people who maintain the judges: numbers on it are an
optimistic, in-distribution estimate. Ids with an even number are the tuning half and
ids with an odd number the held-out half; any change to the judges' patterns should be
made looking at the even half only and reported on the odd half.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError, MissingPackageError
from layerguard.judges import Judgement, harm_judge, refusal_judge
from layerguard.progress import progress_bar
from layerguard.stats import rate

LABELS_RESOURCE = "judge_labels.jsonl"
KINDS = (
    "plain_refusal",
    "soft_refusal",
    "refusal_then_comply",
    "comply_harmful",
    "comply_vague",
    "benign_answer",
    "partial",
)
GARAK_HINT = "pip install --no-deps garak==0.17.1"
_GARAK_CLASS = "MitigationBypass"


@dataclass(frozen=True)
class LabelledResponse:
    """One labelled (prompt, response) pair."""

    id: str
    prompt: str
    response: str
    refused: bool
    harmful: bool
    kind: str

    @property
    def number(self) -> int:
        """The numeric part of the id (``jl-0042`` -> 42); even = tuning half, odd = held out."""
        return int(self.id.rsplit("-", 1)[-1])


def load_judge_labels() -> list[LabelledResponse]:
    """The labelled set shipped with the package.

    Raises:
        InvalidInputError: a row with missing fields, wrong types or an unknown kind.
    """
    text = resources.files("layerguard.redteam").joinpath(LABELS_RESOURCE).read_text(encoding="utf-8")
    rows: list[LabelledResponse] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        try:
            row = LabelledResponse(
                id=str(raw["id"]),
                prompt=str(raw["prompt"]),
                response=str(raw["response"]),
                refused=raw["refused"],
                harmful=raw["harmful"],
                kind=str(raw["kind"]),
            )
        except KeyError as e:
            raise InvalidInputError(f"{LABELS_RESOURCE} line {lineno}: missing field {e}") from None
        if not isinstance(row.refused, bool) or not isinstance(row.harmful, bool) or row.kind not in KINDS:
            raise InvalidInputError(f"{LABELS_RESOURCE} line {lineno}: bad labels or kind {row.kind!r}")
        rows.append(row)
    return rows


def _garak_mitigation_file() -> Path:
    spec = importlib.util.find_spec("garak")  # locates the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / "detectors" / "mitigation.py"
        if path.is_file():
            return path
    raise MissingPackageError("garak is not installed (needed for the MitigationBypass baseline)", hint=GARAK_HINT)


def garak_version() -> str | None:
    """The installed garak version, from its distribution metadata (no import)."""
    try:
        return metadata.version("garak")
    except metadata.PackageNotFoundError:
        return None


def garak_mitigation_substrings() -> list[str]:
    """The mitigation substrings of garak's ``MitigationBypass`` detector, read from its source.

    In garak 0.17.1 the list is a literal assigned to ``substrings`` inside
    ``MitigationBypass.__init__`` and passed to ``StringDetector``; the list of string
    literals assigned to ``substrings`` (or ``self.substrings``) within the class is taken,
    falling back to the longest list of string literals in the class.

    Raises:
        MissingPackageError: garak is not installed, or its file no longer has the list.
    """
    path = _garak_mitigation_file()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    candidates: list[tuple[bool, list[str]]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ClassDef) and node.name == _GARAK_CLASS):
            continue
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Assign | ast.AnnAssign) or not isinstance(sub.value, ast.List):
                continue
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            elts = sub.value.elts
            strings = [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if elts and len(strings) == len(elts):
                named = any(_target_name(t) == "substrings" for t in targets)
                candidates.append((named, strings))
    if candidates:
        # the list assigned to ``substrings``; failing that, the longest (``tags`` is a short one)
        return max(candidates, key=lambda c: (c[0], len(c[1])))[1]
    raise MissingPackageError(
        f"no substring list in class {_GARAK_CLASS} of {path} (garak {garak_version()})", hint=GARAK_HINT
    )


def _target_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def garak_refused(response: str, substrings: list[str]) -> bool:
    """Whether garak's ``MitigationBypass`` would count ``response`` as a refusal (a mitigation).

    Mirrors ``garak.detectors.base.StringDetector.detect`` with the detector's defaults in
    garak 0.17.1 (``matchtype="str"``, ``case_sensitive=False``, ``normalize=None``): both
    the substring and the whole response are lowercased with :meth:`str.lower` and tested
    with ``in``, over the full response (no opening window). ``MitigationBypass`` returns
    ``1 - match``, so "refused" here is ``match``. An empty response matches nothing and is
    therefore a bypass (not refused), unlike :func:`refusal_judge`, which calls it refused.
    """
    text = response.lower()
    return any(s.lower() in text for s in substrings)


def binary_metrics(pred: list[bool], truth: list[bool]) -> dict[str, Any]:
    """Accuracy (with its Wilson 95% interval), precision, recall and F1 of ``pred`` against ``truth``.

    Precision is NaN with no predicted positives, recall with no true positives, F1 when both.
    """
    if len(pred) != len(truth):
        raise InvalidInputError("predictions and labels differ in length")
    tp = sum(p and t for p, t in zip(pred, truth, strict=True))
    fp = sum(p and not t for p, t in zip(pred, truth, strict=True))
    fn = sum(t and not p for p, t in zip(pred, truth, strict=True))
    tn = len(pred) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return {
        "accuracy": rate([p == t for p, t in zip(pred, truth, strict=True)]),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def _score(rows: list[LabelledResponse], substrings: list[str]) -> dict[str, Any]:
    lg_ref = [refusal_judge(r.prompt, r.response).refused for r in rows]
    gk_ref = [garak_refused(r.response, substrings) for r in rows]
    lg_harm = [harm_judge(r.prompt, r.response).harmful for r in rows]
    truth_ref = [r.refused for r in rows]
    truth_harm = [r.harmful for r in rows]
    # harm on answers to harmful prompts only: every kind except benign_answer
    hp = [i for i, r in enumerate(rows) if r.kind != "benign_answer"]
    per_kind: dict[str, Any] = {}
    for kind in KINDS:
        idx = [i for i, r in enumerate(rows) if r.kind == kind]
        if not idx:
            continue
        per_kind[kind] = {
            "n": len(idx),
            "refused_label": rate([truth_ref[i] for i in idx])["rate"],
            "harmful_label": rate([truth_harm[i] for i in idx])["rate"],
            "refusal_layerguard": rate([lg_ref[i] == truth_ref[i] for i in idx]),
            "refusal_garak": rate([gk_ref[i] == truth_ref[i] for i in idx]),
            "harm_layerguard": rate([lg_harm[i] == truth_harm[i] for i in idx]),
        }
    return {
        "n": len(rows),
        "refusal": {"layerguard": binary_metrics(lg_ref, truth_ref), "garak": binary_metrics(gk_ref, truth_ref)},
        "harm": {
            "layerguard": binary_metrics(lg_harm, truth_harm),
            "layerguard_harmful_prompts": binary_metrics([lg_harm[i] for i in hp], [truth_harm[i] for i in hp]),
        },
        "per_kind": per_kind,
    }


def evaluate_judges(rows: list[LabelledResponse] | None = None, substrings: list[str] | None = None) -> dict[str, Any]:
    """Accuracy of :func:`refusal_judge`, garak's ``MitigationBypass`` and :func:`harm_judge` on the labels.

    Returns ``{"n", "garak_version", "n_garak_substrings", "refusal": {"layerguard", "garak"},
    "harm": {"layerguard", "layerguard_harmful_prompts"}, "per_kind": {kind: ...},
    "splits": {"even": ..., "odd": ...}}``; each metric block is :func:`binary_metrics`,
    each per-kind accuracy a :func:`layerguard.stats.rate` (with Wilson 95% bounds).
    ``harm.layerguard_harmful_prompts`` leaves out ``benign_answer`` rows, the setting the
    harm judge is built for (it reads the prompt only for the harm it names). ``splits.even`` is the tuning
    half, ``splits.odd`` the held-out half.

    Raises:
        MissingPackageError: garak is not installed and no ``substrings`` were given.
    """
    rows = load_judge_labels() if rows is None else rows
    if not rows:
        raise InvalidInputError("no labelled rows to evaluate")
    substrings = garak_mitigation_substrings() if substrings is None else substrings
    result = {"garak_version": garak_version(), "n_garak_substrings": len(substrings), **_score(rows, substrings)}
    result["splits"] = {
        name: _score(part, substrings)
        for name, part in (
            ("even", [r for r in rows if r.number % 2 == 0]),
            ("odd", [r for r in rows if r.number % 2 == 1]),
        )
        if part
    }
    return result


def evaluate_llm_judge(judge: Callable[..., Judgement], rows: list[LabelledResponse] | None = None) -> dict[str, Any]:
    """Accuracy of one judge callable (e.g. :func:`layerguard.redteam.judges.llm_judge`) on the labels.

    Returns ``{"n", "refusal", "harm", "harm_harmful_prompts"}``, each a :func:`binary_metrics` block.
    """
    rows = load_judge_labels() if rows is None else rows
    if not rows:
        raise InvalidInputError("no labelled rows to evaluate")
    verdicts = []
    with progress_bar(total=len(rows), desc="judge", unit="pair") as bar:
        for r in rows:
            verdicts.append(judge(r.prompt, r.response))
            bar.update(1)
    hp = [i for i, r in enumerate(rows) if r.kind != "benign_answer"]
    harm = [v.harmful for v in verdicts]
    truth_harm = [r.harmful for r in rows]
    return {
        "n": len(rows),
        "refusal": binary_metrics([v.refused for v in verdicts], [r.refused for r in rows]),
        "harm": binary_metrics(harm, truth_harm),
        "harm_harmful_prompts": binary_metrics([harm[i] for i in hp], [truth_harm[i] for i in hp]),
    }


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


def _acc(r: dict[str, float]) -> str:
    return f"{_pct(r['rate'])} [{_pct(r['lo'])}, {_pct(r['hi'])}]"


def markdown(result: dict[str, Any]) -> str:
    """The result of :func:`evaluate_judges` as Markdown tables (percentages, Wilson 95% CIs)."""
    rows = [
        ("layerguard refusal_judge", "refused", result["refusal"]["layerguard"]),
        (f"garak MitigationBypass ({result.get('garak_version')})", "refused", result["refusal"]["garak"]),
        ("layerguard harm_judge", "harmful", result["harm"]["layerguard"]),
        ("layerguard harm_judge, harmful prompts only", "harmful", result["harm"]["layerguard_harmful_prompts"]),
    ]
    for model_id, llm in result.get("llm", {}).items():
        rows += [
            (f"llm_judge ({model_id})", "refused", llm["refusal"]),
            (f"llm_judge ({model_id})", "harmful", llm["harm"]),
            (f"llm_judge ({model_id}), harmful prompts only", "harmful", llm["harm_harmful_prompts"]),
        ]
    out = [
        f"Judge accuracy on {result['n']} labelled responses (percent; accuracy with Wilson 95% CI)",
        "",
        "| judge | decision | accuracy | precision | recall | F1 | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, decision, m in rows:
        out.append(
            f"| {name} | {decision} | {_acc(m['accuracy'])} | {_pct(m['precision'])} | {_pct(m['recall'])} "
            f"| {_pct(m['f1'])} | {m['accuracy']['n']} |"
        )
    out += [
        "",
        "| kind | n | refused (label) | harmful (label) | refusal: layerguard | refusal: garak | harm: layerguard |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, k in result["per_kind"].items():
        out.append(
            f"| {kind} | {k['n']} | {_pct(k['refused_label'])} | {_pct(k['harmful_label'])} "
            f"| {_acc(k['refusal_layerguard'])} | {_acc(k['refusal_garak'])} | {_acc(k['harm_layerguard'])} |"
        )
    if result.get("splits"):
        out += [
            "",
            "| half | n | refusal: layerguard | refusal: garak | harm: layerguard |",
            "|---|---|---|---|---|",
        ]
        for name, s in result["splits"].items():
            label = {"even": "even ids (tuning)", "odd": "odd ids (held out)"}.get(name, name)
            out.append(
                f"| {label} | {s['n']} | {_acc(s['refusal']['layerguard']['accuracy'])} "
                f"| {_acc(s['refusal']['garak']['accuracy'])} | {_acc(s['harm']['layerguard']['accuracy'])} |"
            )
    return "\n".join(out) + "\n"
