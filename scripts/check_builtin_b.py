"""Quality checks for the ``harmful_b`` / ``harmless_b`` shard.

Reports near-duplicates (difflib ratio > 0.85) within the new rows and against the original
``harmful.jsonl`` / ``harmless.jsonl``, the per-pair harmless/harmful length ratio, the length
distribution of the new harmful rows next to the original harmful set, and the validation
AUROC of a bag-of-words multinomial Naive Bayes trained on the new train split.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import statistics
from collections import Counter
from pathlib import Path

DIR = Path(__file__).resolve().parent.parent / "src" / "layerguard" / "data" / "builtin"
Row = dict[str, object]


def _load(name: str) -> list[Row]:
    path = DIR / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _near_duplicates(
    new: list[tuple[str, object]], old: list[str], limit: float = 0.85
) -> list[tuple[float, str, str]]:
    """Prompts (new-new and new-old) whose difflib ratio exceeds ``limit``.

    ``new`` holds ``(prompt, pair)``; the two rows of one matched pair are compared separately
    (they are meant to differ in few words), so they are skipped here.
    """
    hits = []
    pool = new + [(p, None) for p in old]
    lowered = [p.lower() for p, _ in pool]
    for i, (a, pair) in enumerate(pool[: len(new)]):
        matcher = difflib.SequenceMatcher(None, lowered[i], autojunk=False)
        for j in range(i + 1, len(pool)):
            if pool[j][1] == pair:
                continue
            matcher.set_seq1(lowered[j])
            if matcher.real_quick_ratio() > limit and matcher.quick_ratio() > limit and matcher.ratio() > limit:
                hits.append((round(matcher.ratio(), 3), a, pool[j][0]))
    return hits


def _quantiles(lengths: list[int]) -> str:
    q = statistics.quantiles(lengths, n=20)
    return (
        f"n={len(lengths)} mean={statistics.mean(lengths):.1f} median={statistics.median(lengths):.1f} "
        f"min={min(lengths)} p10={q[1]:.0f} p25={q[4]:.0f} p75={q[14]:.0f} p90={q[17]:.0f} max={max(lengths)}"
    )


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _auroc(scores: list[float], labels: list[int]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def naive_bayes_auroc(harmful: list[Row], harmless: list[Row]) -> float:
    """Train multinomial NB (Laplace smoothing) on train rows; return AUROC on val rows."""
    counts = {1: Counter[str](), 0: Counter[str]()}
    for label, rows in ((1, harmful), (0, harmless)):
        for row in rows:
            if row["split"] == "train":
                counts[label].update(_tokens(str(row["prompt"])))
    vocab = set(counts[0]) | set(counts[1])
    totals = {k: sum(c.values()) + len(vocab) for k, c in counts.items()}

    def score(text: str) -> float:
        return sum(
            math.log((counts[1][t] + 1) / totals[1]) - math.log((counts[0][t] + 1) / totals[0])
            for t in _tokens(text)
            if t in vocab
        )

    scored = [(score(str(r["prompt"])), y) for y, rows in ((1, harmful), (0, harmless)) for r in rows]
    val = [(s, y) for (s, y), r in zip(scored, harmful + harmless, strict=True) if r["split"] == "val"]
    return _auroc([s for s, _ in val], [y for _, y in val])


def main() -> None:
    """Print every check."""
    bad, good = _load("harmful_b"), _load("harmless_b")
    old = [str(r["prompt"]) for r in _load("harmful") + _load("harmless")]
    by_pair = {r["pair"]: r for r in good}
    ratios = [(len(str(by_pair[r["pair"]]["prompt"])) / len(str(r["prompt"])), r) for r in bad]
    inside = sum(0.85 <= x <= 1.15 for x, _ in ratios)
    print(f"pairs: {len(bad)}; length ratio in [0.85, 1.15]: {inside}/{len(bad)} ({inside / len(bad):.1%})")
    for x, r in ratios:
        if not 0.85 <= x <= 1.15:
            print(f"  ratio {x:.2f} pair {r['pair']}: {r['prompt']}")
    print("categories:", dict(Counter(str(r["category"]) for r in bad)))
    print("splits:", dict(Counter(str(r["split"]) for r in bad)), "rephrased:", sum("form" in r for r in bad))
    print("new harmful lengths:      ", _quantiles([len(str(r["prompt"])) for r in bad]))
    print("new harmless lengths:     ", _quantiles([len(str(r["prompt"])) for r in good]))
    print("original harmful lengths: ", _quantiles([len(str(r["prompt"])) for r in _load("harmful")]))
    hits = _near_duplicates([(str(r["prompt"]), r["pair"]) for r in bad + good], old)
    print(f"near-duplicates (ratio > 0.85): {len(hits)}")
    for ratio, a, b in hits:
        print(f"  {ratio}: {a!r} ~ {b!r}")
    same = [
        r["pair"]
        for r in bad
        if difflib.SequenceMatcher(None, str(r["prompt"]).lower(), str(by_pair[r["pair"]]["prompt"]).lower()).ratio()
        > 0.85
    ]
    print(f"matched pairs whose two prompts have ratio > 0.85: {len(same)} {same}")
    print(f"naive Bayes val AUROC (harmful vs harmless): {naive_bayes_auroc(bad, good):.3f}")


if __name__ == "__main__":
    main()
