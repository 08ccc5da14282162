"""How well the latent ring's reads name a harmful prompt's hazard category (docs/guard.md, "Categories").

Reads the v2 ring's six reads (``t_inst``, ``inst_mean``, ``post_mean`` at two layers) of the
harmful training and validation prompts and of a third of the harmless training prompts,
then compares on the validation prompts: the first ring's rule (cosine with each category's
harmful - benign centroid), the nearest centred profile, and the softmax regression the ring
now uses (``layerguard.guard.latent_categories``), with its out-of-fold confidence cut.

    python scripts/category_readout.py --model qwen2.5-coder-0.5b --layers 16,17 --out runs/category-readout.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    """Read the states, compare the three rules, write the JSON."""
    import torch

    from layerguard.data.builtin import load_builtin
    from layerguard.guard.latent_categories import fit_categories, nearest
    from layerguard.guard.states import prompt_states
    from layerguard.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--layers", default="16,17")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("runs/category-readout.json"))
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    reads = [f"blocks.{la}.resid_pre@{p}" for la in layers for p in ("t_inst", "inst_mean", "post_mean")]
    lm = load_model(args.model)
    t0 = time.time()

    def states(samples: list) -> torch.Tensor:
        s = prompt_states(lm, [x.conversation() for x in samples], reads, batch_size=args.batch_size, progress=True)
        return torch.cat([s[r] for r in reads], dim=-1).float()

    train, val = load_builtin("harmful", "train"), load_builtin("harmful", "val")
    xtr, xva, xbn = states(train), states(val), states(load_builtin("harmless", "train")[::3])
    ltr, lva = [s.category for s in train], [s.category for s in val]
    names = sorted(set(ltr))

    def accuracy(scores: torch.Tensor) -> float:
        return sum(names[int(i)] == c for i, c in zip(scores.argmax(1), lva, strict=True)) / len(lva)

    def unit(v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(v, dim=-1)

    rows = {c: [i for i, x in enumerate(ltr) if x == c] for c in names}
    old = unit(torch.stack([xtr[rows[c]].mean(0) - xbn.mean(0) for c in names]))
    center = xtr.mean(0)
    prof = unit(torch.stack([xtr[rows[c]].mean(0) - center for c in names]))
    model = fit_categories(xtr, ltr)
    picks = [nearest(r, model.names) for r in model.probabilities(xva).tolist()]
    named = [g == c for (g, p), c in zip(picks, lva, strict=True) if p >= model.min_confidence]
    result = {
        "model": lm.model_id,
        "reads": reads,
        "n_train": len(ltr),
        "n_val": len(lva),
        "largest_category_share_val": max(lva.count(c) for c in names) / len(lva),
        "val_accuracy": {
            "cosine to harmful - benign centroid (first ring)": accuracy(unit(xva) @ old.T),
            "nearest centred profile": accuracy(unit(xva - center) @ prof.T),
            "softmax regression (the ring now)": sum(g == c for (g, _), c in zip(picks, lva, strict=True)) / len(lva),
        },
        "softmax_cut": {
            "min_confidence": model.min_confidence,
            "cv": model.stats,
            "val_coverage": len(named) / len(lva),
            "val_named_accuracy": sum(named) / len(named) if named else None,
        },
        "duration_s": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
