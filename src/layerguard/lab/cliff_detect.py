"""Late-drop detection on a per-token refusal-intention curve (no model needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layerguard.errors import InvalidInputError


@dataclass
class Cliff:
    """Result of :func:`detect_cliff` (positions index the curve)."""

    fired: bool
    size: float  # peak - end value
    peak: float
    peak_pos: int
    end_value: float
    drop_pos: int | None  # first position after the peak below ``peak - min_drop``


def detect_cliff(
    curve: Sequence[float],
    *,
    start: int = 0,
    stop: int | None = None,
    end: int | None = None,
    window: int = 1,
    min_peak: float = 0.5,
    min_drop: float = 0.3,
) -> Cliff:
    """Find a late drop: the peak of ``curve[start:stop]`` minus the mean of ``curve[end:end+window]``.

    Args:
        curve: Refusal intention per token (probabilities).
        start: First position of the region where the intention should be high (e.g. ``t_inst``).
        stop: End (exclusive) of that region; default ``end``.
        end: Where the "end" value is read (e.g. the last template token or the first
            generated token); default ``len(curve) - window``.
        window: Tokens averaged for the end value.
        min_peak: The peak must reach this for the detector to fire.
        min_drop: The drop (peak - end value) must reach this for the detector to fire.

    Raises:
        InvalidInputError: an empty region or a window outside the curve.
    """
    n = len(curve)
    end = n - window if end is None else end
    stop = end if stop is None else stop
    if window < 1 or not 0 <= end or end + window > n:
        raise InvalidInputError(f"end window [{end}, {end + window}) is outside a curve of {n} tokens")
    if not 0 <= start < stop <= n:
        raise InvalidInputError(f"peak region [{start}, {stop}) is empty or outside a curve of {n} tokens")
    region = list(curve[start:stop])
    peak = max(region)
    peak_pos = start + region.index(peak)
    end_value = sum(curve[end : end + window]) / window
    size = peak - end_value
    drop_pos = next((i for i in range(peak_pos + 1, n) if curve[i] < peak - min_drop), None)
    return Cliff(peak >= min_peak and size >= min_drop, float(size), float(peak), peak_pos, float(end_value), drop_pos)


@dataclass
class CurveRecord:
    """One prompt's per-token refusal-intention curve and its landmarks."""

    group: str
    sample_id: str
    attack: str
    refused: bool
    answer: str
    scores: list[float]
    n_prompt: int
    t_inst: int | None
    instruction: tuple[int, int] | None
    signal_score: float | None = None  # RefusalCliffSignal score of the answer, when one was given


def cliff_of(rec: CurveRecord, *, mode: str = "generation", window: int = 4, **kw: Any) -> Cliff:
    """Apply :func:`detect_cliff` to a record.

    ``mode="template"``: peak over ``t_inst`` .. the second-to-last template token, end =
    the last template token. ``mode="generation"``: peak over ``t_inst`` .. the last
    template token, end = mean of the first ``window`` generated tokens (fewer if the
    answer is shorter; the last template token when there is no answer). ``mode="post_inst"``:
    as ``generation`` but the peak is taken over the template tokens after ``t_inst`` only,
    the positions the probe was trained on.
    """
    start = rec.t_inst if rec.t_inst is not None else rec.n_prompt - 1
    if mode == "post_inst":  # the probe's own training positions only: t_inst excluded
        start, mode = min(start + 1, rec.n_prompt - 1), "generation"
    if mode == "template":
        return detect_cliff(rec.scores, start=min(start, rec.n_prompt - 2), stop=rec.n_prompt - 1, end=rec.n_prompt - 1)
    if mode != "generation":
        raise InvalidInputError(f"unknown cliff mode {mode!r}", hint="use template, generation or post_inst")
    n_gen = len(rec.scores) - rec.n_prompt
    if n_gen == 0:
        return detect_cliff(rec.scores, start=start, stop=rec.n_prompt, end=rec.n_prompt - 1, **kw)
    return detect_cliff(rec.scores, start=start, stop=rec.n_prompt, end=rec.n_prompt, window=min(window, n_gen), **kw)
