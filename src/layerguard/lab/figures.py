"""The lab's figure set: PNGs plus the numbers behind them (``results.json``) and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(r: dict[str, Any]) -> str:
    return f"{r['rate']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}] (n={r['n']})"


def write_figures(res: dict[str, Any], out: Path) -> list[Path]:
    """Write cosine, AUROC and ablation-per-layer plots and ``summary.md``; return the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    geo = res["geometry"]
    n_layers = len(geo["cosine_harmfulness_refusal"])
    layers = list(range(n_layers))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(layers, geo["cosine_harmfulness_refusal"], marker="o", label="harmfulness vs refusal (harmful-harmless)")
    if "cosine_harmfulness_behavioural" in geo:
        ax.plot(
            layers, geo["cosine_harmfulness_behavioural"], marker="s", label="harmfulness vs refusal (refused-complied)"
        )
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="layer", ylabel="cosine", title=f"{res['model']['name']}: cosine between directions per layer")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "cosine_per_layer.png"))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, values in geo["auroc"].items():
        ax.plot(layers, values, marker=".", label=label)
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set(xlabel="layer", ylabel="AUROC", ylim=(0, 1.02), title="separation on validation prompts per layer")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "auroc_per_layer.png"))

    sel = res["selection"]
    pos = sel["chosen"]["position"]
    rows = sorted((c for c in sel["candidates"] if c["position"] == pos), key=lambda c: c["layer"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([c["layer"] for c in rows], [c["bypass"] for c in rows], marker="o", label="harmful, refusal ablated")
    ax.plot([c["layer"] for c in rows], [c["induce"] for c in rows], marker="s", label="harmless, refusal added")
    ax.axhline(sel["baseline"]["harmful"], color="C0", ls="--", lw=0.8, label="harmful, baseline")
    ax.axhline(sel["baseline"]["harmless"], color="C1", ls="--", lw=0.8, label="harmless, baseline")
    ax.axvline(sel["chosen"]["layer"], color="grey", lw=0.5)
    ax.set(xlabel="layer of the direction", ylabel="refusal log-odds", title=f"refusal score by layer ({pos})")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "refusal_score_per_layer.png"))

    (out / "summary.md").write_text(summary_markdown(res))
    return paths


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def summary_markdown(res: dict[str, Any]) -> str:
    """A readable summary of a study's results."""
    geo, causal = res["geometry"], res["causal"]
    cos = geo["cosine_harmfulness_refusal"]
    low = geo["lowest_cosine_layers"]
    inv = causal["reply_inversion_harmless"]
    lines = [
        f"# Lab study: {res['model']['model_id']}",
        "",
        f"- refusal tokens (derived from {res['refusal_tokens']['n_prompts']} answers, "
        f"{res['refusal_tokens']['n_refused']} refusals): {res['refusal_tokens']['tokens']}",
        f"- refusal score vs generated text: accuracy {res['score_vs_generation']['accuracy']:.3f}, "
        f"AUROC {res['score_vs_generation']['auroc']:.3f}",
        f"- baseline refusal: harmful {_fmt(res['baseline']['harmful']['refusal'])}, "
        f"harmless {_fmt(res['baseline']['harmless']['refusal'])}, "
        f"borderline {_fmt(res['baseline']['borderline']['refusal'])}",
        f"- cosine(harmfulness, refusal): min |cos| at layers {low} "
        f"({', '.join(f'{cos[i]:.3f}' for i in low)}); mean over layers 1+: "
        f"{sum(cos[1:]) / max(1, len(cos) - 1):.3f}",
        f"- selection: {res['selection']['explanation']}",
        f"- ablating the refusal direction, refusal on harmful: {_fmt(causal['ablation_harmful']['before'])} -> "
        f"{_fmt(causal['ablation_harmful']['after'])}",
        f"- adding the refusal direction, refusal on harmless: {_fmt(causal['addition_harmless']['before'])} -> "
        f"{_fmt(causal['addition_harmless']['after'])}",
        "- reply inversion on harmless prompts (judged harmful / refused):",
    ]
    for cond, r in inv.items():
        lines.append(f"  - {cond}: judged harmful {_fmt(r['judged_harmful'])}; refused {_fmt(r['refusal'])}")
    jh = causal["judgement_harmful"]
    lines.append(
        f"- harmful prompts judged harmful: baseline {_fmt(jh['none'])}, refusal ablated {_fmt(jh['ablate_refusal'])}"
    )
    lines.append(f"- duration: {res['duration_s']} s")
    return "\n".join(lines) + "\n"
