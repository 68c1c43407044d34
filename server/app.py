"""FastAPI application: WhatsApp webhooks, health checks and the authenticated API.

Webhook contract (Meta Cloud API, https://developers.facebook.com/docs/graph-api/webhooks/getting-started):
GET verifies the subscription (no signature); POST is checked with ``X-Hub-Signature-256`` over the raw bytes,
stored durably, and only then answered 200. A database outage answers 503 so Meta retries.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import PoolTimeout as PgPoolTimeout
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.config import Settings
from server.channels.base import PayloadError, SignatureError
from server.inbox import apply_statuses
from server.services import Services

log = logging.getLogger(__name__)
bearer = HTTPBearer(auto_error=False)


class BodyTooLarge(Exception):
    """The request body exceeded ``WEBHOOK_MAX_BYTES``."""


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without buffering it all.

    Raises:
        BodyTooLarge: declared or actual size above ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        if int(declared) > limit:
            raise BodyTooLarge
        return await request.body()  # the server enforces Content-Length; one read is cheapest
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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
        yield
        if own:
            await app.state.services.aclose()

    app = FastAPI(
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

    @app.get("/webhooks/meta", tags=["webhooks"], response_class=PlainTextResponse)
    async def meta_verify(
        request: Request,
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
    ) -> PlainTextResponse:
        """Subscription verification: echo ``hub.challenge`` when the verify token matches, else 403."""
        channel = svc(request).channels["meta"]
        answer = channel.verify_subscription(mode, token, challenge)  # type: ignore[attr-defined]
        if answer is None:
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(answer)

    @app.post("/webhooks/meta", tags=["webhooks"])
    async def meta_webhook(request: Request) -> JSONResponse:
        """Receive messages and statuses: verify, store durably (exactly once), schedule turns, then 200."""
        s = svc(request)
        channel = s.channels["meta"]
        try:
            body = await read_body(request, settings.WEBHOOK_MAX_BYTES)
        except BodyTooLarge:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            # Meta signs the body only; building the URL (needed by Twilio's scheme) is skipped on this hot path.
            channel.verify_request(request.headers, body, "")
        except SignatureError as exc:
            status = 401 if "missing" in str(exc).lower() else 403
            log.warning("meta webhook rejected: %s", exc)
            return JSONResponse({"error": "invalid signature"}, status_code=status)
        try:
            messages, statuses = channel.parse(body, request.headers.get("content-type", "application/json"))
        except PayloadError as exc:
            log.warning("meta webhook payload refused: %s", exc)
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        try:
            new = await s.ingest.store(messages)
            if statuses:
                await apply_statuses(s.engine, statuses)
        except (OperationalError, DBAPIError, PoolTimeout, psycopg.Error, PgPoolTimeout, OSError) as exc:
            log.error("database unavailable, asking Meta to retry: %s", type(exc).__name__)
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503, headers={"Retry-After": "30"})
        return JSONResponse({"status": "ok", "stored": len(new), "duplicates": len(messages) - len(new)})

    from server.api import make_router

    app.include_router(make_router(svc), dependencies=[Depends(require_admin)])
    return app
