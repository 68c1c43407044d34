"""The arq worker: turn jobs, the recovery sweeper and (later) fulfilment jobs.

Run with ``procure worker``. Jobs are ``async def job(ctx, ...)``; shared clients are created once in
``startup`` and closed in ``shutdown``. arq semantics this relies on (arq 0.26+, https://arq-docs.helpmanual.io/): a
SIGKILLed job stays "in progress" until its timeout + 10 s, a job timeout is not retried, only ``Retry`` is.
The sweeper therefore re-schedules turns a dead worker left ``running`` and messages that were never scheduled
(e.g. Redis was down when the webhook stored them).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq import func
from arq.connections import RedisSettings
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import select, text

from core.config import Settings, get_settings
from core.db import turns
from core.embedded import libpq_url
from server.inbox import pending_chats
from server.services import Services, redis_settings, run_periodically
from server.turns import TurnRunner, run_turn_with_retry_mapping

log = logging.getLogger(__name__)


async def build_runner(services: Services) -> tuple[TurnRunner, AsyncConnectionPool]:
    """Compile both graphs with the Postgres checkpointer on a shared connection pool."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from graphs import approval, procurement

    pool = AsyncConnectionPool(
        libpq_url(services.database_url),
        min_size=1,
        max_size=10,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,  # drop connections a database restart broke
        open=False,
    )
    await pool.open()
    saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
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
    from server.tracing import configure_tracing

    configure_tracing(settings)  # LangSmith only with LANGSMITH_API_KEY; otherwise explicitly off
    services = await Services.create(settings, database_url, redis_url)
    runner, pool = await build_runner(services)
    ctx.update(services=services, runner=runner, cp_pool=pool)
    try:
        from server.fulfilment_jobs import install as install_fulfilment

        install_fulfilment(services)
    except ImportError:
        pass
    ctx["sweeper"] = asyncio.create_task(
        run_periodically("turn sweeper", lambda: sweep_once(services), services.settings.SWEEP_INTERVAL_SECONDS)
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close clients."""
    task = ctx.get("sweeper")
    if task:
        task.cancel()
    if "services" in ctx:
        try:
            from server.fulfilment_jobs import close as close_fulfilment

            await close_fulfilment(ctx["services"])  # the fulfilment sweeper, ERP client and Chromium
        except ImportError:
            pass
    if "cp_pool" in ctx:
        await ctx["cp_pool"].close()
    if "services" in ctx:
        await ctx["services"].aclose()


async def run_turn(ctx: dict[str, Any], provider: str, chat_id: str) -> str:
    """Job: run the chat's due turn (see :mod:`server.turns`)."""
    return await run_turn_with_retry_mapping(ctx["runner"], provider, chat_id, ctx.get("job_try", 1))


async def sweep_once(services: Services) -> int:
    """Re-schedule turns left running by a dead worker and messages never scheduled; returns jobs enqueued."""
    st = services.settings
    n = 0
    stale_after = st.TURN_TIMEOUT_SECONDS + 10
    async with services.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(turns.c.id, turns.c.provider, turns.c.chat_id, turns.c.attempts).where(
                    turns.c.status == "running",
                    turns.c.started_at < text(f"now() - interval '{stale_after} seconds'"),
                )
            )
        ).all()
    for r in rows:
        job = await services.redis.enqueue_job(
            "run_turn", r.provider, r.chat_id, _job_id=f"recover:{r.id}:{r.attempts}"
        )
        n += job is not None
    for provider, chat_id in await pending_chats(services.engine, st.DEBOUNCE_MAX_SECONDS + 20):
        bucket = int(asyncio.get_running_loop().time() // max(st.SWEEP_INTERVAL_SECONDS, 1))
        job = await services.redis.enqueue_job(
            "run_turn", provider, chat_id, _job_id=f"sweep:{provider}:{chat_id}:{bucket}"
        )
        n += job is not None
    return n


def worker_settings(settings: Settings, database_url: str, redis_url: str) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` for these settings and service URLs."""
    base: RedisSettings = redis_settings(redis_url)

    async def _startup(ctx: dict[str, Any]) -> None:
        ctx.update(settings=settings, database_url=database_url, redis_url=redis_url)
        await startup(ctx)

    functions: list[Any] = [func(run_turn, name="run_turn", max_tries=200, timeout=settings.TURN_TIMEOUT_SECONDS)]
    try:
        from server.fulfilment_jobs import jobs_for

        functions += jobs_for(settings)
    except ImportError:
        pass
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
    """``arq server.worker.WorkerSettings`` entry (URLs from settings; ``procure worker`` is the usual way)."""

    functions = [func(run_turn, name="run_turn", max_tries=200)]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings(get_settings().REDIS_URL or "redis://localhost:6379")
