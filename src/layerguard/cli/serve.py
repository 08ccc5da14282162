"""``layerguard serve``: the guarded, OpenAI-compatible HTTP service.

Settings come from the code defaults (:class:`~layerguard.service.config.ServiceConfig`),
then the service YAML (``--config``, else guard.yaml's ``service:`` section), then
``LAYERGUARD_SERVE_<SETTING>`` environment variables, then the flags typed.
Heavy imports (FastAPI, SQLAlchemy, the model) happen inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from layerguard.cli.common import typed_flags
from layerguard.errors import InvalidInputError, MissingPackageError

API_KEY_ENV = "LAYERGUARD_API_KEY"
FLAG_SETTINGS = {"host": "host", "port": "port", "db": "db_url"}
"""CLI flag -> service setting."""


def serve(
    ctx: typer.Context,
    guard: Annotated[Path, typer.Option("--guard", "-g", help="guard.yaml written by `guard build`.")],
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000).", min=0, max=65535)] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            help="Forward to this OpenAI-compatible URL (e.g. http://127.0.0.1:8001/v1) instead of "
            "running the model here; latent rings are then unavailable."
        ),
    ] = None,
    upstream_model: Annotated[
        str | None, typer.Option(help="Model name sent upstream (default: the guard's model).")
    ] = None,
    upstream_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the upstream's API key (if set).")
    ] = "LAYERGUARD_UPSTREAM_API_KEY",
    db: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL or SQLite path of the audit store (default: service.db beside the guard)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Service YAML (keys, limits, redaction); default: guard.yaml's `service:` section. "
            "Precedence: defaults < file < LAYERGUARD_SERVE_<SETTING> < flags.",
        ),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Local model (default: the guard's).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    show_config: Annotated[
        bool,
        typer.Option("--show-config", help="Print the resolved service settings as JSON (secrets masked) and exit."),
    ] = False,
) -> None:
    """Serve a guarded, OpenAI-compatible API (/v1/chat/completions, /v1/guard/check, /metrics ...).

    API keys come from the service config (`api_keys: [{key_env: NAME, name: ..., rpm: ..., tpm: ...}]`);
    without any, $LAYERGUARD_API_KEY is the one accepted key.
    """
    try:
        import uvicorn

        from layerguard.service.app import create_app
        from layerguard.service.config import ServiceConfig
        from layerguard.service.storage import Store
    except ImportError as exc:
        raise MissingPackageError(
            f"serving needs packages that are not installed ({exc.name})",
            hint="pip install 'layerguard[serve]'",
        ) from None

    flags = {FLAG_SETTINGS[k]: v for k, v in typed_flags(ctx, list(FLAG_SETTINGS)).items()}
    cfg = ServiceConfig.resolve(config if config is not None else guard, flags)
    if show_config:
        typer.echo(cfg.model_dump_json(indent=2))
        return
    _default_key(cfg)
    cfg.resolve_keys()  # fail on unset key variables before touching the database
    store = Store(cfg.db_url or str(guard.resolve().parent / "service.db"), sqlite_synchronous=cfg.sqlite_synchronous)
    g, backend = _guard_and_backend(guard, upstream, upstream_model, upstream_key_env, model)
    _attach_conversation(g, cfg, store)
    app = create_app(g, backend, store, cfg)
    typer.echo(
        f"layerguard serving {getattr(backend, 'model_name', '?')} on http://{cfg.host}:{cfg.port}/v1 "
        f"(rings: {', '.join(g.names)}; unavailable: {', '.join(g.unavailable) or 'none'}; db: {store.safe_url})",
        err=True,
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=log_level)


def _default_key(cfg: Any) -> None:
    """Without configured keys, $LAYERGUARD_API_KEY is the one (admin) key; without it, refuse to start."""
    from layerguard.service.config import ApiKeyConfig

    if cfg.api_keys:
        return
    if not os.environ.get(API_KEY_ENV):
        raise InvalidInputError(
            "no API keys configured: every request would be refused",
            hint=f"export {API_KEY_ENV}=<secret>, or list api_keys in the service config (--config)",
        )
    cfg.api_keys = [ApiKeyConfig(key_env=API_KEY_ENV, name="default", admin=True)]


def _guard_and_backend(
    guard: Path, upstream: str | None, upstream_model: str | None, upstream_key_env: str, model: str | None
) -> tuple[Any, Any]:
    """The guard and its backend: an upstream URL (text rings only) or a local model (every ring)."""
    from layerguard.guard.build import load_guard, local_backend_for
    from layerguard.guard.config import GuardConfig

    gcfg = GuardConfig.load(guard)
    if upstream is not None:
        from layerguard.guard.backends.upstream import UpstreamBackend

        g = load_guard(guard, None, text_only=True)
        name = upstream_model or gcfg.model.name
        return g, UpstreamBackend(upstream, name, api_key=os.environ.get(upstream_key_env) or None)
    from layerguard.models import load_model

    lm = load_model(model or gcfg.model.name)
    g = load_guard(guard, lm)
    return g, local_backend_for(g, lm)


def _attach_conversation(g: Any, cfg: Any, store: Any) -> None:
    """Rings that keep state keep it in the SQL store (replicas agree); add the conversation ring if none."""
    from layerguard.guard.registry import build_ring

    for ring in g.rings:
        use_store = getattr(ring, "use_store", None)
        if use_store is not None:
            use_store(store)
    if not cfg.conversation.enabled or g.at("turn"):
        return
    params = cfg.conversation.model_dump(exclude={"enabled"})
    ring = build_ring("conversation", params, Path("."), None)
    ring.use_store(store)  # type: ignore[attr-defined]
    g.rings.append(ring)
