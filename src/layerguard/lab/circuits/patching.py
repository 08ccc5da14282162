"""Activation patching, clean -> corrupted, at every hook type; the metric is the refusal log-odds.

For each pair, the clean prompt (e.g. harmful, refused) runs once and its activations are
kept at the patched columns; the corrupted prompt (e.g. the matched harmless one) then runs
once per site with the clean activation written in at that site. A site is a (layer,
position) of ``resid_pre``, ``resid_post``, ``attn_out`` or ``mlp_out``, or a (layer, head)
of ``attn.z`` at every patched column together (and, optionally, per column). All sites of
one pair run as rows of a few batches (:func:`layerguard.lab.circuits.engine.run_variants`).

The effect is reported raw (mean patched log-odds) and normalised:
``(patched - corrupted) / (clean - corrupted)``: 0 = no effect, 1 = the clean refusal restored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.activations.heads import CircuitHook, HeadLayout
from layerguard.activations.hooks import check_layers
from layerguard.directions.refusal import RefusalTokens, log_odds
from layerguard.errors import InvalidInputError
from layerguard.lab.circuits.engine import Edit, PromptPairs, capture_prompt, run_variants
from layerguard.models.handle import LoadedModel
from layerguard.progress import progress_bar

STREAM_KINDS = ("resid_pre", "resid_post", "attn_out", "mlp_out")
KINDS = (*STREAM_KINDS, "heads", "heads_by_pos")


@dataclass
class PatchResult:
    """Refusal log-odds of every patched run.

    Attributes:
        layers: The layers swept.
        labels: The patched columns (e.g. ``t_inst``, ``post_inst[0]``).
        clean: Clean log-odds per pair.
        corrupted: Corrupted (unpatched) log-odds per pair.
        patched: kind -> ``[n_pairs, n_layers, n_labels]`` (stream kinds),
            ``[n_pairs, n_layers, n_heads]`` (``heads``: every column at once) or
            ``[n_pairs, n_layers, n_heads, n_labels]`` (``heads_by_pos``).
    """

    layers: list[int]
    labels: list[str]
    clean: Any
    corrupted: Any
    patched: dict[str, Any] = field(default_factory=dict)

    def mean(self, kind: str) -> Any:
        """Mean patched log-odds over pairs."""
        return self.patched[kind].mean(0)

    def normalized(self, kind: str) -> Any:
        """``(patched - corrupted) / (clean - corrupted)`` on the means over pairs."""
        c, x = float(self.clean.mean()), float(self.corrupted.mean())
        gap = c - x
        if abs(gap) < 1e-6:
            raise InvalidInputError(
                "clean and corrupted prompts have the same mean refusal log-odds; nothing to restore",
                hint="pair prompts the model treats differently (e.g. harmful vs matched harmless)",
            )
        return (self.mean(kind) - x) / gap

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "layers": self.layers,
            "labels": self.labels,
            "n_pairs": int(self.clean.shape[0]),
            "clean_mean": float(self.clean.mean()),
            "corrupted_mean": float(self.corrupted.mean()),
            "clean": self.clean.tolist(),
            "corrupted": self.corrupted.tolist(),
            "kinds": {},
        }
        for kind in self.patched:
            out["kinds"][kind] = {"mean": self.mean(kind).tolist(), "normalized": self.normalized(kind).tolist()}
        return out


def _check_kinds(kinds: Sequence[str]) -> list[str]:
    for k in kinds:
        if k not in KINDS:
            raise InvalidInputError(f"unknown patch kind {k!r}", hint=f"use any of {', '.join(KINDS)}")
    if not kinds:
        raise InvalidInputError("no patch kinds given", hint=f"use any of {', '.join(KINDS)}")
    return list(kinds)


def _variants(
    kinds: list[str], layers: list[int], n_heads: int, cache: dict[str, Any], ccols: list[int], xcols: list[int]
) -> tuple[list[list[Edit]], list[tuple[str, tuple[int, ...]]]]:
    """Every site's edit list for one pair, and where its score goes (kind, index into the result)."""
    variants: list[list[Edit]] = []
    where: list[tuple[str, tuple[int, ...]]] = []
    for kind in kinds:
        for li, layer in enumerate(layers):
            if kind in STREAM_KINDS:
                hook = CircuitHook(layer, kind)
                clean = cache[hook.name]  # [pos, d_model]
                for j, (c, x) in enumerate(zip(ccols, xcols, strict=True)):
                    variants.append([Edit(hook, (x,), clean[c : c + 1])])
                    where.append((kind, (li, j)))
                continue
            hook = CircuitHook(layer, "attn.z")
            z = cache[hook.name]  # [pos, head, d_head]
            for h in range(n_heads):
                if kind == "heads":
                    variants.append([Edit(hook, tuple(xcols), z[ccols, h], head=h)])
                    where.append((kind, (li, h)))
                else:
                    for j, (c, x) in enumerate(zip(ccols, xcols, strict=True)):
                        variants.append([Edit(hook, (x,), z[c : c + 1, h], head=h)])
                        where.append((kind, (li, h, j)))
    return variants, where


