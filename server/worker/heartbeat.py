"""Worker liveness in Redis: each worker process beats; what a dead worker held is reclaimed within seconds.

Without this, a SIGKILLed worker's work waits on three timers keyed to ``TURN_TIMEOUT_SECONDS`` (arq keeps the
job "in progress" for its timeout + 10 s, the chat lock lives timeout + 5 s, the turn sweeper waits timeout +
10 s): minutes with the production 120 s. Here ownership is decided by liveness, never by age:

- :func:`worker_id` names the process (``<host>-<pid>-<random>``); the chat lock's token starts with it
  (:func:`lock_token`), and :class:`Heartbeat` (a thread, so a busy event loop does not stop it) sets
  ``procure:worker:<id>`` with a :data:`BEAT_TTL_SECONDS` expiry every :data:`BEAT_SECONDS` and keeps the id in
  the registry set :data:`REGISTRY`.
- :func:`track_job` / :func:`untrack_job` keep the set of arq job ids the process is running
  (``procure:worker:<id>:jobs``; :class:`server.worker.resilient.ResilientWorker` calls them).
- :class:`Reaper` (every worker runs one) finds registered workers whose beat key is gone on two looks at least
  :data:`CONFIRM_SECONDS` apart (a live worker beats again within a second, also after a Redis restart that lost
  its key), then deletes the chat locks whose token names the dead worker and arq's in-progress keys of its jobs,
  so arq runs those jobs again at once and they take the chat lock and resume the turn from its checkpoint.

A live slow turn is never taken: its worker beats, so its lock and its job stay. Exactly-once of the turn itself
still rests on the chat lock and the turn claim (:mod:`server.worker.turns`, :mod:`server.worker.inbox`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import redis

log = logging.getLogger(__name__)

#: Set of the ids of workers that have beaten (dead ones are removed by the reaper).
REGISTRY = "procure:workers"
#: Seconds between two beats of a worker.
BEAT_SECONDS = 1.0
#: Expiry, in seconds, of a worker's beat key: missed beats for this long mean the process is gone.
BEAT_TTL_SECONDS = 4
#: A worker whose beat key is missing is declared dead only if it is still missing this many seconds later.
CONFIRM_SECONDS = 1.5
#: Seconds between two looks of the reaper.
REAP_SECONDS = 1.0
#: Pattern of the chat locks (:func:`server.worker.turns.lock_key`).
LOCK_PATTERN = "procure:turnlock:*"
#: arq's key prefix of a job being run (``arq.constants.in_progress_key_prefix``).
IN_PROGRESS_PREFIX = "arq:in-progress:"

_ids: dict[int, str] = {}

# Delete KEYS[1] only if its value starts with ARGV[1] (the dead worker's token prefix).
_DEL_IF_OWNED = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def worker_id() -> str:
    """This process's worker id, ``<host>-<pid>-<8 hex>`` (a forked child gets its own)."""
    pid = os.getpid()
    if pid not in _ids:
        _ids[pid] = f"{socket.gethostname()}-{pid}-{uuid.uuid4().hex[:8]}"
    return _ids[pid]


def lock_token() -> str:
    """A fresh chat-lock token naming this process: ``<worker id>/<32 hex>``."""
    return f"{worker_id()}/{uuid.uuid4().hex}"


def beat_key(wid: str) -> str:
    """Redis key whose presence says worker ``wid`` is alive."""
    return f"procure:worker:{wid}"


def jobs_key(wid: str) -> str:
    """Redis set of the arq job ids worker ``wid`` is running."""
    return f"procure:worker:{wid}:jobs"


