"""Interventions on the residual stream, as context managers that always restore the model.

- :func:`add_vector`: activation addition ``h <- h + alpha * v`` at one layer's input.
- :func:`ablate_direction`: directional ablation ``x <- x - (x . r) r`` on every write to the
  residual stream (embeddings, every attention and MLP output), at every layer and position.
- :func:`orthogonalize_weights`: the same ablation folded into a copy of the weights
  (``W <- W - r r^T W`` on every matrix writing to the stream), exportable as a model directory.

Hooks are removed when the ``with`` block exits, including by an exception; the user's
model object is never modified (orthogonalization works on a deep copy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from layerguard.activations.hooks import HookPoint, residual_hooks
from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel

_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention")
_MLP_NAMES = ("mlp", "feed_forward", "ffn")
_ATTN_OUT = ("o_proj", "out_proj", "c_proj", "dense", "wo")
_MLP_OUT = ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "w2", "wo")


def _child(module: Any, names: tuple[str, ...]) -> Any:
    for n in names:
        found = getattr(module, n, None)
        if found is not None:
            return found
    return None


def _as_vector(lm: LoadedModel, vector: Any) -> Any:
    import torch

    v = torch.as_tensor(vector, dtype=next(lm.model.parameters()).dtype)
    if v.shape != (lm.d_model,):
        raise InvalidInputError(
            f"vector of shape {tuple(v.shape)} does not fit d_model={lm.d_model}",
            hint="pass a [d_model] vector, e.g. direction.at(layer)",
        )
    return v


@contextmanager
def add_vector(lm: LoadedModel, vector: Any, layer: int, alpha: float = 1.0) -> Iterator[None]:
    """Add ``alpha * vector`` to the residual stream entering ``layer`` at every position.

    Raises:
        InvalidInputError: layer out of range or a vector of the wrong size.
    """
    from layerguard.activations.hooks import check_layers

    (layer,) = check_layers([layer], lm.n_layers)
    v = _as_vector(lm, vector) * float(alpha)

    def add(hp: HookPoint, hidden: Any) -> Any:
        return hidden + v.to(hidden.dtype)

    with residual_hooks(lm.layers, [HookPoint(layer, "resid_pre")], add):
        yield


def _project_out(r: Any) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        rr = r.to(x.dtype)
        return x - (x @ rr).unsqueeze(-1) * rr

    return f


@contextmanager
def ablate_direction(lm: LoadedModel, vector: Any) -> Iterator[None]:
    """Remove the direction of ``vector`` from every write to the residual stream.

    Hooks the embedding output and every block's attention and MLP outputs, which is
    exactly what :func:`orthogonalize_weights` does to the weights. For blocks whose
    attention/MLP submodules cannot be found, the block's input and output are projected
    instead (an approximation that still removes the direction from every block input).
    """
    import torch

    v = _as_vector(lm, vector)
    r = v / v.norm().clamp(min=1e-12)
    proj = _project_out(r)
    handles = []

    def out_hook(module: Any, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (proj(output[0]), *output[1:])
        return proj(output)

    try:
        emb = lm.model.get_input_embeddings()
        handles.append(emb.register_forward_hook(out_hook))
        for block in lm.layers:
            attn, mlp = _child(block, _ATTN_NAMES), _child(block, _MLP_NAMES)
            if isinstance(attn, torch.nn.Module) and isinstance(mlp, torch.nn.Module):
                handles.append(attn.register_forward_hook(out_hook))
                handles.append(mlp.register_forward_hook(out_hook))
            else:
                handles.append(block.register_forward_hook(out_hook))
        yield
    finally:
        for h in handles:
            h.remove()


def _orthogonalize_linear(linear: Any, r: Any) -> None:
    # nn.Linear weight is [out, in]; the output lives in the residual stream (out = d_model)
    w = linear.weight.data
    w.sub_(torch_outer(r, r @ w))
    if getattr(linear, "bias", None) is not None:
        b = linear.bias.data
        b.sub_((b @ r) * r)


def torch_outer(a: Any, b: Any) -> Any:
    """Outer product ``a b^T``."""
    import torch

    return torch.outer(a, b)


def orthogonalize_weights(lm: LoadedModel, vector: Any) -> LoadedModel:
    """A new LoadedModel whose weights cannot write the direction into the residual stream.

    The embedding matrix and every attention-output and MLP-output projection are
    orthogonalized; tied input/output embeddings are untied first so the unembedding is
    unchanged. The original model is untouched.

    Raises:
        InvalidInputError: when a block's output projections cannot be found.
    """
    import torch

    v = _as_vector(lm, vector)
    r = (v / v.norm().clamp(min=1e-12)).float()
    model = copy.deepcopy(lm.model)
    emb = model.get_input_embeddings()
    out_emb = model.get_output_embeddings()
    if out_emb is not None and out_emb.weight is emb.weight:
        out_emb.weight = torch.nn.Parameter(emb.weight.detach().clone(), requires_grad=False)
        model.config.tie_word_embeddings = False
        if hasattr(model.config, "get_text_config"):
            model.config.get_text_config().tie_word_embeddings = False
    with torch.no_grad():
        e = emb.weight.data
        e.sub_(torch.outer(e @ r, r))
        from layerguard.models.architecture import find_decoder_layers

        for i, block in enumerate(find_decoder_layers(model)):
            attn, mlp = _child(block, _ATTN_NAMES), _child(block, _MLP_NAMES)
            a_out = _child(attn, _ATTN_OUT) if attn is not None else None
            m_out = _child(mlp, _MLP_OUT) if mlp is not None else None
            if a_out is None or m_out is None:
                raise InvalidInputError(
                    f"cannot find the output projections of block {i} ({type(block).__name__})",
                    hint="use ablate_direction (hooks) for this architecture",
                )
            _orthogonalize_linear(a_out, r)
            _orthogonalize_linear(m_out, r)
    return LoadedModel(
        model=model,
        tokenizer=lm.tokenizer,
        name=f"{lm.name}+orthogonalized",
        source="derived",
        weights_sha256=_derived_hash(lm.weights_sha256, r),
        chat_template=lm.chat_template,
        extra={"derived_from": lm.model_id},
    )


def _derived_hash(parent_sha: str, r: Any) -> str:
    """Identity of derived weights: the parent's hash plus the exact direction removed."""
    import hashlib

    h = hashlib.sha256(b"orthogonalize\0" + parent_sha.encode())
    h.update(r.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def export_model(lm: LoadedModel, out_dir: Any) -> Any:
    """Write a LoadedModel as a Hugging Face directory (safetensors + tokenizer)."""
    from pathlib import Path

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InvalidInputError(f"{out} is not empty", hint="choose a new directory; nothing was overwritten")
    out.mkdir(parents=True, exist_ok=True)
    lm.model.save_pretrained(out, safe_serialization=True)
    lm.tokenizer.save_pretrained(out)
    return out
