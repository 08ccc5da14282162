"""The built-in backends, registered by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerguard.guard.registry import register_backend


@register_backend("local", text_only=False)
def local(lm: Any, reads: Sequence[str] = (), monitor: Any | None = None, **_: Any) -> Any:
    """The model in this process: the guard reads the states of the pass that serves the request."""
    from layerguard.guard.backends.local import LocalBackend

    return LocalBackend(lm, reads=reads, monitor=monitor)


@register_backend("upstream", text_only=True)
def upstream(url: str, model: str, **options: Any) -> Any:
    """Any OpenAI-compatible ``/chat/completions`` URL: text rings only."""
    from layerguard.guard.backends.upstream import UpstreamBackend

    return UpstreamBackend(url, model, **options)
