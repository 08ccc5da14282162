"""One contract test for the backend registry, parametrized over every registered backend.

``local`` serves the real smollm2-135m; ``upstream`` forwards over real HTTP on 127.0.0.1
to the test service. Each must: have a docstring, say whether it is text-only as it was
registered, describe itself, and stream an answer as chunks whose last one carries a
finish reason and usage, for plain, empty and mixed-script messages.
"""

from __future__ import annotations

from typing import Any

import pytest

from layerguard.guard.backend import Chunk, GenerationParams
from layerguard.guard.registry import backend_specs, build_backend
from layerguard.guard.types import Exchange
from tests.service.helpers import KEYS

MESSAGES = {"plain": "Name a fruit.", "empty": "", "mixed": "Как дела? 你好 \u200bhello\u2060 🍎"}


def _options(name: str, smollm2: Any, service: Any) -> dict[str, Any]:
    if name == "local":
        return {"lm": smollm2}
    if name == "upstream":
        return {"url": f"{service.url}/v1", "model": "fake-model", "api_key": KEYS["user"]}
    raise AssertionError(f"backend {name!r} is registered but has no options in this contract test")


@pytest.mark.parametrize("name", sorted(backend_specs()))
def test_backend_contract(name: str, smollm2, service) -> None:
    spec = backend_specs()[name]
    assert spec.doc, f"the factory of {name!r} has no docstring"
    backend = build_backend(name, **_options(name, smollm2, service))
    assert (type(backend).__doc__ or "").strip()
    assert backend.text_only == spec.text_only and isinstance(backend.model_name, str) and backend.model_name
    assert isinstance(backend.info(), dict)
    for label, text in MESSAGES.items():
        ex = Exchange.from_prompt(text)
        backend.prepare(ex)
        chunks = list(backend.stream(ex, GenerationParams(max_tokens=8)))
        assert chunks and all(isinstance(c, Chunk) for c in chunks), label
        assert chunks[-1].finish_reason in ("stop", "length", "content_filter", "tool_calls"), label
        assert all(c.finish_reason is None for c in chunks[:-1]), label


def test_unknown_backend_is_a_clear_error() -> None:
    from layerguard.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown backend 'nope'"):
        build_backend("nope")
