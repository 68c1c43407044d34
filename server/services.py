"""Process-wide services built once at start-up from Settings: database, Redis/arq, channels, graphs, model.

Both the web app and the arq worker build one :class:`Services`; graph code receives what it needs through the
per-turn ``Context`` instead of reading globals or the environment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config import Settings
from core.db import make_engine
from core.embedded import libpq_url
from core.llm import make_chat_model
from server.channels import registry
from server.channels.protocol import Channel
from server.ingest import IngestBatcher
from tools.catalog import CatalogCache, CatalogIndex

log = logging.getLogger(__name__)


def redis_settings(url: str) -> RedisSettings:
    """Arq's RedisSettings from a ``redis://`` or ``unix://`` URL."""
    rs = RedisSettings.from_dsn(url)
    rs.conn_timeout = 2
    rs.conn_retries = 2
    return rs


@dataclass
class Services:
    """Clients shared by every request or job of this process.

    Attributes:
        settings: the process settings.
        database_url: resolved PostgreSQL URI (embedded or external).
        redis_url: resolved Redis URL.
        engine: SQLAlchemy async engine.
        redis: arq's Redis pool (enqueue jobs, debounce state, locks).
        channels: the configured channels by name (``server.channels.registry.build``).
        chat_model: the intake LLM or ``None``.
    """

    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    redis: ArqRedis
    channels: dict[str, Channel]
    chat_model: Any = None
    #: psycopg pool (autocommit) for the webhook's hot path.
    pg: Any = None
    #: batches concurrent webhook inserts and turn scheduling.
    ingest: IngestBatcher | None = None
    _catalogs: CatalogCache = field(default_factory=CatalogCache)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def create(
        cls, settings: Settings, database_url: str, redis_url: str, *, pool_size: int = 10, chat_model: Any = None
    ) -> Services:
        """Connect to PostgreSQL and Redis and build every configured channel of the registry."""
        engine = make_engine(database_url, pool_size=pool_size)
        redis = await create_pool(redis_settings(redis_url), default_queue_name=settings.QUEUE_NAME)
        channels = registry.build(settings)
        pg = AsyncConnectionPool(
            libpq_url(database_url),
            min_size=2,
            max_size=pool_size,
            kwargs={"autocommit": True},
            # No check on checkout (a round trip per batch): IngestBatcher retries once on a dead connection.
            timeout=5,
            open=False,
        )
        await pg.open(wait=False)
        services = cls(
            pg=pg,
            settings=settings,
            database_url=database_url,
            redis_url=redis_url,
            engine=engine,
            redis=redis,
            channels=channels,
            chat_model=chat_model if chat_model is not None else make_chat_model(settings),
        )
        services.ingest = IngestBatcher(pg, redis, settings)
        return services

    async def catalog(self) -> CatalogIndex:
        """The catalogue index, rebuilt when another process imported a new catalogue (checked every 5 s)."""
        return await self._catalogs.get(self.engine, embedding_model=self.settings.EMBEDDING_MODEL)

    async def readiness(self) -> dict[str, str]:
        """``{"database": ..., "redis": ...}``: ``"ok"`` for each that answers, else ``"error: <exception type>"``."""
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await self.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        return checks

    async def aclose(self) -> None:
        """Close every client."""
        for ch in self.channels.values():
            await ch.aclose()
        await self.redis.aclose()
        if self.ingest is not None:
            await self.ingest.aclose()
        if self.pg is not None:
            await self.pg.close()
        await self.engine.dispose()
