"""Publish a built guard for an embedded model: copy it into the package with published.json.

    python scripts/publish_guard.py runs/guard-qwen-v3 --commit 56dff2b --date 2026-12-03 \
        --build-s 1812 --command "layerguard guard build ..." --evaluation docs/figures/guard-eval-qwen-v3.json

The guard must have been built with the audit's default build settings (the batch size
aside); the published copy's ``release`` switch is set to the audit's default and the
change recorded. The audit then uses it for that model (``layerguard.guard.published``),
and ``tests/guard/test_published.py`` checks that it is whole, loads, and still matches
what the audit would build: when the training data or the build defaults change, that
test fails until the guard is rebuilt and published again.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from layerguard.defaults import GUARD_BUILD
from layerguard.guard.build import build_guard
from layerguard.guard.cache import key_inputs
from layerguard.guard.published import publish
from layerguard.redteam.audit import _guard_build_args


@dataclass
class ModelRef:
    """The three fields of a model the guard cache's key reads."""

    name: str
    weights_sha256: str
    template_hash: str


def main() -> None:
    """Copy, switch release to the default, hash and write published.json."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("guard_dir", type=Path)
    ap.add_argument("--commit", required=True, help="the commit whose code built the guard")
    ap.add_argument("--date", required=True)
    ap.add_argument("--build-s", type=float, required=True, help="the build's wall time")
    ap.add_argument("--command", required=True, help="the build command")
    ap.add_argument("--evaluation", required=True, help="the guard eval JSON of this guard")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "guard"
        shutil.copytree(args.guard_dir, work)
        cfg = yaml.safe_load((work / "guard.yaml").read_text())
        changes = []
        if cfg.get("release", False) != GUARD_BUILD.release:
            text = (work / "guard.yaml").read_text()
            old, new = f"release: {str(cfg['release']).lower()}", f"release: {str(GUARD_BUILD.release).lower()}"
            assert text.count(old) == 1, old
            (work / "guard.yaml").write_text(text.replace(old, new))
            changes.append(
                f"release switched from {cfg['release']} to {GUARD_BUILD.release} (the audit's default); "
                "the build's --release writes only this switch"
            )
        m = cfg["model"]
        lm = ModelRef(m["name"], m["weights_sha256"], m["template_sha256"])
        arguments = key_inputs(lm, build_guard, _guard_build_args(16, args.seed, True))["arguments"]
        built = {"command": args.command, "commit": args.commit, "date": args.date, "build_s": args.build_s}
        dest = publish(work, arguments, built=built, evaluation=args.evaluation, changes=changes)
    print(f"published {dest}")


if __name__ == "__main__":
    main()
