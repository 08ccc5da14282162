"""The latent ring carries the harmfulness Direction; its scorer matches the former private copy on one read.

``_old_*`` below are the pre-Direction build steps, verbatim (one read, ``t_inst`` at one layer).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from layerguard.data.builtin import load_builtin
from layerguard.directions.extract import data_hash
from layerguard.guard.build import fit_scorer
from layerguard.guard.probe import LogisticProbe
from layerguard.guard.rings.latent import LatentGuardModel
from layerguard.stats import auroc

TOL = 1e-6


def _old_fit_latent(x_pos: Any, x_neg: Any, variant: str, l2: float = 1e-2) -> tuple[Any, LogisticProbe]:
    direction = x_pos.float().mean(0) - x_neg.float().mean(0)
    direction = direction / direction.norm().clamp(min=1e-12)
    x = torch.cat([x_pos, x_neg]).float()
    y = torch.cat([torch.ones(len(x_pos)), torch.zeros(len(x_neg))])
    feats = (x @ direction).unsqueeze(-1) if variant == "centroid" else x
    return direction, LogisticProbe.fit(feats, y, l2=l2)


def _old_states(lm: Any, samples: list[Any], layers: list[int]) -> Any:
    from layerguard.activations.capture import capture_activations

    acts = capture_activations(
        lm, [s.conversation() for s in samples], layers=layers, positions=["t_inst"], batch_size=8, progress=False
    )
    return torch.stack([acts.at(f"blocks.{layer}.resid_pre", "t_inst") for layer in layers], dim=1)


def _old_select(x_pos: Any, x_neg: Any, cand: list[int], seed: int) -> tuple[str, int]:
    rng = random.Random(seed)
    idx_p, idx_n = list(range(len(x_pos))), list(range(len(x_neg)))
    rng.shuffle(idx_p)
    rng.shuffle(idx_n)
    cut_p, cut_n = int(0.7 * len(idx_p)), int(0.7 * len(idx_n))
    scores = {}
    for v in ("centroid", "probe"):
        for j, layer in enumerate(cand):
            d, scorer = _old_fit_latent(x_pos[idx_p[:cut_p], j], x_neg[idx_n[:cut_n], j], v)
            m = LatentGuardModel(layer, v, d, scorer, 0.5)  # type: ignore[arg-type]
            sp, sn = m.score(x_pos[idx_p[cut_p:], j]).tolist(), m.score(x_neg[idx_n[cut_n:], j]).tolist()
            scores[(v, layer)] = auroc(sp, sn)
    return max(scores, key=lambda k: scores[k])


def test_direction_and_scores_match_the_private_copy_on_synthetic_states():
    from layerguard.directions.direction import Direction
    from layerguard.directions.extract import diff_in_means

    g = torch.Generator().manual_seed(3)
    x_pos, x_neg = torch.randn(40, 5, 32, generator=g) + 0.3, torch.randn(36, 5, 32, generator=g)
    harm = Direction(diff_in_means(x_pos, x_neg), "harmfulness", "t_inst", "m", "w", "t").with_layer(3)
    for variant in ("centroid", "probe"):
        old_d, old_scorer = _old_fit_latent(x_pos[:, 3], x_neg[:, 3], variant)
        new = LatentGuardModel.from_direction(
            harm, variant, fit_scorer(x_pos[:, 3], x_neg[:, 3], harm.unit(), variant), 0.5
        )  # type: ignore[arg-type]
        old = LatentGuardModel(3, variant, old_d, old_scorer, 0.5)  # type: ignore[arg-type]
        assert torch.allclose(new.direction, old_d, atol=TOL, rtol=0)
        h = torch.randn(20, 32, generator=g)
        assert torch.allclose(new.score(h), old.score(h), atol=TOL, rtol=0)


def test_built_guard_carries_its_direction_and_scores_its_reads_as_the_ring_does(tiny_guard: Path, smollm2):
    # the tiny guard of tests/conftest.py: these samples, layers [8, 14], seed 0
    from layerguard.guard.rings.latent import LatentRing, read_states
    from layerguard.guard.types import Exchange

    harmful = load_builtin("harmful", "train")[:24]
    benign = load_builtin("harmless", "train")[:16] + load_builtin("borderline", "train")[:8]
    model = LatentGuardModel.load(tiny_guard.parent / "latent")
    assert model.reads and all(int(r.split(".")[1]) in (8, 14) for r in model.reads)
    assert model.layer == int(model.reads[0].split(".")[1])
    ring = LatentRing(model, lm=smollm2)
    val = [
        Exchange.from_prompt(s.prompt) for s in load_builtin("harmful", "val")[:3] + load_builtin("harmless", "val")[:3]
    ]
    states = read_states(smollm2, val, model.reads)
    for ex, h in zip(val, states, strict=True):
        assert ring.check(ex).score == pytest.approx(float(model.score(h.unsqueeze(0))[0]), abs=1e-5)

    # ... and it carries the Direction it came from (t_inst, every layer), with its provenance
    harm = model.harmfulness
    layer = model.layer
    assert harm is not None and (harm.role, harm.position, harm.layer) == ("harmfulness", "t_inst", layer)
    assert harm.n_layers == smollm2.n_layers
    assert (harm.model_id, harm.weights_sha256, harm.template_sha256) == (
        smollm2.model_id,
        smollm2.weights_sha256,
        smollm2.template_hash,
    )
    assert harm.meta["data_sha256"] == data_hash(harmful, benign)
    harm.check_model(smollm2)  # a usable Direction for this model (e.g. for steering)
