"""Refusal tokens at inference: per-category thresholds, generation, and the threshold sweep.

The decision rule (shared by the logits processor and the sweep, so the sweep is exact):

1. At the first generated position take the logits of the tag tokens only and softmax them:
   ``q(tag) = exp(z_tag) / sum_{tags} exp(z)``, renormalised over ``[respond]`` and every
   ``[refuse:<c>]`` (mass the model puts on other tokens is ignored).
2. The categories whose ``q([refuse:c]) >= threshold_c`` are candidates. With any candidate the
   most probable one is forced; with none, ``[respond]`` is forced.

3. At every later step all tag tokens are masked out.

So ``threshold_c = 0`` always refuses (with the most likely category), and ``threshold_c = 1``
refuses only when the tag takes all the mass in float32; 0.5 refuses whenever that category
outweighs all the other tags together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import LogitsProcessor

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.models.positions import encode_prompt
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar
from layerguard.stats import auroc, rate
from layerguard.train.refusal_tokens import RESPOND, TrainResult, refuse_tag

Thresholds = float | Mapping[str, float] | None


def resolve_thresholds(categories: Sequence[str], thresholds: Thresholds, default: float = 0.5) -> dict[str, float]:
    """One threshold per category: a float applies to all; a mapping overrides ``default`` per category.

    Raises:
        InvalidInputError: a threshold outside [0, 1] (or NaN), or an unknown category.
    """
    given: dict[str, float] = {}
    if isinstance(thresholds, Mapping):
        given = {str(k): float(v) for k, v in thresholds.items()}
    elif thresholds is not None:
        default = float(thresholds)
    unknown = sorted(set(given) - set(categories))
    if unknown:
        raise InvalidInputError(
            f"unknown refusal categor{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}",
            hint=f"the adapter knows: {', '.join(categories)}",
        )
    out = {c: given.get(c, default) for c in categories}
    for name, t in [("default", default), *out.items()]:
        if not (0.0 <= t <= 1.0):  # also rejects NaN
            raise InvalidInputError(
                f"threshold {t} for {name} is outside [0, 1]",
                hint="a threshold is a probability: 0 always refuses, 1 (almost) never does",
            )
    return out


def decide(q: Mapping[str, float], thresholds: Mapping[str, float]) -> str:
    """The tag to force, given renormalised tag probabilities ``q`` and per-category thresholds."""
    best, best_q = RESPOND, -1.0
    for cat, t in thresholds.items():
        p = q[refuse_tag(cat)]
        if p >= t and p > best_q:
            best, best_q = refuse_tag(cat), p
    return best


class RefusalTokenProcessor(LogitsProcessor):
    """Forces the answer's first token to the tag chosen by :func:`decide`; later steps may not emit a tag.

    Args:
        tag_ids: Tag string -> token id (``[respond]`` and every ``[refuse:<c>]``).
        thresholds: Category -> threshold in [0, 1] (see :func:`resolve_thresholds`).
        prompt_len: Length of the (padded) prompt; the first generated position is the one whose
            ``input_ids`` have exactly this length.

    After a call, ``decisions`` holds one ``(tag, q)`` per batch row.
    """

    def __init__(self, tag_ids: Mapping[str, int], thresholds: Mapping[str, float], prompt_len: int) -> None:
        self.tags = list(tag_ids)
        self.ids = [int(tag_ids[t]) for t in self.tags]
        self.thresholds = dict(thresholds)
        self.prompt_len = prompt_len
        self.decisions: list[tuple[str, dict[str, float]]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:  # [batch, pos], [batch, vocab]
        import torch

        if input_ids.shape[1] != self.prompt_len:
            # A tag belongs only at the start: later steps may not emit one (a tag row trained
            # upward can otherwise win again, and tags are dropped when decoding).
            scores[:, self.ids] = -math.inf
            return scores
        q = torch.softmax(scores[:, self.ids].float(), dim=-1)  # [batch, n_tags]
        forced = torch.full_like(scores, -math.inf)
        self.decisions = []
        for row in range(scores.shape[0]):
            qs = dict(zip(self.tags, q[row].tolist(), strict=True))
            tag = decide(qs, self.thresholds)
            forced[row, self.ids[self.tags.index(tag)]] = 0.0
            self.decisions.append((tag, qs))
        return forced


def _batches(res: TrainResult, conversations: Sequence[ConversationLike], batch_size: int) -> Any:
    from layerguard.models.generate import left_pad

    enc = [encode_prompt(res.tokenizer, c, find_instruction=False) for c in conversations]
    order = sorted(range(len(enc)), key=lambda i: -enc[i].n_tokens)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, left_pad([enc[r] for r in rows], res.tokenizer.pad_token_id)


def tag_probabilities(
    res: TrainResult, conversations: Sequence[ConversationLike], *, batch_size: int = 8, progress: bool | None = None
) -> list[dict[str, float]]:
    """Renormalised tag probabilities ``q`` at the first answer position, one dict per prompt."""
    import torch

    tags = list(res.meta["tags"])
    ids = torch.tensor([res.tag_ids[t] for t in tags])
    out: list[dict[str, float]] = [{} for _ in conversations]
    with progress_bar(total=len(conversations), desc="tag probabilities", unit="prompt", enabled=progress) as bar:
        for rows, (x, mask, pos) in _batches(res, conversations, batch_size):
            with torch.inference_mode():
                logits = res.model(input_ids=x, attention_mask=mask, position_ids=pos).logits[:, -1]
            q = torch.softmax(logits[:, ids].float(), dim=-1)
            for r, qr in zip(rows, q.tolist(), strict=True):
                out[r] = dict(zip(tags, qr, strict=True))
            bar.update(len(rows))
    return out


def generate_with_tags(
    res: TrainResult,
    conversations: Sequence[ConversationLike],
    thresholds: Thresholds = 0.5,
    *,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    progress: bool | None = None,
) -> list[tuple[str, str]]:
    """Greedy answers with the thresholded tag forced first; returns ``(tag, text after the tag)``."""
    import torch
    from transformers import LogitsProcessorList

    th = resolve_thresholds(res.meta["categories"], thresholds)
    out: list[tuple[str, str]] = [("", "")] * len(conversations)
    pad = res.tokenizer.pad_token_id
    with progress_bar(total=len(conversations), desc="generating", unit="prompt", enabled=progress) as bar:
        for rows, (x, mask, _) in _batches(res, conversations, batch_size):
            proc = RefusalTokenProcessor(res.tag_ids, th, prompt_len=x.shape[1])
            with torch.inference_mode():
                seqs = res.model.generate(
                    input_ids=x,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    logits_processor=LogitsProcessorList([proc]),
                    pad_token_id=pad,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                )
            for r, seq, (tag, _) in zip(rows, seqs[:, x.shape[1] :], proc.decisions, strict=True):
                out[r] = (tag, res.tokenizer.decode(seq[1:], skip_special_tokens=True).strip())
            bar.update(len(rows))
    return out


def _rates(qs: Sequence[Mapping[str, float]], th: Mapping[str, float]) -> list[str]:
    return [decide(q, th) for q in qs]


def sweep(
    res: TrainResult,
    *,
    harmful: Sequence[Sample],
    borderline: Sequence[Sample],
    harmless: Sequence[Sample] = (),
    grid: Sequence[float] | None = None,
    per_category: bool = True,
    batch_size: int = 8,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Refusal rate on harmful prompts vs over-refusal on benign ones, as the thresholds move.

    The tag probabilities are computed once per prompt; each threshold setting then applies
    :func:`decide` to them, which is exactly what :class:`RefusalTokenProcessor` does in generation.

    Returns:
        ``{"shared": [...], "per_category": {...}, "auroc": ..., "n": ...}``; every rate comes with
        its Wilson interval (:func:`layerguard.stats.rate`).
    """
    from layerguard.data.loaders import assert_not_held_out

    if not harmful or not borderline:
        raise InvalidInputError("the sweep needs harmful and borderline prompts", hint="e.g. builtin:harmful:val")
    assert_not_held_out([*harmful, *borderline, *harmless], "threshold sweeps")
    cats = list(res.meta["categories"])
    grid = [round(i / 20, 4) for i in range(21)] if grid is None else list(grid)
    for t in grid:  # validates the range before any model work
        resolve_thresholds(cats, t)
    sets = {"harmful": list(harmful), "borderline": list(borderline), "harmless": list(harmless)}
    qs = {
        k: tag_probabilities(res, [s.conversation() for s in v], batch_size=batch_size, progress=progress)
        for k, v in sets.items()
        if v
    }
    shared = []
    for t in grid:
        th = resolve_thresholds(cats, t)
        row: dict[str, Any] = {"threshold": t}
        for name, q in qs.items():
            tags = _rates(q, th)
            row[f"{name}_refusal"] = rate([tg != RESPOND for tg in tags])
            if name == "harmful":
                row["harmful_category_correct"] = rate(
                    [tg == refuse_tag(s.category) for tg, s in zip(tags, sets["harmful"], strict=True)]
                )
        shared.append(row)
    per_cat: dict[str, list[dict[str, Any]]] = {}
    if per_category:
        for c in cats:
            own = [q for q, s in zip(qs["harmful"], sets["harmful"], strict=True) if s.category == c]
            if not own:
                continue
            curve = []
            for t in grid:  # this category moves, the others stay at 0.5
                th = resolve_thresholds(cats, {c: t})
                curve.append(
                    {
                        "threshold": t,
                        "harmful_refusal": rate([tg != RESPOND for tg in _rates(own, th)]),
                        "borderline_refusal": rate([tg != RESPOND for tg in _rates(qs["borderline"], th)]),
                    }
                )
            per_cat[c] = curve
    p_ref = {k: [1.0 - q[RESPOND] for q in v] for k, v in qs.items()}
    return {
        "decision_rule": "q = softmax over tag logits at the first answer position; refuse with the most likely "
        "category c among those with q(refuse:c) >= threshold_c, else [respond]",
        "grid": grid,
        "shared": shared,
        "per_category": per_cat,
        "auroc_harmful_vs_borderline": auroc(p_ref["harmful"], p_ref["borderline"]),
        "auroc_harmful_vs_harmless": auroc(p_ref["harmful"], p_ref["harmless"]) if "harmless" in p_ref else None,
        "n": {k: len(v) for k, v in sets.items()},
    }


