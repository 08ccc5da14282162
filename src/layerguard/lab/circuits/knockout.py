"""Causal tests of a head set: the interchange test and the knock-out cascade.

- **Interchange**: run each harmful prompt with the candidate heads' outputs (``attn.z``)
  taken from its matched harmless prompt at the patched columns, and each harmless prompt
  with them taken from the harmful one. The effect is the mean of the harmful prompts'
  drop and the harmless prompts' rise in refusal log-odds. Its p-value is the share of
  random head sets of the same size whose effect is at least as large (permutation test,
  ``(1 + #{random >= observed}) / (1 + n_random)``).
- **Knock-out cascade**: ablate the top-k heads of a ranking (k = 1, 2, 4, ...) at every
  position and measure refusal on harmful prompts; compare with k random heads.
  Ablation sets a head's ``z`` to zero, or to its mean over reference prompts (``mean``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from layerguard.activations.heads import CircuitHook, HeadLayout
from layerguard.directions.refusal import RefusalTokens
from layerguard.errors import InvalidInputError
from layerguard.lab.circuits.engine import Edit, PromptPairs, capture_prompt, run_variants
from layerguard.models.handle import LoadedModel
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar

Head = tuple[int, int]


def random_head_sets(layout: HeadLayout, k: int, n: int, seed: int) -> list[list[Head]]:
    """``n`` sets of ``k`` distinct heads drawn uniformly (seeded)."""
    import torch

    if not 1 <= k <= layout.n_total_heads:
        raise InvalidInputError(f"cannot draw {k} of {layout.n_total_heads} heads")
    g = torch.Generator().manual_seed(seed)
    sets = []
    for _ in range(n):
        idx = torch.randperm(layout.n_total_heads, generator=g)[:k].tolist()
        sets.append(sorted((i // layout.n_heads, i % layout.n_heads) for i in idx))
    return sets


def _swap_edits(heads: Sequence[Head], donor: dict[str, Any], dcols: list[int], rcols: list[int]) -> list[Edit]:
    edits = []
    for layer, h in heads:
        hook = CircuitHook(layer, "attn.z")
        edits.append(Edit(hook, tuple(rcols), donor[hook.name][dcols, h], head=h))
    return edits


@dataclass
class InterchangeResult:
    """The observed effect, the random sets' effects and the permutation p-value."""

    heads: list[Head]
    effect: float  # mean of (harmful drop, harmless rise) in log-odds
    harmful_drop: float
    harmless_rise: float
    flips_harmful: int  # refused (log-odds > 0) before, not after
    flips_harmless: int  # not refused before, refused after
    n_pairs: int
    random_effects: list[float]
    p_value: float
    seed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def interchange_test(
    lm: LoadedModel,
    pairs: PromptPairs,
    tokens: RefusalTokens,
    heads: Sequence[Head],
    *,
    n_random: int = 100,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool | None = None,
) -> InterchangeResult:
    """Swap ``heads``' outputs between each clean (harmful) and corrupted (harmless) prompt of ``pairs``."""
    import torch

    layout = HeadLayout.of(lm)
    heads = layout.check_heads(heads)
    if not heads:
        raise InvalidInputError("no heads to interchange", hint="pass at least one LAYER.HEAD")
    sets = [heads, *random_head_sets(layout, len(heads), n_random, seed)]
    names = sorted({CircuitHook(layer, "attn.z").name for s in sets for layer, _ in s})
    n = len(pairs)
    drop, rise = torch.empty(n, len(sets)), torch.empty(n, len(sets))
    flips = [0, 0]
    with progress_bar(total=n, desc="interchange", unit="pair", enabled=progress) as bar:
        for i in range(n):
            hc, bc = pairs.clean_cols[i], pairs.corrupted_cols[i]
            _, harm = capture_prompt(lm, pairs.clean[i].input_ids, names)
            _, harmless = capture_prompt(lm, pairs.corrupted[i].input_ids, names)
            on_h = run_variants(
                lm,
                pairs.clean[i].input_ids,
                [[], *(_swap_edits(s, harmless, bc, hc) for s in sets)],
                tokens,
                batch_size=batch_size,
            )
            on_b = run_variants(
                lm,
                pairs.corrupted[i].input_ids,
                [[], *(_swap_edits(s, harm, hc, bc) for s in sets)],
                tokens,
                batch_size=batch_size,
            )
            drop[i], rise[i] = on_h[0] - on_h[1:], on_b[1:] - on_b[0]
            flips[0] += int(on_h[0] > 0 and on_h[1] <= 0)
            flips[1] += int(on_b[0] <= 0 and on_b[1] > 0)
            bar.update(1)
    effects = ((drop + rise) / 2).mean(0)  # [n_sets]
    observed, rand = float(effects[0]), effects[1:].tolist()
    return InterchangeResult(
        heads=heads,
        effect=observed,
        harmful_drop=float(drop[:, 0].mean()),
        harmless_rise=float(rise[:, 0].mean()),
        flips_harmful=flips[0],
        flips_harmless=flips[1],
        n_pairs=n,
        random_effects=rand,
        p_value=(1 + sum(r >= observed for r in rand)) / (1 + len(rand)),
        seed=seed,
    )


