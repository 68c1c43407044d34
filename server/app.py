"""FastAPI application: the webhooks of every registered channel, health checks and the authenticated API.

Webhook routes derive from the channel registry (``server.channels.registry``): each channel's POST is answered
by :class:`server.routes.webhooks.WebhookIngest` (authenticated over the raw bytes, stored durably, and only then
answered 200; a database outage answers 503 so the provider retries); a channel with a GET subscription handshake
(``Channel.subscription_params``, e.g. Meta's ``hub.challenge``) gets a GET route on the same path. Health checks
(:mod:`server.routes.health`) and webhooks are open; every ``/api`` route (:mod:`server.routes.api`) needs
``Authorization: Bearer ADMIN_API_TOKEN``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.config import Settings
from server.channels import registry
from server.routes import api, health
from server.routes.webhooks import WebhookApp, add_subscription_route
from server.services import Services
from server.tracing import configure_tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings, database_url: str, redis_url: str, *, services: Services | None = None) -> FastAPI:
    """Build the web app for the given settings and service URLs.

    Args:
        settings: process settings (``app.state.settings``: the admin token is checked against these).
        database_url: resolved PostgreSQL URI.
        redis_url: resolved Redis URL.
        services: pre-built services (tests); created in the lifespan otherwise.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        configure_tracing(settings)
        app.state.services = services or await Services.create(settings, database_url, redis_url, chat_model=False)
        # Startup objects (modules, graphs, clients) live as long as the process: move them out of the cyclic
        # collector's generations so collections triggered by requests don't re-scan them (14% of webhook CPU
        # before). Collect first so no garbage is frozen. https://docs.python.org/3/library/gc.html#gc.freeze
        gc.collect()
        gc.freeze()
        yield
        if own:
            await app.state.services.aclose()

    # Webhook POSTs are answered by a plain ASGI layer in front of FastAPI (server.routes.webhooks: the hot path
    # skips FastAPI's per-request work); the GET handshakes are FastAPI routes.
    classes = registry.channels()
    app = WebhookApp(
        ingest_webhooks=[(cls.webhook_path, name, cls.title) for name, cls in classes.items()],
        max_bytes=settings.WEBHOOK_MAX_BYTES,
        title="Procurement agent",
        description="WhatsApp procurement agent: webhooks, health and the purchase-request API.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    for name, cls in classes.items():
        if cls.subscription_params:
            add_subscription_route(app, name, cls)
    app.include_router(api.router)
    return app
