"""The arq worker's settings: start-up and shutdown of the process's clients, and the jobs it runs.

``procure worker`` runs them in :func:`server.worker.resilient.run_worker`, which survives Redis and PostgreSQL
outages; start-up also starts its connection watch (:func:`server.worker.resilient.watch_connections`).

Run with ``procure worker`` (or ``arq server.worker.settings.WorkerSettings``). Jobs are
``async def job(ctx, ...)`` (:mod:`server.worker.jobs`); shared clients are created once in :func:`startup` and
closed in :func:`shutdown`, which also start and stop the recovery sweepers (:mod:`server.worker.sweeper`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from arq import func
from arq.connections import RedisSettings
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.config import Settings, get_settings
from core.db import PING_IDLE_SECONDS
from core.embedded import libpq_url
from graphs import approval, procurement
from server.services import Services, redis_settings
from server.tracing import configure_tracing
from server.worker.heartbeat import Heartbeat, Reaper
from server.worker.jobs import JOBS, install, jobs_for, run_turn
from server.worker.jobs import close as close_fulfilment
from server.worker.resilient import watch_connections
from server.worker.sweeper import run_periodically, sweep_turns
from server.worker.turns import TurnRunner

log = logging.getLogger(__name__)


class IdleCheck:
    """The checkpointer pool's connection check: a ping only for a connection idle longer than ``idle_seconds``.

    ``psycopg_pool``'s ``check_connection`` on every checkout cost a round trip per checkpointer call (three or more
    per turn). A connection back in the pool within the last second was working then; one idle longer (a database
    restart needs longer than that) is pinged, and a failed ping makes the pool take another connection. A
    connection broken within the second fails its call once: the turn's job retries (a transient failure) and the
    pool discards the broken connection when it comes back.

    Args:
        idle_seconds: idle time after which a checkout pings (:data:`core.db.PING_IDLE_SECONDS`).
    """

    def __init__(self, idle_seconds: float = PING_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def returned(self, conn: Any) -> None:
        """Pool ``reset`` callback: note when the connection came back."""
        self._returned[conn] = time.monotonic()

    async def check(self, conn: Any) -> None:
        """Pool ``check`` callback: ping a connection idle too long (raises when it is broken)."""
        since = self._returned.get(conn)
        if since is None or time.monotonic() - since > self.idle_seconds:
            await AsyncConnectionPool.check_connection(conn)


async def build_runner(services: Services) -> tuple[TurnRunner, AsyncConnectionPool]:
    """Compile both graphs with the Postgres checkpointer on a shared connection pool."""
    idle_check = IdleCheck()
    pool = AsyncConnectionPool(
        libpq_url(services.database_url),
        min_size=1,
        max_size=10,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=idle_check.check,  # drop connections a database restart broke (pinged only after an idle spell)
        reset=idle_check.returned,
        open=False,
    )
    await pool.open()
    saver = AsyncPostgresSaver(pool)
    runner = TurnRunner(
        services,
        procurement.builder.compile(checkpointer=saver, name="procurement"),
        approval.builder.compile(checkpointer=saver, name="approval"),
    )
    return runner, pool


async def startup(ctx: dict[str, Any]) -> None:
    """Create the process's clients once."""
    settings: Settings = ctx.get("settings") or get_settings()
    database_url = ctx.get("database_url") or settings.DATABASE_URL
    redis_url = ctx.get("redis_url") or settings.REDIS_URL
    assert database_url and redis_url, "the worker needs DATABASE_URL and REDIS_URL (procure serve sets them)"
    configure_tracing(settings)  # LangSmith only with LANGSMITH_API_KEY; otherwise explicitly off
    # Each client goes into ctx as soon as it exists, so a start-up that fails half way (database down) closes
    # what it opened before the worker tries again (server.worker.resilient.run_worker).
    services = ctx["services"] = await Services.create(settings, database_url, redis_url)
    runner, ctx["cp_pool"] = await build_runner(services)
    ctx["runner"] = runner
    install(services)  # fulfilment: the Context's queue and its sweeper (ERP and Chromium start with a first order)
    ctx["sweeper"] = asyncio.create_task(
        run_periodically("turn sweeper", lambda: sweep_turns(services), services.settings.SWEEP_INTERVAL_SECONDS)
    )
    ctx["watch"] = asyncio.create_task(watch_connections(services))
    # Liveness: this process beats; a dead worker's chat locks and jobs are released within seconds.
    ctx["heartbeat"] = Heartbeat(redis_url).start()
    ctx["reaper"] = asyncio.create_task(Reaper(services.redis).run())


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close clients (those that exist: start-up may have failed half way)."""
    for name in ("sweeper", "watch", "reaper"):
        task = ctx.get(name)
        if task:
            task.cancel()
    if "heartbeat" in ctx:
        ctx.pop("heartbeat").stop()
    if "services" in ctx:
        await close_fulfilment(ctx["services"])  # the fulfilment sweeper, ERP client and Chromium
    if "cp_pool" in ctx:
        await ctx["cp_pool"].close()
    if "services" in ctx:
        await ctx["services"].aclose()


def worker_settings(settings: Settings, database_url: str, redis_url: str) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` for these settings and service URLs."""
    base: RedisSettings = redis_settings(redis_url)

    async def _startup(ctx: dict[str, Any]) -> None:
        ctx.update(settings=settings, database_url=database_url, redis_url=redis_url)
        await startup(ctx)

    functions: list[Any] = [func(run_turn, name="run_turn", max_tries=200, timeout=settings.TURN_TIMEOUT_SECONDS)]
    functions += jobs_for(settings)
    return {
        "functions": functions,
        "on_startup": _startup,
        "on_shutdown": shutdown,
        "redis_settings": base,
        "max_jobs": settings.WORKER_MAX_JOBS,
        "queue_name": settings.QUEUE_NAME,
        "job_timeout": settings.TURN_TIMEOUT_SECONDS,
        "keep_result": 60,
        "poll_delay": 0.1,
        "handle_signals": True,
    }


class WorkerSettings:
    """``arq server.worker.settings.WorkerSettings`` entry (URLs from settings; ``procure worker`` is the usual way)."""

    functions = [func(run_turn, name="run_turn", max_tries=200), *JOBS]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings(get_settings().REDIS_URL or "redis://localhost:6379")
