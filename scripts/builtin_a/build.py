"""Build harmful_a.jsonl / harmless_a.jsonl from the pair text files next to this script.

Each ``<category>.txt`` holds pairs as two lines, ``H: <harmful prompt>`` then
``B: <matched harmless prompt>``, separated by blank lines. Categories are written in
the order of ``CATEGORIES``; ids and pair numbers run on across categories, and each
category's pairs get a seeded 70/30 train/val split.

Usage: python scripts/builtin_a/build.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "src" / "layerguard" / "data" / "builtin"
CATEGORIES = [
    "S1_violent_crimes",
    "S2_nonviolent_crimes",
    "S3_sex_related_crimes",
    "S4_child_sexual_exploitation",
    "S5_defamation",
    "S6_specialized_advice",
    "S7_privacy",
]
FIRST_PAIR = 1001
SEED = 20240611
TRAIN_FRACTION = 0.7


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Read ``(harmful, harmless)`` pairs from one category file."""
    pairs = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines()]
        if len(lines) != 2 or not lines[0].startswith("H: ") or not lines[1].startswith("B: "):
            raise ValueError(f"{path.name}: malformed block {block!r}")
        pairs.append((lines[0][3:].strip(), lines[1][3:].strip()))
    return pairs


def splits_for(category: str, n: int) -> list[str]:
    """Seeded per-category shuffle: the first 70% of the shuffled pairs are train."""
    order = list(range(n))
    random.Random(f"{SEED}:{category}").shuffle(order)
    n_train = round(TRAIN_FRACTION * n)
    split = ["val"] * n
    for i in order[:n_train]:
        split[i] = "train"
    return split


def main() -> None:
    """Write both JSONL files from every category file present."""
    harmful: list[dict[str, object]] = []
    harmless: list[dict[str, object]] = []
    pair = FIRST_PAIR
    for category in CATEGORIES:
        path = HERE / f"{category}.txt"
        if not path.exists():
            continue
        pairs = read_pairs(path)
        for (bad, good), split in zip(pairs, splits_for(category, len(pairs)), strict=True):
            n = len(harmful) + 1
            harmful.append({"id": f"harm-a-{n:04d}", "prompt": bad, "category": category, "split": split, "pair": pair})
            harmless.append(
                {
                    "id": f"harmless-a-{n:04d}",
                    "prompt": good,
                    "category": f"benign_{category}",
                    "split": split,
                    "pair": pair,
                }
            )
            pair += 1
    for name, rows in (("harmful_a", harmful), ("harmless_a", harmless)):
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (OUT / f"{name}.jsonl").write_text(text, encoding="utf-8")
    print(f"wrote {len(harmful)} pairs")


if __name__ == "__main__":
    main()