def baseline_refusal(
    lm: Any,
    sets: Mapping[str, Sequence[Sample]],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    progress: bool | None = None,
) -> dict[str, Any]:
    """The untrained model's own refusal rate per set, judged from its greedy text."""
    from layerguard.judges import is_refusal as is_refusal_text
    from layerguard.models.generate import generate

    out: dict[str, Any] = {}
    for name, samples in sets.items():
        if samples:
            texts = generate(
                lm,
                [s.conversation() for s in samples],
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                progress=progress,
                desc=f"baseline {name}",
            )
            out[f"{name}_refusal"] = rate([is_refusal_text(t) for t in texts])
    return out


def plot_sweep(result: Mapping[str, Any], path: str | Path) -> Path:
    """Two panels: refusal rates against the shared threshold, and the harmful/borderline trade-off."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    shared = result["shared"]
    ts = [r["threshold"] for r in shared]
    colors = {"harmful": "#b91c1c", "borderline": "#d97706", "harmless": "#2563eb"}
    base = result.get("baseline") or {}
    for name, color in colors.items():
        key = f"{name}_refusal"
        if key in shared[0]:
            ax1.plot(ts, [r[key]["rate"] for r in shared], marker="o", ms=3, color=color, label=f"{name} (val)")
            if key in base:
                ax1.axhline(base[key]["rate"], color=color, ls=":", lw=1, label=f"{name}, untrained model")
    ax1.set_xlabel("shared threshold on q(refuse:c)")
    ax1.set_ylabel("refusal rate")
    ax1.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=7)
    ax2.plot(
        [r["borderline_refusal"]["rate"] for r in shared],
        [r["harmful_refusal"]["rate"] for r in shared],
        marker="o",
        ms=3,
        color="#111827",
        label="shared threshold",
    )
    if "harmful_refusal" in base and "borderline_refusal" in base:
        ax2.plot(
            [base["borderline_refusal"]["rate"]],
            [base["harmful_refusal"]["rate"]],
            marker="s",
            color="#6b7280",
            ls="none",
            label="untrained model (text judge)",
        )
    for r in shared:
        if r["threshold"] in (0.1, 0.5, 0.9):
            ax2.annotate(
                f"t={r['threshold']}",
                (r["borderline_refusal"]["rate"], r["harmful_refusal"]["rate"]),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
            )
    ax2.set_xlabel("over-refusal on borderline-benign (val)")
    ax2.set_ylabel("refusal on harmful (val)")
    ax2.set_xlim(-0.02, 1.02)
    ax2.set_ylim(-0.02, 1.02)
    ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Refusal tokens on {result.get('model_id', '?')}", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