class Heartbeat:
    """A daemon thread that beats for this process every :data:`BEAT_SECONDS` until :meth:`stop`.

    It has its own synchronous Redis client, so it beats while the event loop is busy (a long synchronous step
    is no death). Redis errors are logged once per outage and retried next beat.

    Args:
        redis_url: the worker's Redis URL (``redis://`` or ``unix://``).
    """

    def __init__(self, redis_url: str) -> None:
        self.wid = worker_id()
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procure-heartbeat", daemon=True)

    def beat(self) -> None:
        """One beat: the beat key with its expiry and the registry entry (raises on Redis errors)."""
        with self._client.pipeline(transaction=False) as pipe:
            pipe.set(beat_key(self.wid), str(time.time()), ex=BEAT_TTL_SECONDS)
            pipe.sadd(REGISTRY, self.wid)
            pipe.execute()

    def start(self) -> Heartbeat:
        """Beat once if Redis answers, then keep beating in the thread; returns ``self``."""
        try:
            self.beat()
        except redis.RedisError as exc:
            log.warning("heartbeat: redis unreachable (%s); beating when it is back", type(exc).__name__)
        self._thread.start()
        return self

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(BEAT_SECONDS):
            try:
                self.beat()
                failing = False
            except redis.RedisError as exc:
                if not failing:
                    log.warning("heartbeat: redis unreachable (%s)", type(exc).__name__)
                failing = True

    def stop(self) -> None:
        """Stop beating and remove this worker's keys (a clean exit holds nothing)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self._client.delete(beat_key(self.wid), jobs_key(self.wid))
            self._client.srem(REGISTRY, self.wid)
        except redis.RedisError:
            pass
        self._client.close()


async def track_job(client: Any, job_id: str) -> None:
    """Note that this process runs arq job ``job_id`` (best effort: an untracked job falls back to arq's timeout)."""
    try:
        await client.sadd(jobs_key(worker_id()), job_id)
    except Exception as exc:
        log.debug("track_job %s: %s", job_id, exc)


async def untrack_job(client: Any, job_id: str) -> None:
    """The job ended in this process (best effort)."""
    try:
        await client.srem(jobs_key(worker_id()), job_id)
    except Exception as exc:
        log.debug("untrack_job %s: %s", job_id, exc)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def reclaim(client: Any, dead: str, live: list[str]) -> tuple[int, int]:
    """Release what worker ``dead`` held: chat locks whose token names it, arq in-progress keys of its jobs.

    An in-progress key is left alone when a live worker tracks the same job (arq's key of the dead run expired
    and a live worker took the job). Then the worker is removed from the registry.

    Args:
        client: an async Redis client (``services.redis``).
        dead: the dead worker's id.
        live: ids of the workers alive now.

    Returns:
        ``(locks released, jobs released)``.
    """
    locks = 0
    prefix = f"{dead}/"
    async for key in client.scan_iter(match=LOCK_PATTERN, count=500):
        locks += int(await client.eval(_DEL_IF_OWNED, 1, key, prefix))
    jobs = 0
    for raw in await client.smembers(jobs_key(dead)):
        job = _text(raw)
        if any([await client.sismember(jobs_key(w), job) for w in live]):
            continue
        jobs += int(await client.delete(IN_PROGRESS_PREFIX + job))
    await client.delete(jobs_key(dead))
    await client.srem(REGISTRY, dead)
    return locks, jobs


class Reaper:
    """Finds dead workers and reclaims what they held (see the module docstring).

    Args:
        client: an async Redis client (``services.redis``).
        confirm_seconds: how long a missing beat key must stay missing before the worker counts as dead.
    """

    def __init__(self, client: Any, confirm_seconds: float = CONFIRM_SECONDS) -> None:
        self.client = client
        self.confirm_seconds = confirm_seconds
        self._missing: dict[str, float] = {}

    async def once(self) -> int:
        """One look: returns how many locks and jobs were released (0 mostly)."""
        ids = [_text(w) for w in await self.client.smembers(REGISTRY)]
        if not ids:
            return 0
        me = worker_id()
        flags = [w == me or bool(await self.client.exists(beat_key(w))) for w in ids]  # never reclaim itself
        now = time.monotonic()
        live = [w for w, ok in zip(ids, flags, strict=True) if ok]
        for w in live:
            self._missing.pop(w, None)
        released = 0
        for w, ok in zip(ids, flags, strict=True):
            if ok:
                continue
            first = self._missing.setdefault(w, now)
            if now - first < self.confirm_seconds:
                continue
            locks, jobs = await reclaim(self.client, w, live)
            self._missing.pop(w, None)
            log.warning("worker %s is gone: released %d chat lock(s) and %d job(s)", w, locks, jobs)
            released += locks + jobs
        return released

    async def run(self, interval: float = REAP_SECONDS) -> None:
        """Look every ``interval`` seconds until cancelled; Redis errors forget the pending suspicions."""
        while True:
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: a missing key seen across an outage proves nothing
                self._missing.clear()
                log.debug("reaper: %s", type(exc).__name__)
            await asyncio.sleep(interval)
