"""FastAPI application: the webhooks of every registered channel, health checks and the authenticated API.

Webhook routes derive from the channel registry (``server.channels.registry``): each channel's POST is answered
by ``server.webhooks.WebhookIngest`` (authenticated over the raw bytes, stored durably, and only then answered
200; a database outage answers 503 so the provider retries); a channel with a GET subscription handshake
(``Channel.subscription_params``, e.g. Meta's ``hub.challenge``) gets a GET route on the same path.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text

from core.config import Settings
from server.channels import registry
from server.channels.protocol import Channel
from server.services import Services
from server.webhooks import WebhookApp

log = logging.getLogger(__name__)
bearer = HTTPBearer(auto_error=False)


def create_app(settings: Settings, database_url: str, redis_url: str, *, services: Services | None = None) -> FastAPI:
    """Build the web app for the given settings and service URLs.

    Args:
        settings: process settings.
        database_url: resolved PostgreSQL URI.
        redis_url: resolved Redis URL.
        services: pre-built services (tests); created in the lifespan otherwise.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        from server.tracing import configure_tracing

        configure_tracing(settings)
        app.state.services = services or await Services.create(settings, database_url, redis_url, chat_model=False)
        import gc

        # Startup objects (modules, graphs, clients) live as long as the process: move them out of the cyclic
        # collector's generations so collections triggered by requests don't re-scan them (14% of webhook CPU
        # before). Collect first so no garbage is frozen. https://docs.python.org/3/library/gc.html#gc.freeze
        gc.collect()
        gc.freeze()
        yield
        if own:
            await app.state.services.aclose()

    # Webhook POSTs are answered by a plain ASGI layer in front of FastAPI (server.webhooks: the hot path skips
    # FastAPI's per-request work); the GET handshakes below stay FastAPI routes.
    classes = registry.channels()
    app = WebhookApp(
        ingest_webhooks=[(cls.webhook_path, name, cls.title) for name, cls in classes.items()],
        max_bytes=settings.WEBHOOK_MAX_BYTES,
        title="Procurement agent",
        description="WhatsApp procurement agent: webhooks, health and the purchase-request API.",
        version="0.1.0",
        lifespan=lifespan,
    )

    def svc(request: Request) -> Services:
        return request.app.state.services

    def require_admin(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        expected = settings.ADMIN_API_TOKEN.get_secret_value().encode()
        given = (creds.credentials if creds else "").encode()
        if not creds or creds.scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the database and Redis answer."""
        s = svc(request)
        checks: dict[str, str] = {}
        try:
            async with s.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await s.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    for name, cls in classes.items():
        if cls.subscription_params:
            _add_subscription_route(app, name, cls, svc)

    from server.api import make_router

    app.include_router(make_router(svc), dependencies=[Depends(require_admin)])
    return app


def _add_subscription_route(app: FastAPI, name: str, cls: type[Channel], svc: Any) -> None:
    """``GET <webhook path>``: the channel's subscription handshake (200 with its answer, else 403 or 404)."""

    async def verify(request: Request) -> PlainTextResponse:
        channel = svc(request).channels.get(name)
        if channel is None:
            return PlainTextResponse("channel not configured", status_code=404)
        answer = channel.answer_subscription(request.query_params)
        if answer is None:
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(answer)

    params = [
        {"name": p, "in": "query", "required": False, "schema": {"type": "string"}} for p in cls.subscription_params
    ]
    app.add_api_route(
        cls.webhook_path,
        verify,
        methods=["GET"],
        tags=["webhooks"],
        response_class=PlainTextResponse,
        name=f"{name}_subscription",
        summary=f"{cls.title} webhook subscription handshake",
        description="Answer the provider's subscription check: 200 with its challenge when the token matches, else 403.",
        openapi_extra={"parameters": params},
    )
