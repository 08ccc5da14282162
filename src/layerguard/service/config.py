r"""Service configuration: the ``service:`` section of ``guard.yaml`` or a YAML file of its own.

Example (``${VAR}`` and ``${VAR:-default}`` are read from the environment)::

    service:
      host: 127.0.0.1
      port: 8080
      db_url: ${LAYERGUARD_DB:-sqlite:///./service.db}
      max_body_bytes: 1048576
      redact_prompts: false          # true: audit keeps only the prompt's SHA-256
      redact_patterns: ['\b\d{3}-\d{2}-\d{4}\b']   # regexes blanked in audit previews
      api_keys:
        - {key_env: LAYERGUARD_ADMIN_KEY, name: ops, admin: true}
        - {key: ${TEAM_A_KEY}, name: team-a, rpm: 60, tpm: 40000}
      conversation: {escalate_at: 1.0, decay: 0.8, burst_blocks: 5, burst_window_s: 60, cooldown_s: 300}
      max_prompt_tokens: 4096        # counted after the chat template; longer prompts get 400
      max_queue: 128                 # requests waiting for the model; more get 503 + Retry-After
      queue_timeout_s: 60            # per-request deadline for waiting in a queue
      generation_concurrency: 8      # answers decoded at once (their steps are batched)
      refusal: "I'm sorry, but I can't help with that request."
      metrics_access: admin          # public | admin | off

A file may hold the mapping at its top level or under ``service:``. Precedence (one
mechanism with ``audit`` and ``guard build``, :mod:`layerguard.settings`): code defaults,
then the file (``${VAR}`` interpolated), then ``LAYERGUARD_SERVE_<SETTING>`` variables for
top-level settings (e.g. ``LAYERGUARD_SERVE_PORT=9000``), then CLI flags.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from layerguard.errors import InvalidInputError
from layerguard.guard.config import interpolate
from layerguard.service.storage import hash_key
from layerguard.settings import Layer, env_layer, flag_layer, layered, read_yaml, yaml_layer

DEFAULT_REFUSAL = "I'm sorry, but I can't help with that request."
"""A refusal in the form refusal detectors (garak's, HarmBench's, StrongREJECT's) recognise."""

ENV_PREFIX = "LAYERGUARD_SERVE_"
"""Environment variables ``LAYERGUARD_SERVE_<SETTING>`` override the file's top-level settings."""


class ApiKeyConfig(BaseModel):
    """One API key: the key itself or the environment variable holding it, and its limits."""

    model_config = ConfigDict(extra="forbid")

    key: SecretStr | None = None
    key_env: str | None = None
    name: str = Field(min_length=1, max_length=128)
    rpm: int | None = Field(default=None, ge=1, description="requests per minute (none: unlimited)")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute (none: unlimited)")
    admin: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ApiKeyConfig:
        if (self.key is None) == (self.key_env is None):
            raise ValueError(f"api key {self.name!r}: give exactly one of 'key' and 'key_env'")
        return self


class ConversationSettings(BaseModel):
    """Parameters of the conversation ring the service adds to the guard."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    decay: float = Field(default=0.8, ge=0.0, lt=1.0)
    floor: float = Field(default=0.1, ge=0.0, lt=1.0)
    escalate_at: float = Field(default=1.0, gt=0.0)
    score_rings: list[str] | None = None
    burst_blocks: int = Field(default=5, ge=0)
    burst_window_s: float = Field(default=60.0, gt=0.0)
    cooldown_s: float = Field(default=300.0, ge=0.0)
    ttl_s: float = Field(default=86_400.0, gt=0.0)


class ServiceConfig(BaseModel):
    """Settings of ``layerguard serve``.

    Attributes:
        host: Interface to bind.
        port: TCP port.
        api_keys: Accepted keys; requests without one of them get 401.
        db_url: SQLAlchemy URL of the store (default: ``service.db`` beside the guard).
        max_body_bytes: Larger request bodies get 413.
        redact_prompts: Audit records keep only the prompt's hash, no preview.
        redact_patterns: Regular expressions replaced by ``[REDACTED]`` in audit previews.
        preview_chars: Length of the audit preview of the prompt.
        model_aliases: Other model names clients may send.
        rate_limiter: ``auto`` (memory for SQLite, DB otherwise), ``memory`` or ``db``.
        sqlite_synchronous: SQLite durability level (see :mod:`layerguard.service.storage`).
        generation_concurrency: Answers generated at once (default 8 for the local model, whose
            decoding steps are batched; unlimited for an upstream); others wait (asynchronously,
            holding no thread) up to ``queue_timeout_s``, then get 503.
        queue_timeout_s: Per-request deadline for waiting in a queue (prefill or generation).
        max_queue: Requests that may wait for the model at once; more get 503 with ``Retry-After``.
        batch_wait_ms: How long a prefill waits for others to share its batched forward pass.
        prefill_token_budget: Padded tokens (rows x longest prompt) of one batched prefill.
        max_batch: Rows of one batched prefill.
        max_prompt_tokens: Longest prompt, counted after the chat template, before any forward
            pass; longer ones get 400 naming the count and the limit.
        max_tokens_default: ``max_tokens`` when a request gives none.
        max_tokens_limit: Upper bound of ``max_tokens`` (also clamped to the model's context
            left after the prompt).
        refusal: The assistant text of a blocked request (category and request id are in the
            ``layerguard`` extension, not in the text).
        metrics_access: ``public`` (no key), ``admin`` (an admin key) or ``off`` for ``/metrics``
            and the details of ``/readyz`` (its status is always public).
        conversation: The conversation ring's parameters.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    db_url: str | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    redact_prompts: bool = False
    redact_patterns: list[str] = Field(default_factory=list)
    preview_chars: int = Field(default=200, ge=0)
    model_aliases: list[str] = Field(default_factory=list)
    rate_limiter: Literal["auto", "memory", "db"] = "auto"
    sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    generation_concurrency: int | None = Field(default=None, ge=1)
    queue_timeout_s: float = Field(default=60.0, gt=0.0)
    max_queue: int = Field(default=128, ge=1)
    batch_wait_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    prefill_token_budget: int = Field(default=4096, ge=16)
    max_batch: int = Field(default=32, ge=1)
    max_prompt_tokens: int = Field(default=4096, ge=1)
    max_tokens_default: int = Field(default=256, ge=1)
    max_tokens_limit: int = Field(default=4096, ge=1)
    conversation: ConversationSettings = Field(default_factory=ConversationSettings)
    refusal: str = Field(default=DEFAULT_REFUSAL, min_length=1)
    metrics_access: Literal["public", "admin", "off"] = "admin"

    @field_validator("redact_patterns")
    @classmethod
    def _valid_patterns(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"redact pattern {p!r} is not a valid regular expression: {exc}") from None
        return v

    @classmethod
    def from_mapping(cls, data: Any, source: str = "service config") -> ServiceConfig:
        """Validate a mapping (a ``service:`` key, if present, is unwrapped).

        Raises:
            InvalidInputError: naming the offending field.
        """
        if isinstance(data, dict) and "rings" in data:  # a whole guard.yaml: only its service section
            data = data.get("service") or {}
        return layered(cls, yaml_layer(Path(source), "service", data={} if data is None else data))

    @classmethod
    def load(cls, path: str | Path, env: dict[str, str] | None = None) -> ServiceConfig:
        """Read a service YAML (its own file, or the ``service:`` section of ``guard.yaml``).

        Raises:
            InvalidInputError: missing file, bad YAML, unset variables, schema errors.
        """
        return layered(cls, cls.file_layer(Path(path), env))

    @staticmethod
    def file_layer(path: Path, env: dict[str, str] | None = None) -> Layer:
        """The settings of a service YAML or a guard.yaml's ``service:`` section, ``${VAR}`` interpolated."""
        data = read_yaml(path, "service config", lambda text: interpolate(text, env))
        if isinstance(data, dict) and "rings" in data:  # a guard.yaml: only its service section
            data = data.get("service") or {}
        return yaml_layer(path, "service", data={} if data is None else data)

    @classmethod
    def resolve(
        cls, path: Path, flags: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> ServiceConfig:
        """Code defaults, then the file, then ``LAYERGUARD_SERVE_*`` variables, then CLI flags.

        Args:
            path: The service YAML or guard.yaml.
            flags: Settings given on the command line (only those the user typed).
            env: The environment (default ``os.environ``), for interpolation and the variables.

        Raises:
            InvalidInputError: naming the file and key, the variable or the flag at fault.
        """
        return layered(cls, cls.file_layer(path, env), env_layer(cls, ENV_PREFIX, env), flag_layer(flags or {}))

    def resolve_keys(self, env: dict[str, str] | None = None) -> list[ResolvedKey]:
        """The keys with their secrets read (from the config or the environment), hashed.

        Raises:
            InvalidInputError: an unset ``key_env`` variable, an empty key, or a duplicate key.
        """
        env = dict(os.environ) if env is None else env
        out: list[ResolvedKey] = []
        seen: set[str] = set()
        for k in self.api_keys:
            if k.key is not None:
                secret = k.key.get_secret_value()
            else:
                assert k.key_env is not None
                if k.key_env not in env:
                    raise InvalidInputError(
                        f"API key {k.name!r}: environment variable {k.key_env} is not set",
                        hint=f"export {k.key_env}=...",
                    )
                secret = env[k.key_env]
            if not secret.strip():
                raise InvalidInputError(f"API key {k.name!r} is empty")
            h = hash_key(secret)
            if h in seen:
                raise InvalidInputError(f"API key {k.name!r} repeats another key")
            seen.add(h)
            out.append(ResolvedKey(name=k.name, key_hash=h, rpm=k.rpm, tpm=k.tpm, admin=k.admin))
        return out


@dataclass(frozen=True)
class ResolvedKey:
    """An accepted API key, known only by its hash."""

    name: str
    key_hash: str
    rpm: int | None
    tpm: int | None
    admin: bool
