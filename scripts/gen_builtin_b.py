"""Write ``harmful_b.jsonl`` and ``harmless_b.jsonl`` from the pairs in ``scripts/builtin_b``.

Run from the repository root: ``python scripts/gen_builtin_b.py``. The output is deterministic:
pairs are numbered from 2001 in category order, and each category's pairs get a seeded 70/30
train/val split.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "layerguard" / "data" / "builtin"
FIRST_PAIR = 2001
TRAIN_FRACTION = 0.7
CATEGORIES: list[tuple[str, str]] = [
    ("S8_intellectual_property", "s08_ip"),
    ("S9_indiscriminate_weapons", "s09_weapons"),
    ("S10_hate", "s10_hate"),
    ("S11_suicide_self_harm", "s11_self_harm"),
    ("S12_sexual_content", "s12_sexual"),
    ("S13_elections", "s13_elections"),
    ("S14_code_interpreter_abuse", "s14_code"),
]


def _rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Build the harmful and harmless rows for every category listed in ``CATEGORIES``."""
    sys.path.insert(0, str(ROOT / "scripts"))
    harmful: list[dict[str, object]] = []
    harmless: list[dict[str, object]] = []
    pair = FIRST_PAIR
    for category, module_name in CATEGORIES:
        module = importlib.import_module(f"builtin_b.{module_name}")
        items = [(h, b, "") for h, b in module.PAIRS] + [(h, b, "rephrased") for h, b in module.REPHRASED]
        order = list(range(len(items)))
        random.Random(f"builtin-b:{category}").shuffle(order)
        n_train = round(TRAIN_FRACTION * len(items))
        split_of = {idx: ("train" if rank < n_train else "val") for rank, idx in enumerate(order)}
        for idx, (bad, good, form) in enumerate(items):
            number = len(harmful) + 1
            extra = {"form": form} if form else {}
            harmful.append(
                {"id": f"harm-b-{number:04d}", "prompt": bad, "category": category}
                | {"split": split_of[idx], "pair": pair}
                | extra
            )
            harmless.append(
                {"id": f"harmless-b-{number:04d}", "prompt": good, "category": f"benign_{category}"}
                | {"split": split_of[idx], "pair": pair}
                | extra
            )
            pair += 1
    return harmful, harmless


def main() -> None:
    """Write both JSONL files."""
    harmful, harmless = _rows()
    for name, rows in (("harmful_b", harmful), ("harmless_b", harmless)):
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (OUT / f"{name}.jsonl").write_text(text, encoding="utf-8")
    print(f"wrote {len(harmful)} pairs")


if __name__ == "__main__":
    main()
