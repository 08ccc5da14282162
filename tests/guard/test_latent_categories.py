"""Categories of the latent ring: a softmax regression on its reads, and no category when it is not sure."""

from __future__ import annotations

import torch

from layerguard.guard.latent_categories import NEVER, CategoryModel, cut_for_precision, fit_categories, nearest


def _states(n_per: int = 60, cats: int = 6, d: int = 64, spread: float = 1.0, seed: int = 0, noise_seed: int = 0):
    """Harmful states: a large shared harm direction, a per-category offset, noise."""
    g = torch.Generator().manual_seed(seed)
    harm = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0) * 8.0
    offsets = torch.randn(cats, d, generator=g) * spread * 3 / d**0.5
    noise = torch.Generator().manual_seed(1000 + noise_seed)
    xs, labels = [], []
    for c in range(cats):
        xs.append(harm + offsets[c] + torch.randn(n_per, d, generator=noise) * 0.35)
        labels += [f"S{c + 1}"] * n_per
    return torch.cat(xs), labels


def _named(model: CategoryModel, x: torch.Tensor, labels: list[str]) -> list[bool]:
    rows = model.probabilities(x).tolist()
    picks = [nearest(r, model.names) for r in rows]
    return [g == lab for (g, p), lab in zip(picks, labels, strict=True) if p >= model.min_confidence]


def test_cut_names_a_category_only_where_it_is_right_often_enough():
    assert cut_for_precision([0.9, 0.5, 0.3, 0.1], [True, True, False, False], 0.8) == 0.5
    assert cut_for_precision([0.9, 0.5], [False, True], 0.8) == NEVER  # even the surest is wrong
    assert cut_for_precision([0.5, 0.5, 0.1], [True, False, True], 0.8) == NEVER  # ties go together
    assert nearest([0.1, 0.7, 0.2], ["a", "b", "c"]) == ("b", 0.7) and nearest([], []) == (None, 0.0)


def test_separable_categories_are_all_named_and_right_on_new_prompts():
    x, labels = _states()
    model = fit_categories(x, labels)
    assert model.stats["cv_accuracy"] > 0.95 and model.stats["cv_coverage"] > 0.9
    nx, nl = _states(noise_seed=1)  # the same categories, fresh noise
    named = _named(model, nx, nl)
    assert len(named) > 0.9 * len(nl) and sum(named) / len(named) > 0.95


def test_overlapping_categories_hold_their_precision_by_naming_fewer():
    x, labels = _states(spread=0.3)
    model = fit_categories(x, labels, target_precision=0.9)
    s = model.stats
    assert s["cv_accuracy"] < 0.9 and 0 < s["cv_coverage"] < 1 and s["cv_named_accuracy"] >= 0.9
    nx, nl = _states(spread=0.3, noise_seed=1)
    named = _named(model, nx, nl)
    assert len(named) > 0.3 * len(nl) and sum(named) / len(named) >= 0.85  # out of sample, near its target


def test_groups_keep_copies_of_a_prompt_in_one_fold():
    x, labels = _states(n_per=20)
    twice = torch.cat([x, x])  # every prompt twice (a plain prompt and its "wrapped" copy)
    leaky = fit_categories(twice, labels + labels, folds=2)
    fair = fit_categories(twice, labels + labels, folds=2, groups=list(range(len(labels))) * 2)
    assert leaky.stats["cv_accuracy"] >= fair.stats["cv_accuracy"]


def test_latent_ring_blocks_carry_a_category_only_when_confident(tmp_path):
    from layerguard.guard.probe import LogisticProbe
    from layerguard.guard.rings.latent import LatentGuardModel, LatentRing
    from layerguard.guard.types import Exchange

    d = 8
    weight = torch.zeros(d, 2)
    weight[0, 0], weight[1, 1] = 4.0, 4.0
    cats = CategoryModel(["S1", "S2"], torch.zeros(d), torch.ones(d), weight, torch.zeros(2), min_confidence=0.9)
    scorer = LogisticProbe(torch.zeros(1), 5.0, torch.zeros(1), torch.ones(1))  # always harmful
    model = LatentGuardModel(
        layer=1, variant="centroid", direction=torch.eye(d)[2], scorer=scorer, threshold=0.5, category_model=cats
    )
    model.save(tmp_path)
    back = LatentGuardModel.load(tmp_path)
    assert back.category_model is not None and back.category_model.min_confidence == 0.9
    assert torch.equal(back.categories(torch.eye(d)[:2]), model.categories(torch.eye(d)[:2]))
    ring = LatentRing(back)

    def check(v: list[float]):
        return ring.check(Exchange.from_prompt("x", activations={ring.reads[0]: torch.tensor(v + [0.0] * (d - 2))}))

    clear, unsure = check([1.0, 0.0]), check([1.0, 0.9])  # p(S1) = 0.98 vs 0.60
    assert clear.decision == "block" and clear.category == "S1"
    assert unsure.decision == "block" and unsure.category is None
    assert unsure.details["nearest_category"] == "S1" and "not sure" in unsure.explanation
