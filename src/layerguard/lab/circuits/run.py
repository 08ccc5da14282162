"""The circuit studies behind ``layerguard lab patch|heads|interchange|cipher``: JSON plus figures in a directory.

Every result file records the model, the refusal tokens, the seed, the data and the
layerguard version. Data are the project's own matched sets (harmful/harmless pairs share
an index); nothing from a held-out benchmark.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerguard.data.builtin import load_builtin
from layerguard.data.heldout import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.directions.refusal import RefusalTokens, derive_refusal_tokens
from layerguard.errors import InvalidInputError
from layerguard.lab.circuits import figures
from layerguard.lab.circuits.engine import encode_pairs
from layerguard.models.handle import LoadedModel
from layerguard.version import __version__

Log = Callable[[str], None]


@dataclass
class CircuitData:
    """Harmful prompts and their matched harmless prompts (same index = same pair)."""

    harmful: list[Sample]
    harmless: list[Sample]
    train_harmful: list[Sample]
    train_harmless: list[Sample]
    source: str = "builtin"


def default_data(n: int, offset: int = 0) -> CircuitData:
    """``n`` matched validation pairs from the project's sets, and the training sets."""
    h, b = load_builtin("harmful", "val"), load_builtin("harmless", "val")
    if n < 1 or offset + n > min(len(h), len(b)):
        raise InvalidInputError(f"asked for {n} pairs from offset {offset}; there are {min(len(h), len(b))}")
    return CircuitData(
        h[offset : offset + n],
        b[offset : offset + n],
        load_builtin("harmful", "train"),
        load_builtin("harmless", "train"),
    )


