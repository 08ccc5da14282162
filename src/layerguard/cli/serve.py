"""``layerguard serve``: the guarded, OpenAI-compatible HTTP service.

Heavy imports (FastAPI, SQLAlchemy, the model) happen inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from layerguard.errors import InvalidInputError, MissingPackageError

API_KEY_ENV = "LAYERGUARD_API_KEY"


def serve(
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
        typer.Option(help="Service YAML (keys, limits, redaction); default: guard.yaml's `service:` section."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Local model (default: the guard's).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve a guarded, OpenAI-compatible API (/v1/chat/completions, /v1/guard/check, /metrics ...).

    API keys come from the service config (`api_keys: [{key_env: NAME, name: ..., rpm: ..., tpm: ...}]`);
    without any, $LAYERGUARD_API_KEY is the one accepted key.
    """
    try:
        import uvicorn

        from layerguard.guard.build import load_guard, local_backend_for
        from layerguard.guard.config import GuardConfig
        from layerguard.guard.rings.conversation import ConversationRing
        from layerguard.service.app import create_app
        from layerguard.service.config import ApiKeyConfig, ServiceConfig
        from layerguard.service.storage import Store
    except ImportError as exc:
        raise MissingPackageError(
            f"serving needs packages that are not installed ({exc.name})",
            hint="pip install 'layerguard[serve]'",
        ) from None

    gcfg = GuardConfig.load(guard)
    cfg = ServiceConfig.load(config) if config is not None else ServiceConfig.load(guard)
    updates: dict[str, object] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if db is not None:
        updates["db_url"] = db
    cfg = cfg.model_copy(update=updates)
    if not cfg.api_keys:
        if not os.environ.get(API_KEY_ENV):
            raise InvalidInputError(
                "no API keys configured: every request would be refused",
                hint=f"export {API_KEY_ENV}=<secret>, or list api_keys in the service config (--config)",
            )
        cfg.api_keys = [ApiKeyConfig(key_env=API_KEY_ENV, name="default", admin=True)]
    cfg.resolve_keys()  # fail on unset key variables before touching the database
    db_url = cfg.db_url or str(guard.resolve().parent / "service.db")
    store = Store(db_url, sqlite_synchronous=cfg.sqlite_synchronous)

    if upstream is not None:
        from layerguard.service.upstream import UpstreamBackend

        g = load_guard(guard, None, text_only=True)
        name = upstream_model or gcfg.model.name
        backend: object = UpstreamBackend(upstream, name, api_key=os.environ.get(upstream_key_env) or None)
    else:
        from layerguard.models import load_model

        lm = load_model(model or gcfg.model.name)
        g = load_guard(guard, lm)
        backend = local_backend_for(g, lm)
    for ring in g.rings:
        if isinstance(ring, ConversationRing):
            ring.state = store  # guard.yaml's conversation ring: state shared by replicas in the SQL store
    if cfg.conversation.enabled and "conversation" not in g.names:
        c = cfg.conversation
        g.rings.append(
            ConversationRing(
                store,
                decay=c.decay,
                floor=c.floor,
                escalate_at=c.escalate_at,
                score_rings=c.score_rings,
                burst_blocks=c.burst_blocks,
                burst_window_s=c.burst_window_s,
                cooldown_s=c.cooldown_s,
                ttl_s=c.ttl_s,
            )
        )
    app = create_app(g, backend, store, cfg)  # type: ignore[arg-type]
    typer.echo(
        f"layerguard serving {getattr(backend, 'model_name', '?')} on http://{cfg.host}:{cfg.port}/v1 "
        f"(rings: {', '.join(g.names)}; unavailable: {', '.join(g.unavailable) or 'none'}; db: {store.safe_url})",
        err=True,
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=log_level)