def patch_sweep(
    lm: LoadedModel,
    pairs: PromptPairs,
    tokens: RefusalTokens,
    *,
    kinds: Sequence[str] = ("resid_pre", "attn_out", "mlp_out", "heads"),
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> PatchResult:
    """Patch clean activations into the corrupted runs at every site of the given kinds.

    Args:
        lm: The model.
        pairs: From :func:`layerguard.lab.circuits.engine.encode_pairs`.
        tokens: The refusal tokens of the metric.
        kinds: ``resid_pre``, ``resid_post``, ``attn_out``, ``mlp_out`` (per layer and column),
            ``heads`` (per layer and head, all columns at once), ``heads_by_pos``.
        layers: Layers to sweep (default: all).
        batch_size: Patched runs per forward pass.
        progress: Show a progress bar over pairs.

    Raises:
        InvalidInputError: unknown kinds or layers out of range.
    """
    import torch

    kinds = _check_kinds(kinds)
    layout = HeadLayout.of(lm)
    layers = check_layers(list(range(lm.n_layers)) if layers is None else list(layers), lm.n_layers)
    n, n_l, n_p, n_h = len(pairs), len(layers), len(pairs.labels), layout.n_heads
    shapes = {k: (n, n_l, n_p) for k in STREAM_KINDS} | {"heads": (n, n_l, n_h), "heads_by_pos": (n, n_l, n_h, n_p)}
    patched = {k: torch.empty(shapes[k]) for k in kinds}
    clean_s, corr_s = torch.empty(n), torch.empty(n)
    names = sorted({CircuitHook(layer, k if k in STREAM_KINDS else "attn.z").name for k in kinds for layer in layers})
    with progress_bar(total=n, desc="patching", unit="pair", enabled=progress) as bar:
        for i in range(n):
            logits, cache = capture_prompt(lm, pairs.clean[i].input_ids, names)
            clean_s[i] = log_odds(logits[None], tokens.ids)[0]
            variants, where = _variants(kinds, layers, n_h, cache, pairs.clean_cols[i], pairs.corrupted_cols[i])
            scores = run_variants(lm, pairs.corrupted[i].input_ids, [[], *variants], tokens, batch_size=batch_size)
            corr_s[i] = scores[0]
            for (kind, idx), s in zip(where, scores[1:], strict=True):
                patched[kind][(i, *idx)] = s
            bar.update(1)
    return PatchResult(layers, list(pairs.labels), clean_s, corr_s, patched)


def naive_head_sweep(
    lm: LoadedModel, pairs: PromptPairs, tokens: RefusalTokens, layers: Sequence[int] | None = None
) -> Any:
    """The ``heads`` sweep done the slow, obvious way: one full forward pass per pair and head.

    Kept as the reference for the benchmark and the tests (``[n_pairs, n_layers, n_heads]``).
    """
    import torch

    layout = HeadLayout.of(lm)
    layers = check_layers(list(range(lm.n_layers)) if layers is None else list(layers), lm.n_layers)
    out = torch.empty((len(pairs), len(layers), layout.n_heads))
    for i in range(len(pairs)):
        names = [CircuitHook(layer, "attn.z").name for layer in layers]
        _, cache = capture_prompt(lm, pairs.clean[i].input_ids, names)
        ids, cc, xc = pairs.corrupted[i].input_ids, pairs.clean_cols[i], pairs.corrupted_cols[i]
        for li, layer in enumerate(layers):
            hook = CircuitHook(layer, "attn.z")
            for h in range(layout.n_heads):
                edit = Edit(hook, tuple(xc), cache[hook.name][cc, h], head=h)
                out[i, li, h] = _full_forward(lm, ids, edit, tokens)
    return out


def _full_forward(lm: LoadedModel, ids: Sequence[int], edit: Edit, tokens: RefusalTokens) -> float:
    import torch

    from layerguard.activations.heads import circuit_hooks
    from layerguard.lab.circuits.engine import _apply

    def fn(hook: CircuitHook, t: Any) -> Any:
        return _apply([(0, edit)], 0, t)

    with torch.inference_mode(), circuit_hooks(lm, [edit.hook], fn):
        logits = lm.model(input_ids=torch.tensor([list(ids)]), use_cache=False).logits
    return float(log_odds(logits[:, -1], tokens.ids)[0])