def mean_z(lm: LoadedModel, prompts: Sequence[ConversationLike]) -> dict[int, Any]:
    """Each layer's mean ``z`` over every token of ``prompts``: ``{layer: [head, d_head]}``."""
    names = [CircuitHook(layer, "attn.z").name for layer in range(lm.n_layers)]
    sums: dict[int, Any] = {}
    count = 0
    for p in prompts:
        _, cache = capture_prompt(lm, lm.encode(p, find_instruction=False).input_ids, names)
        for layer in range(lm.n_layers):
            z = cache[names[layer]].sum(0)
            sums[layer] = z if layer not in sums else sums[layer] + z
        count += cache[names[0]].shape[0]
    return {layer: s / count for layer, s in sums.items()}


def knockout_edits(heads: Sequence[Head], means: dict[int, Any] | None = None) -> list[Edit]:
    """Edits ablating ``heads`` at every position (zero, or the mean ``z`` when ``means`` is given)."""
    return [
        Edit(CircuitHook(layer, "attn.z"), None, None if means is None else means[layer][h], head=h)
        for layer, h in heads
    ]


def default_ks(n_total: int, k_max: int | None = None) -> list[int]:
    """1, 2, 4, ... up to ``k_max`` (default: a quarter of all heads)."""
    top = k_max or max(1, n_total // 4)
    ks, k = [], 1
    while k <= top:
        ks.append(k)
        k *= 2
    return ks


@dataclass
class CascadeResult:
    """Refusal on harmful prompts with the top-k heads ablated vs k random heads."""

    ks: list[int]
    ranking: list[Head]
    baseline: float  # mean log-odds, nothing ablated
    baseline_rate: float  # share with log-odds > 0
    top: list[float]
    top_rate: list[float]
    random: list[list[float]]  # [k][draw] mean log-odds
    random_rate: list[list[float]]
    p_values: list[float]  # share of random draws at least as low as the top-k
    mode: str
    n_prompts: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def knockout_cascade(
    lm: LoadedModel,
    prompts: Sequence[ConversationLike],
    tokens: RefusalTokens,
    ranking: Sequence[Head],
    *,
    ks: Sequence[int] | None = None,
    n_random: int = 20,
    seed: int = 0,
    means: dict[int, Any] | None = None,
    batch_size: int = 32,
    progress: bool | None = None,
) -> CascadeResult:
    """Ablate the top-k heads of ``ranking`` for each k, and ``n_random`` random k-sets, on ``prompts``."""
    import torch

    layout = HeadLayout.of(lm)
    ranking = layout.check_heads(ranking)
    ks = list(ks) if ks is not None else [k for k in default_ks(layout.n_total_heads) if k <= len(ranking)]
    if not ks or max(ks) > len(ranking) or min(ks) < 1:
        raise InvalidInputError(f"k must be within 1..{len(ranking)} (the ranked heads)", hint="e.g. --ks 1,2,4,8")
    rand = [random_head_sets(layout, k, n_random, seed + k) for k in ks]
    variants: list[list[Edit]] = [[]] + [knockout_edits(ranking[:k], means) for k in ks]
    variants += [knockout_edits(s, means) for sets in rand for s in sets]
    scores = torch.empty(len(prompts), len(variants))
    with progress_bar(total=len(prompts), desc="knock-out", unit="prompt", enabled=progress) as bar:
        for i, p in enumerate(prompts):
            ids = lm.encode(p, find_instruction=False).input_ids
            scores[i] = run_variants(lm, ids, variants, tokens, batch_size=batch_size)
            bar.update(1)
    mean, refused = scores.mean(0), (scores > 0).float().mean(0)
    nk = len(ks)
    r_mean = mean[1 + nk :].view(nk, n_random)
    r_rate = refused[1 + nk :].view(nk, n_random)
    top = mean[1 : 1 + nk]
    return CascadeResult(
        ks=ks,
        ranking=list(ranking),
        baseline=float(mean[0]),
        baseline_rate=float(refused[0]),
        top=top.tolist(),
        top_rate=refused[1 : 1 + nk].tolist(),
        random=r_mean.tolist(),
        random_rate=r_rate.tolist(),
        p_values=[float((1 + (r_mean[j] <= top[j]).sum()) / (1 + n_random)) for j in range(nk)],
        mode="zero" if means is None else "mean",
        n_prompts=len(prompts),
        seed=seed,
    )
