"""Thresholds calibrated to a target false-positive rate on benign prompts."""

from __future__ import annotations

import math
from collections.abc import Sequence

from layerguard.errors import InvalidInputError


def threshold_for_fpr(benign_scores: Sequence[float], target_fpr: float) -> float:
    """The smallest threshold whose FPR (share of benign scores >= it) is <= ``target_fpr``.

    Raises:
        InvalidInputError: with no benign scores or a target outside [0, 1).
    """
    if not benign_scores:
        raise InvalidInputError("calibration needs benign scores", hint="give harmless/borderline calibration prompts")
    if not 0 <= target_fpr < 1:
        raise InvalidInputError(f"target FPR must be in [0, 1), got {target_fpr}")
    ordered = sorted(benign_scores, reverse=True)
    allowed = math.floor(target_fpr * len(ordered))  # benign prompts allowed above the threshold
    if allowed >= len(ordered):
        return min(ordered)
    # just above the (allowed+1)-th highest benign score
    return math.nextafter(ordered[allowed], math.inf)


def rates(pos_scores: Sequence[float], neg_scores: Sequence[float], threshold: float) -> dict[str, float]:
    """TPR on positives and FPR on negatives at a threshold (score >= threshold flags)."""
    tpr = sum(s >= threshold for s in pos_scores) / len(pos_scores) if pos_scores else math.nan
    fpr = sum(s >= threshold for s in neg_scores) / len(neg_scores) if neg_scores else math.nan
    return {"tpr": tpr, "fpr": fpr}
