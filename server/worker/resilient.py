"""The worker process's main loop: an arq worker that rides out Redis and PostgreSQL outages instead of exiting.

arq 0.28's ``Worker`` ends its ``main()`` on the first Redis ``ConnectionError`` of its poll loop, and a failing
``on_startup`` (database down) ends the process. Here:

- :class:`ResilientWorker` catches Redis errors of one poll iteration, logs the outage once, and polls again with
  backoff (``RECONNECT_MIN_SECONDS`` doubling to ``RECONNECT_MAX_SECONDS``); jobs already running keep running.
- :func:`run_worker` re-creates the worker with the same backoff when it could not start (Redis or PostgreSQL
  unreachable at start-up) and returns only on SIGTERM / SIGINT.
- :func:`watch_connections` (started by the worker's start-up) pings Redis and PostgreSQL every
  ``WATCH_INTERVAL_SECONDS``; when a service comes back it re-enqueues at once the chats whose messages were
  stored meanwhile (their scheduling failed, or their turn job failed on the database), instead of leaving them to
  the periodic sweeper, which only looks at messages older than ``DEBOUNCE_MAX_SECONDS + 20`` s.

The backoff is capped at a few seconds (not 30 s like the supervisor's restarts of a crashed process): a ping is
cheap and a short cap keeps the recovery after an outage within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select, text

from core.db import turns
from server.services import Services
from server.worker.heartbeat import track_job, untrack_job
from server.worker.inbox import pending_chats
from server.worker.turns import lock_key

log = logging.getLogger(__name__)

#: First pause, in seconds, before trying an unreachable service again; doubled per failure up to the maximum.
RECONNECT_MIN_SECONDS = 0.5
#: Longest pause, in seconds, between two attempts to reach Redis or PostgreSQL.
RECONNECT_MAX_SECONDS = 2.0
#: How often, in seconds, the worker pings Redis and PostgreSQL to notice an outage ending.
WATCH_INTERVAL_SECONDS = 1.0
#: Errors that mean "Redis is not reachable right now" (refused, reset, socket gone, timeout, still loading).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def next_delay(delay: float) -> float:
    """The pause after ``delay`` seconds: doubled, at most ``RECONNECT_MAX_SECONDS``."""
    return min(max(delay, RECONNECT_MIN_SECONDS) * 2, RECONNECT_MAX_SECONDS)


class ResilientWorker(Worker):
    """arq's ``Worker`` whose poll loop waits for Redis to come back instead of ending the process.

    It also tracks the jobs it runs under its worker id (:func:`server.worker.heartbeat.track_job`), so that when
    the process dies another worker (or its successor) releases them at once instead of after arq's timeout.
    """

    _outage_started: float | None = None
    _retry_delay: float = RECONNECT_MIN_SECONDS

    async def run_job(self, job_id: str, score: int) -> None:
        """Run arq's ``run_job`` with the job noted in this worker's set of running jobs meanwhile."""
        await track_job(self.pool, job_id)
        try:
            await super().run_job(job_id, score)
        finally:
            await untrack_job(self.pool, job_id)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_ERRORS as exc:
            if self._outage_started is None:
                self._outage_started = time.monotonic()
                log.warning("redis unreachable (%s): the worker keeps polling with backoff", type(exc).__name__)
            await asyncio.sleep(self._retry_delay)
            self._retry_delay = next_delay(self._retry_delay)
            return
        if self._outage_started is not None:
            log.warning("redis reachable again after %.1f s: polling resumed", time.monotonic() - self._outage_started)
            self._outage_started, self._retry_delay = None, RECONNECT_MIN_SECONDS


async def _redis_ok(services: Services) -> bool:
    try:
        await asyncio.wait_for(services.redis.ping(), 2)
        return True
    except Exception:
        return False


async def _database_ok(services: Services) -> bool:
    try:
        async with asyncio.timeout(2):
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def waiting_turns(services: Services) -> list[tuple[str, str]]:
    """Chats with a turn left ``running`` and no worker on it (its chat lock is free): its job waits on a backoff.

    A turn that hit the outage raised ``arq.Retry`` with a backoff growing to 30 s and released its chat lock;
    a turn whose lock is held is being worked on (or its dead worker's lock is released by the reaper).
    """
    async with services.engine.connect() as conn:
        rows = (await conn.execute(select(turns.c.provider, turns.c.chat_id).where(turns.c.status == "running"))).all()
    return [(r.provider, r.chat_id) for r in rows if not await services.redis.exists(lock_key(r.provider, r.chat_id))]


async def catch_up(services: Services, reason: str) -> int:
    """Enqueue a turn for every chat with messages still unclaimed, or a turn waiting, after an outage.

    Messages younger than ``DEBOUNCE_SECONDS`` are left to their own debounced job (they arrived after the
    service came back and were scheduled normally). Turns left ``running`` with a free chat lock (their job waits
    out a retry backoff of up to 30 s, :func:`server.worker.turns.run_turn_with_retry_mapping`) are resumed now;
    their own job later finds nothing to do. Returns jobs enqueued.
    """
    n = 0
    stamp = int(time.time() * 1000)
    chats = await pending_chats(services.engine, services.settings.DEBOUNCE_SECONDS)
    chats += [c for c in await waiting_turns(services) if c not in chats]
    for provider, chat_id in chats:
        job = await services.redis.enqueue_job(
            "run_turn", provider, chat_id, _job_id=f"catchup:{provider}:{chat_id}:{stamp}"
        )
        n += job is not None
    log.warning("%s: re-enqueued %d chat(s) with messages stored meanwhile", reason, n)
    return n


async def watch_connections(services: Services, interval: float = WATCH_INTERVAL_SECONDS) -> None:
    """Ping Redis and PostgreSQL every ``interval`` seconds; after an outage of either, run :func:`catch_up`.

    Runs for the life of the worker (cancel it to stop); never raises otherwise.
    """
    down: dict[str, float] = {}
    while True:
        try:
            state = {"redis": await _redis_ok(services), "database": await _database_ok(services)}
            for name, ok in state.items():
                if not ok and name not in down:
                    down[name] = time.monotonic()
                    log.warning("%s unreachable: waiting for it to come back", name)
            if down and all(state.values()):
                reason = ", ".join(f"{n} back after {time.monotonic() - t:.1f} s" for n, t in down.items())
                await catch_up(services, reason)
                down.clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a service dropped again between the ping and the catch-up: try next round
            log.warning("connection watch: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def run_worker(make_kwargs: Callable[[], dict[str, Any]]) -> None:
    """Run :class:`ResilientWorker` until SIGTERM / SIGINT, re-creating it with backoff when it cannot start.

    Args:
        make_kwargs: builds ``arq.Worker`` keyword arguments (``server.worker.settings.worker_settings``).
    """
    delay = RECONNECT_MIN_SECONDS
    while True:
        stopped: list[signal.Signals] = []
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        worker = ResilientWorker(**make_kwargs())
        worker.on_stop = stopped.append
        started = time.monotonic()
        try:
            worker.run()
        except (Exception, asyncio.CancelledError) as exc:
            if not stopped:
                log.warning("worker stopped (%s: %s); starting again in %.1f s", type(exc).__name__, exc, delay)
        finally:
            for sig, handler in previous.items():  # arq's loop handlers would swallow a signal from now on
                worker.loop.remove_signal_handler(sig)
                signal.signal(sig, handler)
        if stopped:
            return
        if time.monotonic() - started > 60:
            delay = RECONNECT_MIN_SECONDS
        time.sleep(delay)
        delay = next_delay(delay)
