"""Stable hook names and hooks as context managers.

Names follow ``blocks.{layer}.{point}``: ``resid_pre`` is the residual stream entering
block ``layer`` (what ``output_hidden_states`` reports at index ``layer``) and
``resid_post`` the stream leaving it. Hooks are removed when the ``with`` block exits,
whether it ends normally or by an exception; the model is never left modified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from layerguard.errors import InvalidInputError

POINTS = ("resid_pre", "resid_post")
_NAME_RE = re.compile(r"^blocks\.(\d+)\.(resid_pre|resid_post)$")
# what a reader of served activations names: a hook point at a token position
READ_POSITIONS = ("t_inst", "inst_mean", "post_mean", "response")
_READ_RE = re.compile(r"^blocks\.(\d+)\.(resid_pre|resid_post)@(t_inst|inst_mean|post_mean|response)$")


def read_name(layer: int, position: str, point: str = "resid_pre") -> str:
    """Stable name of a state read at a position: ``blocks.{layer}.{point}@{position}``.

    ``t_inst`` is the last instruction token (one ``[d_model]`` state); ``inst_mean`` the mean
    over the last user message's tokens and ``post_mean`` the mean over the template tokens
    after it (the model's "about to answer" positions; one ``[d_model]`` state each);
    ``response`` is every token of the model's answer (``[n_tokens, d_model]``).
    """
    if position not in READ_POSITIONS:
        raise InvalidInputError(f"unknown read position {position!r}", hint=f"use one of {', '.join(READ_POSITIONS)}")
    return f"blocks.{layer}.{point}@{position}"


def parse_read(name: str) -> tuple[HookPoint, str]:
    """Split a read name into its hook point and position.

    Raises:
        InvalidInputError: a name that is not ``blocks.{l}.{point}@{position}``.
    """
    m = _READ_RE.match(name.strip())
    if not m:
        raise InvalidInputError(
            f"unknown read name {name!r}",
            hint="use blocks.{layer}.resid_pre@{t_inst|inst_mean|post_mean|response}",
        )
    return HookPoint(int(m.group(1)), m.group(2)), m.group(3)


@dataclass(frozen=True, order=True)
class HookPoint:
    """One place in the residual stream: a layer and ``resid_pre`` or ``resid_post``."""

    layer: int
    point: str

    @property
    def name(self) -> str:
        return f"blocks.{self.layer}.{self.point}"

    @property
    def order(self) -> tuple[int, int]:
        """Execution order within a forward pass."""
        return (self.layer, 0 if self.point == "resid_pre" else 1)

    @classmethod
    def parse(cls, name: str, n_layers: int | None = None) -> HookPoint:
        """Parse ``blocks.{l}.resid_pre|resid_post``.

        Raises:
            InvalidInputError: on a malformed name or a layer out of range.
        """
        m = _NAME_RE.match(name.strip())
        if not m:
            raise InvalidInputError(
                f"unknown hook name {name!r}", hint="use blocks.{layer}.resid_pre or blocks.{layer}.resid_post"
            )
        hp = cls(int(m.group(1)), m.group(2))
        if n_layers is not None:
            check_layers([hp.layer], n_layers)
        return hp


def check_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    """Validate layer indices (negative counts from the end) and return them non-negative.

    Raises:
        InvalidInputError: naming the first layer out of range and the valid range.
    """
    out = []
    for layer in layers:
        idx = layer + n_layers if layer < 0 else layer
        if not 0 <= idx < n_layers:
            raise InvalidInputError(
                f"layer {layer} is out of range for a model with {n_layers} layers",
                hint=f"use 0..{n_layers - 1} (or negative indices from the end)",
            )
        out.append(idx)
    return out


def hook_points(layers: Sequence[int], points: Sequence[str], n_layers: int) -> list[HookPoint]:
    """The cross product of layers and points, validated and in execution order."""
    for p in points:
        if p not in POINTS:
            raise InvalidInputError(f"unknown hook point {p!r}", hint=f"use one of {', '.join(POINTS)}")
    return sorted(
        {HookPoint(layer, p) for layer in check_layers(layers, n_layers) for p in points}, key=lambda h: h.order
    )


class StopForward(Exception):
    """Raised inside a hook to skip the rest of a forward pass once all reads are done."""


def _first(x: Any) -> Any:
    return x[0] if isinstance(x, tuple) else x


# A reader receives the hidden state [batch, pos, d_model] at a hook point; it may return a
# replacement tensor (for interventions) or None (for reads).
Reader = Callable[[HookPoint, Any], Any]


@contextmanager
def residual_hooks(
    blocks: Any, points: Sequence[HookPoint], fn: Reader, *, stop_after_last: bool = False
) -> Iterator[None]:
    """Call ``fn(point, hidden)`` at each hook point during forward passes.

    Args:
        blocks: The model's ModuleList of decoder blocks.
        points: Where to call ``fn``.
        fn: Receives the hidden state ``[batch, pos, d_model]``; a tensor it returns
            replaces the stream at that point.
        stop_after_last: Raise :class:`StopForward` after the last point so the rest of
            the network is not computed (the caller catches it).
    """
    handles = []
    last = max(points, key=lambda h: h.order) if points else None

    def make_pre(hp: HookPoint) -> Callable[..., Any]:
        def pre(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            hidden = args[0] if args else kwargs["hidden_states"]
            new = fn(hp, hidden)
            if stop_after_last and hp == last:
                raise StopForward
            if new is None:
                return None
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        return pre

    def make_post(hp: HookPoint) -> Callable[..., Any]:
        def post(module: Any, args: Any, output: Any) -> Any:
            new = fn(hp, _first(output))
            if stop_after_last and hp == last:
                raise StopForward
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return post

    try:
        for hp in points:
            block = blocks[hp.layer]
            if hp.point == "resid_pre":
                handles.append(block.register_forward_pre_hook(make_pre(hp), with_kwargs=True))
            else:
                handles.append(block.register_forward_hook(make_post(hp)))
        yield
    finally:
        for h in handles:
            h.remove()
