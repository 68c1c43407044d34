"""Recovery sweeps of the worker: turns a dead worker left running, messages that were never scheduled.

arq semantics this relies on (arq 0.26+, https://arq-docs.helpmanual.io/): a SIGKILLed job stays "in progress"
until its timeout + 10 s, a job timeout is not retried, only ``Retry`` is. :func:`sweep_turns` therefore
re-schedules turns left ``running`` and messages stored while Redis was down; :func:`run_periodically` runs a
sweep (this one, or the fulfilment sweep of :mod:`server.worker.jobs`) for the life of the worker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select, text

from core.db import turns
from server.services import Services
from server.worker.inbox import pending_chats

log = logging.getLogger(__name__)


async def sweep_turns(services: Services) -> int:
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


async def run_periodically(what: str, job: Any, interval: float) -> None:
    """Run ``await job()`` every ``interval`` seconds until cancelled; failures are logged, never fatal.

    Used by the workers' sweepers, which must outlive database or Redis hiccups. ``job`` returns how many
    jobs it re-enqueued (logged when non-zero).
    """
    while True:
        try:
            n = await job()
            if n:
                log.info("%s re-enqueued %d job(s)", what, n)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s", what, exc)
        await asyncio.sleep(interval)
