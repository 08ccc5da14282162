"""Small statistics used across the lab, the guard and the red team."""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion; (nan, nan) when n == 0."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(flags: Sequence[bool]) -> dict[str, float]:
    """A rate with its Wilson interval: {"rate", "lo", "hi", "n", "k"}."""
    k, n = sum(bool(f) for f in flags), len(flags)
    lo, hi = wilson(k, n)
    return {"rate": k / n if n else math.nan, "lo": lo, "hi": hi, "n": n, "k": k}


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability a random positive scores above a random negative (ties half); rank-based."""
    if not positive or not negative:
        return math.nan
    scored = sorted([(s, 1) for s in positive] + [(s, 0) for s in negative])
    rank_sum = 0.0
    i = 0
    while i < len(scored):
        j = i
        while j < len(scored) and scored[j][0] == scored[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2  # ranks i+1..j share their average
        rank_sum += avg_rank * sum(lab for _, lab in scored[i:j])
        i = j
    n_pos, n_neg = len(positive), len(negative)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def sign_flip_p(diffs: Sequence[float], n_permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip permutation test that the mean of ``diffs`` is 0.

    Each permutation flips the sign of every difference at random; the p-value is the share
    of permutations (the observed one counted, so never 0) whose absolute mean reaches the
    observed one. nan for no differences.
    """
    import random

    if not diffs:
        return math.nan
    rng = random.Random(seed)
    observed = abs(sum(diffs)) - 1e-12
    hits = 1
    for _ in range(n_permutations):
        if abs(sum(d if rng.random() < 0.5 else -d for d in diffs)) >= observed:
            hits += 1
    return hits / (n_permutations + 1)
