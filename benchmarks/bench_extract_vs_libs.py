"""Refusal-direction extraction: layerguard vs ``repeng`` and ``steering-vectors``, side by side.

All three methods see the same model, the same N pair-matched contrast pairs (built-in
harmful train vs the harmless prompt with the same ``meta["pair"]``) and read the same
point of the residual stream: the input of block L (layerguard's ``blocks.L.resid_pre``,
``hidden_states[L]``) at the last prompt token, i.e. the last post-instruction template
token. For each method the script reports

- wall time of the extraction (``time.perf_counter``, after an untimed warm-up on 2 pairs);
- the bypass score: mean refusal log-odds on the harmful validation prompts while the
  method's direction at layer L is ablated from every residual-stream write
  (``layerguard.activations.interventions.ablate_direction``); lower = refusal removed;
- the baseline (no ablation) and the cosine between the method's vector and layerguard's.

What each method computes:

- layerguard: ``extract_directions`` (difference in means, harmful minus harmless, at every
  layer, at ``t_inst`` and each post-instruction token); the refusal candidate at the last
  post-instruction token (``refusal@post_inst[k]``, largest k) is used.
- repeng: ``ControlVector.train(model, tokenizer, [DatasetEntry(harmful, harmless)])`` with
  its default ``method="pca_diff"`` (first principal component of the per-pair differences,
  unit norm), all layers (its default ``hidden_layers``). Note that scikit-learn's PCA centres
  the differences first, so this is the axis along which the pair differences *vary* most
  around their mean, not the mean difference itself: it need not align with the other two.
- steering-vectors: ``train_steering_vector(model, tokenizer, [(harmful, harmless)],
  read_token_index=-1, aggregator=mean_aggregator())`` (its default: mean of the per-pair
  differences = difference in means), all decoder blocks.

The libraries get the fully chat-templated prompt text (``lm.encode(prompt).text``);
rendering is inside their timed region, as layerguard's own rendering is inside its own.

Alignment and sign (checked and printed by the script):

- both libraries index by decoder block *output*: their layer i is ``hidden_states[i + 1]``
  (repeng reads ``out.hidden_states[i + 1]``; steering-vectors hooks the output of block i),
  which is the input of block i + 1. So library layer ``L - 1`` is compared with
  layerguard's layer L; the cosine at the unshifted index is also recorded in the JSON.
- repeng's PCA direction has an arbitrary sign (repeng orients it by a per-pair majority
  vote); here it is flipped, if needed, to a positive dot product with
  mean(harmful) - mean(harmless) at the same point (= layerguard's vector). Ablation is
  sign-invariant (``x - (x.r) r``), so this only affects the reported cosine.

Batch sizes: each library runs at its own default batch size (repeng 32, steering-vectors 1)
and, unless ``--no-same-batch``, again at layerguard's ``--batch-size`` for a like-for-like
timing.

Setup (benchmark-only dependencies; see requirements/bench.txt for the pins):

    pip install -c constraints.txt --no-deps -r requirements/bench.txt && pip install -c constraints.txt scikit-learn

Run:

    python benchmarks/bench_extract_vs_libs.py [--model qwen2.5-coder-0.5b] [--n-pairs 128] [--n-val 32] [--layer L]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
import torch

from layerguard.activations.interventions import ablate_direction
from layerguard.data.builtin import load_builtin
from layerguard.data.samples import Sample
from layerguard.directions.extract import extract_directions
from layerguard.directions.refusal import derive_refusal_tokens, log_odds
from layerguard.errors import InvalidInputError
from layerguard.models import load_model
from layerguard.models.generate import generate, last_logits
from layerguard.models.handle import LoadedModel


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def contrast_pairs(n: int) -> tuple[list[Sample], list[Sample]]:
    """The first ``n`` harmful train prompts and their pair-matched harmless train prompts."""
    harmless_by_pair = {s.meta["pair"]: s for s in load_builtin("harmless", "train")}
    harmful = [s for s in load_builtin("harmful", "train") if s.meta.get("pair") in harmless_by_pair][:n]
    return harmful, [harmless_by_pair[s.meta["pair"]] for s in harmful]


def render(lm: LoadedModel, samples: list[Sample]) -> list[str]:
    """Fully chat-templated prompt text (generation prompt included), as the libraries need it."""
    return [lm.encode(s.prompt, find_instruction=False).text for s in samples]


def refusal_key(directions: dict[str, Any]) -> str:
    """``refusal@post_inst[k]`` with the largest k: the last post-instruction token."""
    ks = [int(m.group(1)) for key in directions if (m := re.fullmatch(r"refusal@post_inst\[(\d+)\]", key))]
    if not ks:
        raise SystemExit(f"no refusal@post_inst[k] direction among {sorted(directions)}")
    return f"refusal@post_inst[{max(ks)}]"


# --- the three extractions: each returns {layer index in its own convention: [d_model] tensor}


def extract_layerguard(lm: LoadedModel, harmful: list[Sample], harmless: list[Sample], bs: int) -> dict[int, Any]:
    dirs = extract_directions(lm, harmful, harmless, batch_size=bs, progress=False)
    d = dirs[refusal_key(dirs)]
    return {layer: d.at(layer) for layer in range(lm.n_layers)}


def _import_repeng() -> Any:
    # repeng 0.4.0 annotates with np.float_, which NumPy 2 removed: alias it so the module imports.
    if "float_" not in np.__dict__:
        np.float_ = np.float64  # type: ignore[attr-defined]
    import repeng

    return repeng


def extract_repeng(lm: LoadedModel, harmful: list[Sample], harmless: list[Sample], bs: int | None) -> dict[int, Any]:
    repeng = _import_repeng()
    pairs = zip(render(lm, harmful), render(lm, harmless), strict=True)
    dataset = [repeng.DatasetEntry(positive=p, negative=n) for p, n in pairs]
    kw = {} if bs is None else {"batch_size": bs}
    vec = repeng.ControlVector.train(lm.model, lm.tokenizer, dataset, method="pca_diff", **kw)
    return {int(k): torch.from_numpy(np.asarray(v)) for k, v in vec.directions.items()}


def extract_steering_vectors(
    lm: LoadedModel, harmful: list[Sample], harmless: list[Sample], bs: int | None
) -> dict[int, Any]:
    from steering_vectors import mean_aggregator, train_steering_vector

    samples = list(zip(render(lm, harmful), render(lm, harmless), strict=True))
    kw = {} if bs is None else {"batch_size": bs}
    sv = train_steering_vector(
        lm.model, lm.tokenizer, samples, read_token_index=-1, aggregator=mean_aggregator(), show_progress=False, **kw
    )
    return {int(k): v.detach().float().cpu() for k, v in sv.layer_activations.items()}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def cosine(a: Any, b: Any) -> float:
    a, b = torch.as_tensor(a).double().flatten(), torch.as_tensor(b).double().flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp(min=1e-30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n-pairs", type=int, default=128, help="Contrast pairs (harmful train vs matched harmless).")
    ap.add_argument("--n-val", type=int, default=32, help="Harmful validation prompts for the bypass score.")
    ap.add_argument("--layer", type=int, help="layerguard layer (resid_pre); default 60%% of depth.")
    ap.add_argument("--batch-size", type=int, default=8, help="layerguard's batch size (and the matched rows').")
    ap.add_argument(
        "--no-same-batch", action="store_true", help="Skip the library rows re-run at layerguard's batch size."
    )
    args = ap.parse_args()

    lm = load_model(args.model, progress=False)
    layer = args.layer if args.layer is not None else int(0.6 * lm.n_layers)
    if not 1 <= layer < lm.n_layers:
        raise SystemExit(
            f"--layer must be in [1, {lm.n_layers - 1}]: the libraries read block outputs, so layer 0's input "
            "(the embeddings) has no library counterpart"
        )
    lib_layer = layer - 1  # library layer i = output of block i = hidden_states[i + 1] = resid_pre of block i + 1
    harmful, harmless = contrast_pairs(args.n_pairs)
    val = load_builtin("harmful", "val")[: args.n_val]
    val_prompts = [s.prompt for s in val]
    versions = {
        "layerguard": _version("layerguard"),
        "repeng": _version("repeng"),
        "steering-vectors": _version("steering-vectors"),
    }
    print(
        f"model {lm.model_id} ({lm.n_layers} layers, d_model {lm.d_model}, {lm.dtype}), {len(harmful)} pairs, "
        f"{len(val)} val prompts, layer {layer} (library index {lib_layer}), torch threads {torch.get_num_threads()}",
        flush=True,
    )

    # Checks on the shared read point: layerguard's last post-inst token is the last prompt token, and the
    # libraries' tokenization of the rendered text (add_special_tokens=True) gives the same ids as layerguard's.
    encoded = [lm.encode(s.prompt) for s in harmful + harmless]
    last_is_post_inst = all(p.post_inst and p.post_inst[-1] == p.n_tokens - 1 for p in encoded)
    token_mismatch = sum(list(lm.tokenizer(p.text)["input_ids"]) != list(p.input_ids) for p in encoded)

    # Shared, untimed: the refusal token set and the baseline.
    train_h, train_b = load_builtin("harmful", "train"), load_builtin("harmless", "train")
    token_prompts = [s.prompt for s in train_h[:48]] + [s.prompt for s in train_b[:24]]
    answers = generate(lm, token_prompts, max_new_tokens=24)
    try:
        tokens = derive_refusal_tokens(lm, token_prompts, responses=answers)
    except InvalidInputError as exc:  # small models rarely refuse: relax the token-set thresholds
        print(f"note: {exc}; retrying with min_count=1, min_precision=0.5")
        tokens = derive_refusal_tokens(lm, token_prompts, responses=answers, min_count=1, min_precision=0.5)
    print(f"refusal tokens {list(tokens.strings)} ({tokens.stats['n_refused']}/{tokens.stats['n_prompts']})")

    def score(vector: Any | None = None) -> float:
        if vector is None:
            return float(log_odds(last_logits(lm, val_prompts), tokens.ids).mean())
        with ablate_direction(lm, torch.as_tensor(vector).float()):
            return float(log_odds(last_logits(lm, val_prompts), tokens.ids).mean())

    baseline = score()

    methods: list[tuple[str, str, int | None, Callable[..., dict[int, Any]]]] = [
        ("layerguard", f"diff-in-means, batch {args.batch_size}", args.batch_size, extract_layerguard),
        ("repeng", "pca_diff (default), batch 32 (default)", None, extract_repeng),
        ("steering-vectors", "mean_aggregator (default), batch 1 (default)", None, extract_steering_vectors),
    ]
    if not args.no_same_batch:
        methods += [
            ("repeng", f"pca_diff, batch {args.batch_size}", args.batch_size, extract_repeng),
            (
                "steering-vectors",
                f"mean_aggregator, batch {args.batch_size}",
                args.batch_size,
                extract_steering_vectors,
            ),
        ]

    # Warm-up every code path once (2 pairs, untimed): imports, allocator, kernels.
    for _, _, bs, fn in methods:
        fn(lm, harmful[:2], harmless[:2], bs if bs is not None else 2)

    rows: list[dict[str, Any]] = []
    reference = None
    for name, how, bs, fn in methods:
        vectors, seconds = timed(lambda fn=fn, bs=bs: fn(lm, harmful, harmless, bs))
        own_index = layer if name == "layerguard" else lib_layer
        vec = vectors[own_index].float()
        if reference is None:
            reference = vec  # layerguard first: mean(harmful) - mean(harmless) at resid_pre[layer]
        flipped = bool(float(vec @ reference) < 0)
        if flipped:
            vec = -vec
        unshifted = vectors.get(layer) if name != "layerguard" else None
        rows.append(
            {
                "method": name,
                "how": how,
                "version": versions[name],
                "extract_s": round(seconds, 2),
                "bypass_score": round(score(vec), 3),
                "baseline": round(baseline, 3),
                "cosine_with_layerguard": round(cosine(vec, reference), 4),
                "sign_flipped": flipped,
                "cosine_at_unshifted_index": None if unshifted is None else round(abs(cosine(unshifted, reference)), 4),
                "norm": round(float(vec.norm()), 3),
            }
        )
        print(f"  done: {name} ({how}) in {seconds:.2f} s", flush=True)

    print()
    print(
        "| method | version | extraction seconds | bypass score (mean refusal log-odds, direction ablated) "
        "| baseline | cosine with layerguard |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} ({r['how']}) | {r['version']} | {r['extract_s']:.2f} | {r['bypass_score']:+.3f} "
            f"| {r['baseline']:+.3f} | {r['cosine_with_layerguard']:.4f} |"
        )
    print()
    result = {
        "model": lm.model_id,
        "n_pairs": len(harmful),
        "n_val": len(val),
        "layer": layer,
        "library_layer_index": lib_layer,
        "torch_threads": torch.get_num_threads(),
        "refusal_tokens": list(tokens.strings),
        "baseline": round(baseline, 3),
        "checks": {
            "last_post_inst_is_last_token": last_is_post_inst,
            "library_tokenization_mismatches": token_mismatch,
        },
        "versions": versions,
        "rows": rows,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
