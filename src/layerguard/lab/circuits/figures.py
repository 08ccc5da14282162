"""Figures of the circuit tools: layer x head and layer x position heatmaps, knock-out cascade, cipher contrast."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def heatmap(
    values: Sequence[Sequence[float]],
    path: Path,
    *,
    title: str,
    ylabels: Sequence[Any],
    xlabels: Sequence[Any],
    xlabel: str,
    ylabel: str = "layer",
    cbar: str = "",
) -> Path:
    """A diverging heatmap (rows = ``ylabels``), centred on 0."""
    import numpy as np

    plt = _plt()
    arr = np.asarray(values, dtype=float)
    lim = float(np.nanmax(np.abs(arr))) or 1.0
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * arr.shape[1] + 2), max(3.0, 0.22 * arr.shape[0] + 1.2)))
    im = ax.imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", origin="lower")
    ax.set_yticks(range(len(ylabels)), [str(y) for y in ylabels], fontsize=6)
    ax.set_xticks(range(len(xlabels)), [str(x) for x in xlabels], fontsize=6, rotation=45 if len(xlabels) > 9 else 0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(im, ax=ax, label=cbar)
    return _save(fig, path)


def cascade_plot(res: dict[str, Any], path: Path, title: str) -> Path:
    """Mean refusal log-odds vs k: top-k heads ablated, and the random k-sets (median, 5-95% band)."""
    import numpy as np

    plt = _plt()
    ks = res["ks"]
    rand = np.asarray(res["random"], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(ks, res["top"], marker="o", color="C3", label="top-k heads by attribution")
    ax.plot(ks, np.median(rand, 1), marker="s", color="C0", label=f"k random heads (median of {rand.shape[1]})")
    ax.fill_between(ks, np.quantile(rand, 0.05, 1), np.quantile(rand, 0.95, 1), color="C0", alpha=0.2, label="5-95%")
    ax.axhline(res["baseline"], color="grey", ls="--", lw=0.8, label="nothing ablated")
    ax.axhline(0, color="black", lw=0.4)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="heads ablated (k)", ylabel="mean refusal log-odds (harmful)", title=title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def cipher_plots(res: dict[str, Any], out: Path, model: str) -> list[Path]:
    """The harmfulness read per layer for each encoding, and the refusal log-odds per injected layer."""
    plt = _plt()
    paths = []
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for enc, e in res["encodings"].items():
        (line,) = ax.plot(e["read_mean"], marker=".", label=f"harmful, {enc}")
        if "harmless_read_mean" in e:
            ax.plot(e["harmless_read_mean"], ls=":", color=line.get_color(), label=f"harmless, {enc}")
    if "harmless_plaintext_read_mean" in res:
        ax.plot(res["harmless_plaintext_read_mean"], ls="--", color="grey", label="harmless, plaintext")
    ax.axvline(res["detection_layer"], color="black", lw=0.5)
    ax.set(xlabel="layer", ylabel="projection on harmfulness (t_inst)", title=f"{model}: harmfulness read")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "cipher_read.png"))
    # raw log-odds, not the restoration ratio: that ratio explodes when an encoding barely
    # lowers refusal (base64 on qwen: a gap of 0.05 log-odds)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    plain = res["encodings"].get("plaintext", {}).get("refusal_log_odds_mean")
    for enc, e in res["encodings"].items():
        inj = e.get("inject")
        if inj:
            (line,) = ax.plot(inj["layers"], inj["log_odds_mean"], marker=".", label=f"{enc}, plaintext injected")
            ax.axhline(e["refusal_log_odds_mean"], color=line.get_color(), ls=":", lw=0.8)
    if plain is not None:
        ax.axhline(plain, color="black", ls="--", lw=0.8, label="plaintext, no injection")
    ax.axhline(0, color="black", lw=0.4)
    ax.set(
        xlabel="layer injected (resid_pre at t_inst + post-inst)",
        ylabel="mean refusal log-odds",
        title=f"{model}: plaintext injected into the encoded pass\n(dotted: encoded, nothing injected)",
    )
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "cipher_inject.png"))
    return paths
