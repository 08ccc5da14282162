"""Hook points at the granularity of the circuit: attention heads, attention patterns, MLP outputs.

Names extend the residual scheme of :mod:`layerguard.activations.hooks` (``blocks.L.resid_pre``):

- ``blocks.L.resid_pre`` ``[batch, pos, d_model]``: the stream entering block L;
- ``blocks.L.resid_post`` ``[batch, pos, d_model]``: the stream leaving block L;
- ``blocks.L.attn.z`` ``[batch, pos, head, d_head]``: each head's mix of values (the input of
  the output projection, split by head);
- ``blocks.L.attn.head_out`` ``[batch, pos, head, d_model]``: what each head writes into the
  stream, ``z[..., h, :] @ W_O[:, h]^T`` (the output bias, if any, is not a head's);
- ``blocks.L.attn.pattern`` ``[batch, head, q_pos, k_pos]``: attention probabilities (eager
  attention is switched on while the hook is active);
- ``blocks.L.attn_out`` ``[batch, pos, d_model]``: the attention block's output (the heads' sum
  plus the output bias, if any);
- ``blocks.L.mlp_out`` ``[batch, pos, d_model]``: the MLP's output.

TransformerLens calls these ``hook_z``, ``hook_result``, ``hook_pattern``, ``hook_attn_out`` and
``hook_mlp_out``. The head split comes from the model's config (``num_attention_heads``,
``num_key_value_heads``, ``head_dim``), so grouped-query attention (Qwen2, Llama, SmolLM2) needs
no table: ``z`` and ``head_out`` have one entry per *query* head.

Every hook is a context manager that removes itself (and restores the attention
implementation) on exit, including by an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from layerguard.activations.hooks import HookPoint, check_layers, residual_hooks
from layerguard.activations.interventions import _ATTN_NAMES, _ATTN_OUT, _MLP_NAMES, _child
from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel

KINDS = ("resid_pre", "resid_post", "attn.z", "attn.head_out", "attn.pattern", "attn_out", "mlp_out")
READ_ONLY = ("attn.pattern",)
_NAME_RE = re.compile(r"^blocks\.(\d+)\.(" + "|".join(re.escape(k) for k in KINDS) + r")$")
_NAME_HINT = "use blocks.{layer}.{kind} with kind one of " + ", ".join(KINDS)


@dataclass(frozen=True)
class HeadLayout:
    """How a model's attention splits into heads, read from its config and checked against its weights."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_model: int

    @property
    def n_total_heads(self) -> int:
        return self.n_layers * self.n_heads

    @property
    def group_size(self) -> int:
        """Query heads sharing one key/value head (1 without grouped-query attention)."""
        return self.n_heads // self.n_kv_heads

    @classmethod
    def of(cls, lm: LoadedModel) -> HeadLayout:
        """The layout of ``lm``.

        Raises:
            InvalidInputError: when the config's head split does not fit the output projection.
        """
        cfg = lm.model.config
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        n_heads = int(cfg.num_attention_heads)
        n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
        head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads)
        layout = cls(len(lm.layers), n_heads, n_kv, head_dim, int(cfg.hidden_size))
        o_proj = attention_parts(lm, 0)[1]
        if o_proj.weight.shape[1] != n_heads * head_dim or n_heads % n_kv:
            raise InvalidInputError(
                f"the config's {n_heads} heads x {head_dim} dims ({n_kv} key/value heads) do not fit the "
                f"output projection {tuple(o_proj.weight.shape)} of {type(lm.model).__name__}",
                hint="per-head hooks need an output projection whose input is the heads' outputs concatenated",
            )
        return layout

    def check_heads(self, heads: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Validate ``(layer, head)`` pairs (negative layers count from the end).

        Raises:
            InvalidInputError: naming the first pair out of range.
        """
        out = []
        for layer, head in heads:
            (li,) = check_layers([layer], self.n_layers)
            if not 0 <= head < self.n_heads:
                raise InvalidInputError(
                    f"head {head} is out of range: layer {li} has {self.n_heads} heads",
                    hint=f"use heads 0..{self.n_heads - 1} (written L.H, e.g. {li}.0)",
                )
            out.append((li, head))
        return out


def parse_heads(text: str, layout: HeadLayout) -> list[tuple[int, int]]:
    """Parse ``"12.3,14.0"`` into validated ``(layer, head)`` pairs.

    Raises:
        InvalidInputError: on a malformed item or a head out of range.
    """
    pairs = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        m = re.fullmatch(r"(-?\d+)\.(\d+)", item)
        if not m:
            raise InvalidInputError(f"cannot read head {item!r}", hint="write heads as LAYER.HEAD, e.g. 12.3,14.0")
        pairs.append((int(m.group(1)), int(m.group(2))))
    if not pairs:
        raise InvalidInputError("no heads given", hint="write heads as LAYER.HEAD, e.g. 12.3,14.0")
    return layout.check_heads(pairs)


@dataclass(frozen=True, order=True)
class CircuitHook:
    """One hook point: a layer and a kind (see the module docstring)."""

    layer: int
    kind: str

    @property
    def name(self) -> str:
        return f"blocks.{self.layer}.{self.kind}"

    @classmethod
    def parse(cls, name: str, n_layers: int | None = None) -> CircuitHook:
        """Parse ``blocks.{layer}.{kind}``.

        Raises:
            InvalidInputError: on an unknown name or a layer out of range.
        """
        m = _NAME_RE.match(name.strip())
        if not m:
            raise InvalidInputError(f"unknown hook name {name!r}", hint=_NAME_HINT)
        hook = cls(int(m.group(1)), m.group(2))
        if n_layers is not None:
            check_layers([hook.layer], n_layers)
        return hook


def attention_parts(lm: LoadedModel, layer: int) -> tuple[Any, Any]:
    """The attention module of block ``layer`` and its output projection.

    Raises:
        InvalidInputError: when the block has no recognisable attention or output projection.
    """
    block = lm.layers[layer]
    attn = _child(block, _ATTN_NAMES)
    o_proj = _child(attn, _ATTN_OUT) if attn is not None else None
    if attn is None or o_proj is None or not hasattr(o_proj, "weight"):
        raise InvalidInputError(
            f"cannot find the attention output projection of block {layer} ({type(block).__name__})",
            hint="per-head hooks support blocks with self_attn/attn and o_proj/out_proj/c_proj/dense",
        )
    return attn, o_proj


def mlp_module(lm: LoadedModel, layer: int) -> Any:
    """The MLP module of block ``layer``."""
    block = lm.layers[layer]
    mlp = _child(block, _MLP_NAMES)
    if mlp is None:
        raise InvalidInputError(f"cannot find the MLP of block {layer} ({type(block).__name__})")
    return mlp


def head_weights(lm: LoadedModel, layer: int) -> Any:
    """``W_O`` split by head: ``[head, d_head, d_model]`` (float32)."""
    layout = HeadLayout.of(lm)
    w = attention_parts(lm, layer)[1].weight.detach().float()  # [d_model, head * d_head]
    return w.T.reshape(layout.n_heads, layout.head_dim, layout.d_model)


# fn(hook, tensor) -> replacement tensor or None (a read)
CircuitFn = Callable[[CircuitHook, Any], Any]


@contextmanager
def eager_attention(lm: LoadedModel) -> Iterator[None]:
    """Run attention with the eager implementation (which returns patterns); restore on exit."""
    configs = {id(c): c for c in (lm.model.config, *(attention_parts(lm, i)[0].config for i in range(lm.n_layers)))}
    before = {k: c._attn_implementation for k, c in configs.items()}
    try:
        for c in configs.values():
            c._attn_implementation = "eager"
        yield
    finally:
        for k, c in configs.items():
            c._attn_implementation = before[k]


def _z_pre(hook: CircuitHook, fn: CircuitFn, layout: HeadLayout) -> Callable[..., Any]:
    def pre(module: Any, args: tuple[Any, ...]) -> Any:
        x = args[0]
        z = x.view(*x.shape[:-1], layout.n_heads, layout.head_dim)
        new = fn(hook, z)
        if new is None:
            return None
        return (new.reshape(x.shape).to(x.dtype), *args[1:])

    return pre


def _head_out_post(hook: CircuitHook, fn: CircuitFn, layout: HeadLayout) -> Callable[..., Any]:
    def post(module: Any, args: tuple[Any, ...], output: Any) -> Any:
        x = args[0]
        z = x.view(*x.shape[:-1], layout.n_heads, layout.head_dim)
        w = module.weight.T.reshape(layout.n_heads, layout.head_dim, layout.d_model)
        heads = _einsum("...hd,hdm->...hm", z, w)  # [batch, pos, head, d_model]
        new = fn(hook, heads)
        if new is None:
            return None
        return output + (new.to(heads.dtype) - heads).sum(-2)

    return post


def _einsum(spec: str, *ops: Any) -> Any:
    import torch

    return torch.einsum(spec, *ops)


def _attn_post(hook: CircuitHook, fn: CircuitFn) -> Callable[..., Any]:
    def post(module: Any, args: Any, output: Any) -> Any:
        if hook.kind == "attn.pattern":
            pattern = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if pattern is None:
                raise RuntimeError("the attention module returned no pattern (eager attention was not active)")
            if fn(hook, pattern) is not None:
                raise InvalidInputError("attention patterns are read-only", hint="patch blocks.L.attn.z instead")
            return None
        out0 = output[0] if isinstance(output, tuple) else output
        new = fn(hook, out0)
        if new is None:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return post


def _mlp_post(hook: CircuitHook, fn: CircuitFn) -> Callable[..., Any]:
    def post(module: Any, args: Any, output: Any) -> Any:
        return fn(hook, output)

    return post


@contextmanager
def circuit_hooks(lm: LoadedModel, hooks: Sequence[CircuitHook], fn: CircuitFn) -> Iterator[None]:
    """Call ``fn(hook, tensor)`` at each hook point during forward passes; a returned tensor replaces it.

    Args:
        lm: The model.
        hooks: Where to call ``fn`` (any kinds; see the module docstring for shapes).
        fn: Receives the tensor at the hook; returns a replacement of the same shape, or None.
            ``attn.pattern`` is read-only. Replacing ``attn.head_out`` adds the difference of
            the heads' outputs to the attention output.

    Raises:
        InvalidInputError: on a layer out of range or an architecture without the modules.
    """
    layout = HeadLayout.of(lm)
    hooks = list(hooks)
    for h in hooks:
        if h.kind not in KINDS:
            raise InvalidInputError(f"unknown hook kind {h.kind!r}", hint=_NAME_HINT)
        check_layers([h.layer], layout.n_layers)
    with ExitStack() as stack:
        resid = [h for h in hooks if h.kind in ("resid_pre", "resid_post")]
        if resid:

            def resid_fn(hp: HookPoint, hidden: Any) -> Any:
                return fn(CircuitHook(hp.layer, hp.point), hidden)

            points = [HookPoint(h.layer, h.kind) for h in resid]
            stack.enter_context(residual_hooks(lm.layers, points, resid_fn))
        if any(h.kind == "attn.pattern" for h in hooks):
            stack.enter_context(eager_attention(lm))
        handles: list[Any] = []
        stack.callback(lambda: [h.remove() for h in handles])
        for h in hooks:
            attn, o_proj = attention_parts(lm, h.layer)
            if h.kind == "attn.z":
                handles.append(o_proj.register_forward_pre_hook(_z_pre(h, fn, layout)))
            elif h.kind == "attn.head_out":
                handles.append(o_proj.register_forward_hook(_head_out_post(h, fn, layout)))
            elif h.kind in ("attn.pattern", "attn_out"):
                handles.append(attn.register_forward_hook(_attn_post(h, fn)))
            elif h.kind == "mlp_out":
                handles.append(mlp_module(lm, h.layer).register_forward_hook(_mlp_post(h, fn)))
        yield


def run_with_cache(
    lm: LoadedModel, input_ids: Any, names: Sequence[str], *, attention_mask: Any = None, **kwargs: Any
) -> tuple[Any, dict[str, Any]]:
    """One forward pass; return its logits ``[batch, pos, vocab]`` and the named activations (float32).

    Only the requested hook points are kept (not every activation of the model).

    Raises:
        InvalidInputError: on an unknown hook name or a layer out of range.
    """
    import torch

    hooks = [CircuitHook.parse(n, lm.n_layers) for n in names]
    cache: dict[str, Any] = {}

    def read(hook: CircuitHook, t: Any) -> None:
        cache[hook.name] = t.detach().float().clone()

    with torch.inference_mode(), circuit_hooks(lm, hooks, read):
        logits = lm.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
    return logits.float(), cache