def refusal_tokens(lm: LoadedModel, data: CircuitData, n_prompts: int = 64, log: Log = print) -> RefusalTokens:
    """The model's refusal-opening tokens from its answers to training prompts (as ``lab select`` derives them)."""
    prompts = [s.prompt for s in data.train_harmful[:n_prompts] + data.train_harmless[: n_prompts // 2]]
    log(f"deriving refusal tokens from {len(prompts)} answers ...")
    tokens = derive_refusal_tokens(lm, prompts, progress=None)
    log(f"refusal tokens: {list(tokens.strings)}")
    return tokens


def _header(lm: LoadedModel, tokens: RefusalTokens, seed: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": lm.describe(),
        "refusal_tokens": {"ids": list(tokens.ids), "tokens": list(tokens.strings), **tokens.stats},
        "seed": seed,
        "layerguard_version": __version__,
        "command": " ".join(sys.argv),
        **extra,
    }


def _write(out: Path, name: str, res: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(res, indent=2, default=float))
    return path


def check_out(out: Path, name: str) -> None:
    """Refuse to overwrite an earlier result."""
    if (out / name).exists():
        raise InvalidInputError(f"{out / name} already exists", hint="choose a new --out directory")


def _prompts(samples: Sequence[Sample]) -> list[str]:
    return [s.prompt for s in samples]


def run_patch(
    lm: LoadedModel,
    out: Path,
    data: CircuitData,
    tokens: RefusalTokens,
    *,
    kinds: Sequence[str],
    positions: Sequence[str],
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    log: Log = print,
) -> dict[str, Any]:
    """Patch harmful (clean) activations into the matched harmless (corrupted) runs: ``patch.json`` + heatmaps."""
    from layerguard.lab.circuits.patching import patch_sweep

    check_out(out, "patch.json")
    assert_not_held_out([*data.harmful, *data.harmless], "activation patching")
    t = time.time()
    pairs = encode_pairs(lm, _prompts(data.harmful), _prompts(data.harmless), positions)
    res = patch_sweep(lm, pairs, tokens, kinds=kinds, layers=layers, batch_size=batch_size, progress=None)
    body = _header(lm, tokens, 0, {"clean": "harmful", "corrupted": "matched harmless", "positions": list(positions)})
    body["patch"] = res.to_json()
    body["duration_s"] = round(time.time() - t, 1)
    _write(out, "patch.json", body)
    name = lm.name
    for kind in res.patched:
        norm = res.normalized(kind)
        if kind == "heads":
            figures.heatmap(
                norm.tolist(),
                out / "patch_heads.png",
                title=f"{name}: patching each head (all columns)",
                ylabels=res.layers,
                xlabels=list(range(norm.shape[1])),
                xlabel="head",
                cbar="restored",
            )
        elif kind == "heads_by_pos":
            flat = norm.reshape(norm.shape[0], -1).tolist()
            xl = [f"{h}@{lab}" for h in range(norm.shape[1]) for lab in res.labels]
            figures.heatmap(
                flat,
                out / "patch_heads_by_pos.png",
                title=f"{name}: patching each head at each column",
                ylabels=res.layers,
                xlabels=xl,
                xlabel="head@position",
                cbar="restored",
            )
        else:
            figures.heatmap(
                norm.tolist(),
                out / f"patch_{kind}.png",
                title=f"{name}: patching {kind}",
                ylabels=res.layers,
                xlabels=res.labels,
                xlabel="position",
                cbar="restored",
            )
    log(
        f"patched {len(pairs)} pairs in {body['duration_s']} s; clean {body['patch']['clean_mean']:.2f}, "
        f"corrupted {body['patch']['corrupted_mean']:.2f}"
    )
    return body


def run_heads(
    lm: LoadedModel,
    out: Path,
    data: CircuitData,
    tokens: RefusalTokens,
    *,
    ks: Sequence[int] | None = None,
    n_random: int = 20,
    mode: str = "zero",
    seed: int = 0,
    batch_size: int = 32,
    log: Log = print,
) -> dict[str, Any]:
    """Direct attribution of every head (harmful minus harmless) and the knock-out cascade: ``heads.json`` + PNGs."""
    from layerguard.lab.circuits.attribution import direct_attribution, rank_heads
    from layerguard.lab.circuits.knockout import knockout_cascade, mean_z

    check_out(out, "heads.json")
    if mode not in ("zero", "mean"):
        raise InvalidInputError(f"unknown ablation {mode!r}", hint="use zero or mean")
    assert_not_held_out([*data.harmful, *data.harmless], "head attribution")
    t = time.time()
    log("direct attribution ...")
    att_h = direct_attribution(lm, _prompts(data.harmful), tokens, progress=None)
    att_b = direct_attribution(lm, _prompts(data.harmless), tokens, progress=None)
    diff = att_h.heads.mean(0) - att_b.heads.mean(0)  # [n_layers, n_heads]
    ranking = rank_heads(diff)
    means = mean_z(lm, _prompts(data.harmless)) if mode == "mean" else None
    log("knock-out cascade ...")
    casc = knockout_cascade(
        lm,
        _prompts(data.harmful),
        tokens,
        ranking,
        ks=ks,
        n_random=n_random,
        seed=seed,
        means=means,
        batch_size=batch_size,
        progress=None,
    )
    top = [(int(layer), int(h)) for layer, h in ranking[:16]]
    body = _header(lm, tokens, seed, {"n_pairs": len(data.harmful)})
    body["attribution"] = {
        "harmful": att_h.to_json(),
        "harmless": att_b.to_json(),
        "heads_diff": diff.tolist(),
        "mlps_diff": (att_h.mlps.mean(0) - att_b.mlps.mean(0)).tolist(),
        "top_heads": [{"head": f"{layer}.{h}", "diff": float(diff[layer, h])} for layer, h in top],
    }
    body["knockout"] = casc.to_json()
    body["duration_s"] = round(time.time() - t, 1)
    _write(out, "heads.json", body)
    figures.heatmap(
        diff.tolist(),
        out / "dla_heads.png",
        title=f"{lm.name}: direct attribution, harmful - harmless",
        ylabels=list(range(diff.shape[0])),
        xlabels=list(range(diff.shape[1])),
        xlabel="head",
        cbar="refusal log-odds",
    )
    figures.cascade_plot(body["knockout"], out / "knockout.png", f"{lm.name}: knock-out cascade ({mode} ablation)")
    log(f"top heads: {', '.join(x['head'] for x in body['attribution']['top_heads'][:8])}")
    return body


def run_interchange(
    lm: LoadedModel,
    out: Path,
    data: CircuitData,
    tokens: RefusalTokens,
    heads: Sequence[tuple[int, int]],
    *,
    positions: Sequence[str] = ("t_inst", "post_inst"),
    n_random: int = 100,
    seed: int = 0,
    batch_size: int = 64,
    log: Log = print,
) -> dict[str, Any]:
    """Swap the heads' outputs between matched harmful and harmless prompts: ``interchange.json`` + a histogram."""
    from layerguard.lab.circuits.knockout import interchange_test

    check_out(out, "interchange.json")
    assert_not_held_out([*data.harmful, *data.harmless], "an interchange test")
    t = time.time()
    pairs = encode_pairs(lm, _prompts(data.harmful), _prompts(data.harmless), positions)
    res = interchange_test(lm, pairs, tokens, heads, n_random=n_random, seed=seed, batch_size=batch_size)
    body = _header(lm, tokens, seed, {"positions": pairs.labels})
    body["interchange"] = res.to_json()
    body["duration_s"] = round(time.time() - t, 1)
    _write(out, "interchange.json", body)
    plt = figures._plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(res.random_effects, bins=30, color="C0", alpha=0.7, label=f"{n_random} random sets of {len(heads)}")
    ax.axvline(res.effect, color="C3", label=f"candidate heads (p = {res.p_value:.3f})")
    ax.set(xlabel="interchange effect (refusal log-odds)", ylabel="count", title=f"{lm.name}: interchange test")
    ax.legend(fontsize=7)
    figures._save(fig, out / "interchange.png")
    log(
        f"effect {res.effect:.3f} (harmful drop {res.harmful_drop:.3f}, harmless rise {res.harmless_rise:.3f}), "
        f"p = {res.p_value:.3f}"
    )
    return body


def run_cipher(
    lm: LoadedModel,
    out: Path,
    data: CircuitData,
    tokens: RefusalTokens,
    *,
    encodings: Sequence[str],
    n_train: int = 64,
    batch_size: int = 8,
    log: Log = print,
) -> dict[str, Any]:
    """Plaintext vs encoded harmful requests: ``cipher.json`` + ``cipher_read.png`` + ``cipher_inject.png``."""
    from layerguard.lab.circuits.cipher import cipher_contrast

    check_out(out, "cipher.json")
    t = time.time()
    res = cipher_contrast(
        lm,
        data.harmful,
        tokens,
        train_harmful=data.train_harmful[:n_train],
        train_harmless=data.train_harmless[:n_train],
        harmless=data.harmless,
        encodings=encodings,
        batch_size=batch_size,
        progress=None,
    )
    body = _header(lm, tokens, 0, {"n_train_per_side": n_train})
    body["cipher"] = res
    body["duration_s"] = round(time.time() - t, 1)
    _write(out, "cipher.json", body)
    figures.cipher_plots(res, out, lm.name)
    for enc, e in res["encodings"].items():
        log(
            f"{enc:10s} read>thr {e['read_above_threshold_at_detection']:.2f}  refusal {e['refusal_rate']:.2f} "
            f"(log-odds {e['refusal_log_odds_mean']:.2f})"
        )
    return body
