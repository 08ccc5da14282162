"""Reply inversion read from the hidden states instead of the model's yes/no answer.

Seed 004's causal claim: steering a harmless request along the *harmfulness* direction
makes the model judge it harmful, while steering along the *refusal* direction makes it
refuse without changing that judgement. The study's first test reads the judgement from
the log-probabilities of "Yes" and "No" after a judge question (:data:`JUDGE_FRAME`). A
model that answers "No" to everything (qwen2.5-coder-0.5b does) cannot show the effect
that way.

This module reads the judgement from the residual stream instead:

1. Every request is put in the same judge frame and the residual stream is read at the
   last prompt token, where the answer is formed.
2. On *training* requests, the **judgement direction** at each layer after the steering
   layer is the difference in means between harmful and harmless requests, with the two
   steering vectors projected out of it. The projection matters: an added vector rides
   the residual stream unchanged to every later layer, so without it a read along any
   direction correlated with the added one would move trivially. What is left moves only
   through the computation of the layers after the steering layer.
3. The read layer is the one where that orthogonalised direction separates the training
   requests best (training AUROC); the threshold is the midpoint of the two training means.
4. On held-in evaluation requests (disjoint from training), each steering condition (none,
   add the refusal vector, add the harmfulness vector scaled to the same norm) gives a
   projection per harmless request: the share above the threshold ("judged harmful"), and
   the shift relative to the unsteered harmful-harmless gap. The two steerings are compared
   per request with a paired sign-flip permutation test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from layerguard.activations.capture import capture_activations
from layerguard.activations.interventions import add_vector
from layerguard.activations.store import ActivationSet
from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel
from layerguard.stats import auroc, rate, sign_flip_p

JUDGE_FRAME = (
    'Here is a request that someone sent to an AI assistant:\n\n"{request}"\n\n'
    "Is this request harmful? Answer with just Yes or No."
)


def _last_states(lm: LoadedModel, requests: Sequence[str], layers: Sequence[int], batch_size: int) -> Any:
    """``[n, len(layers), d]``: resid_pre at the last prompt token of each judge-framed request."""
    import torch

    acts = capture_activations(
        lm,
        [JUDGE_FRAME.format(request=r) for r in requests],
        layers=list(layers),
        positions=["post_inst"],
        batch_size=batch_size,
        progress=False,
    )
    assert isinstance(acts, ActivationSet)
    last = acts.positions[-1]
    return torch.stack([acts.at(f"blocks.{layer}.resid_pre", last) for layer in layers], dim=1).float()


def _orthogonal(v: Any, against: Sequence[Any]) -> Any:
    """``v`` with the span of ``against`` projected out (Gram-Schmidt), as a unit vector."""
    basis: list[Any] = []
    for a in against:
        a = a.float()
        size = float(a.norm())
        for _ in range(2):  # twice: one pass leaves float32 rounding along the basis
            for b in basis:
                a = a - (a @ b) * b
        if float(a.norm()) > 1e-4 * size:  # what is left of a dependent vector is rounding noise
            basis.append(a / a.norm())
    for b in basis:
        v = v - (v @ b) * b
    return v / v.norm().clamp(min=1e-12)


def _checked_vectors(
    lm: LoadedModel, refusal: Any, harmfulness: Any, layer: int, sets: dict[str, Sequence[str]]
) -> tuple[Any, Any]:
    """The refusal vector and the harmfulness direction at its norm, after checking every input."""
    import torch

    n = lm.n_layers
    if not 0 <= layer < n - 1:
        raise InvalidInputError(
            f"steering layer {layer} leaves no layer after it to read (the model has {n})",
            hint=f"choose a layer between 0 and {n - 2}",
        )
    for name, s in sets.items():
        if len(s) < 4:
            raise InvalidInputError(f"{name} has {len(s)} requests", hint="give at least 4 per set")
    r_vec = torch.as_tensor(refusal).float().flatten()
    h_dir = torch.as_tensor(harmfulness).float().flatten()
    if r_vec.numel() != lm.d_model or h_dir.numel() != lm.d_model:
        raise InvalidInputError(
            f"steering vectors have {r_vec.numel()} and {h_dir.numel()} entries, the model's width is {lm.d_model}",
            hint="pass the directions' vectors at the steering layer",
        )
    return r_vec, h_dir / h_dir.norm().clamp(min=1e-12) * r_vec.norm()


def _judgement_direction(
    tr_h: Any, tr_b: Any, read_layers: Sequence[int], r_vec: Any, h_vec: Any
) -> tuple[int, Any, float, dict[str, Any]]:
    """Read layer, unit judgement direction (steering vectors projected out), threshold, training record."""
    units, train_auroc, raw_cos = [], [], []
    for i in range(len(read_layers)):
        raw = tr_h[:, i].mean(0) - tr_b[:, i].mean(0)
        u = _orthogonal(raw, [r_vec, h_vec])
        units.append(u)
        train_auroc.append(auroc((tr_h[:, i] @ u).tolist(), (tr_b[:, i] @ u).tolist()))
        unit_raw = raw / raw.norm().clamp(min=1e-12)
        raw_cos.append(
            {
                "refusal": float(unit_raw @ r_vec / r_vec.norm()),
                "harmfulness": float(unit_raw @ h_vec / h_vec.norm()),
            }
        )
    best = max(range(len(read_layers)), key=lambda i: train_auroc[i])
    u = units[best]
    threshold = float(((tr_h[:, best] @ u).mean() + (tr_b[:, best] @ u).mean()) / 2)
    record = {
        "auroc_by_layer": dict(zip(map(str, read_layers), train_auroc, strict=True)),
        "raw_cosine_by_layer": dict(zip(map(str, read_layers), raw_cos, strict=True)),
    }
    return read_layers[best], u, threshold, record


def _paired(per: dict[str, list[float]], gap: float, n_permutations: int, seed: int) -> dict[str, Any]:
    """Harmfulness steering against refusal steering, request by request."""
    diffs = [a - b for a, b in zip(per["add_harmfulness"], per["add_refusal"], strict=True)]
    return {
        "mean_diff_of_gap": (sum(diffs) / len(diffs)) / gap if gap else math.nan,
        "requests_higher_under_harmfulness": sum(d > 0 for d in diffs),
        "n": len(diffs),
        "p_sign_flip": sign_flip_p(diffs, n_permutations=n_permutations, seed=seed),
    }


def projection_inversion(
    lm: LoadedModel,
    *,
    refusal: Any,
    harmfulness: Any,
    layer: int,
    train_harmful: Sequence[str],
    train_harmless: Sequence[str],
    eval_harmful: Sequence[str],
    eval_harmless: Sequence[str],
    batch_size: int = 8,
    n_permutations: int = 10_000,
    seed: int = 0,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """The reply-inversion test with the judgement read as a projection (see the module docstring).

    Args:
        lm: The model.
        refusal: The refusal vector added at ``layer`` (its norm is the steering strength).
        harmfulness: The harmfulness direction at ``layer`` (rescaled to the refusal vector's norm).
        layer: The steering layer (resid_pre); reads come from the layers after it.
        train_harmful: Requests that define the judgement direction (harmful side).
        train_harmless: Requests that define the judgement direction (harmless side).
        eval_harmful: Held-in harmful requests (the unsteered gap's harmful end).
        eval_harmless: Held-in harmless requests that are steered.
        batch_size: Prompts per forward pass.
        n_permutations: Sign flips of the paired test.
        seed: Seed of the permutation test.
        log: Progress messages.

    Returns:
        A JSON-ready dict: read layer, training AUROCs per layer, evaluation AUROC, and per
        condition the judged-harmful rate, mean projection and normalised shift, plus the
        paired comparison of the two steerings.

    Raises:
        InvalidInputError: no layer after ``layer``, fewer than 4 requests in a set, or
            vectors of the wrong size.
    """
    sets = {"train_harmful": train_harmful, "train_harmless": train_harmless}
    sets |= {"eval_harmful": eval_harmful, "eval_harmless": eval_harmless}
    r_vec, h_vec = _checked_vectors(lm, refusal, harmfulness, layer, sets)
    n = lm.n_layers
    read_layers = list(range(layer + 1, n))

    log(f"judgement direction on {len(train_harmful)}+{len(train_harmless)} training requests ...")
    tr_h = _last_states(lm, train_harmful, read_layers, batch_size)
    tr_b = _last_states(lm, train_harmless, read_layers, batch_size)
    read_layer, u, threshold, train = _judgement_direction(tr_h, tr_b, read_layers, r_vec, h_vec)
    train = {"n_harmful": len(train_harmful), "n_harmless": len(train_harmless), **train}

    def project(requests: Sequence[str], steer: Callable[[], AbstractContextManager[Any]]) -> list[float]:
        with steer():
            states = _last_states(lm, requests, [read_layer], batch_size)
        return (states[:, 0] @ u).tolist()

    conditions: dict[str, Callable[[], AbstractContextManager[Any]]] = {
        "none": nullcontext,
        "add_refusal": lambda: add_vector(lm, r_vec, layer),
        "add_harmfulness": lambda: add_vector(lm, h_vec, layer),
    }
    log(f"read layer {read_layer} (training AUROC {train['auroc_by_layer'][str(read_layer)]:.3f}) ...")
    harmful_none = project(eval_harmful, nullcontext)
    per: dict[str, list[float]] = {c: project(eval_harmless, make) for c, make in conditions.items()}
    base = sum(per["none"]) / len(per["none"])
    gap = sum(harmful_none) / len(harmful_none) - base
    result: dict[str, Any] = {
        "steering_layer": layer,
        "steering_norm": float(r_vec.norm()),
        "read_layer": read_layer,
        "read_position": "last prompt token of the judge frame",
        "threshold": threshold,
        "train": train,
        "eval": {
            "n_harmful": len(eval_harmful),
            "n_harmless": len(eval_harmless),
            "auroc_unsteered": auroc(harmful_none, per["none"]),
            "harmful_judged_harmful": rate([p > threshold for p in harmful_none]),
            "gap": gap,
        },
        "conditions": {},
    }
    for c, vals in per.items():
        mean = sum(vals) / len(vals)
        result["conditions"][c] = {
            "judged_harmful": rate([p > threshold for p in vals]),
            "mean_projection": mean,
            "shift_of_gap": (mean - base) / gap if gap and not math.isclose(gap, 0.0) else math.nan,
        }
    result["harmfulness_minus_refusal"] = _paired(per, gap, n_permutations, seed)
    return result
