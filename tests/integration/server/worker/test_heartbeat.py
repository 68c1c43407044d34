"""Worker liveness against Redis: a dead worker's chat locks and arq jobs are released, a live worker's never.

The "dead" worker is a registry entry with no beat key (what a SIGKILLed process leaves once its key expired);
the live one is this test process beating with :class:`server.worker.heartbeat.Heartbeat`, or a bare beat key (a
worker whose slow turn is still running). arq runs for real on a queue of its own.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from arq import func
from arq.connections import create_pool
from sqlalchemy import insert

from core.db import turns
from server.services import redis_settings
from server.worker.heartbeat import (
    IN_PROGRESS_PREFIX,
    REGISTRY,
    Heartbeat,
    Reaper,
    beat_key,
    jobs_key,
    lock_token,
    worker_id,
)
from server.worker.resilient import ResilientWorker, waiting_turns
from server.worker.turns import lock_key

QUEUE = "procure:test-heartbeat"
DEAD = "host-1-deadbeef"
SLOW = "host-2-510wbeat"


@pytest.fixture
async def redis(redis_url: str, clean: None) -> Any:
    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE)
    yield pool
    await pool.aclose()


async def held_by(redis: Any, wid: str, chat: str, job: str | None = None) -> None:
    """Make ``wid`` a registered worker holding ``chat``'s lock (and arq job ``job`` in progress)."""
    await redis.sadd(REGISTRY, wid)
    await redis.set(lock_key("meta", chat), f"{wid}/0123456789abcdef", px=600_000)
    if job is not None:
        await redis.sadd(jobs_key(wid), job)
        await redis.psetex(IN_PROGRESS_PREFIX + job, 600_000, b"1")


async def test_a_dead_workers_locks_and_jobs_are_released_and_a_live_ones_kept(redis: Any, redis_url: str) -> None:
    beat = Heartbeat(redis_url).start()
    try:
        await held_by(redis, DEAD, "254700000001", job="turn:meta:254700000001:1")
        await held_by(redis, SLOW, "254700000002", job="turn:meta:254700000002:2")
        await redis.set(beat_key(SLOW), "1", ex=60)  # alive: its turn is slow, not dead
        mine = lock_token()
        await redis.set(lock_key("meta", "254700000003"), mine, px=600_000)

        assert await Reaper(redis, confirm_seconds=0).once() == 2

        assert await redis.get(lock_key("meta", "254700000001")) is None
        assert await redis.exists(IN_PROGRESS_PREFIX + "turn:meta:254700000001:1") == 0
        assert not await redis.sismember(REGISTRY, DEAD)
        assert await redis.exists(jobs_key(DEAD)) == 0
        assert await redis.get(lock_key("meta", "254700000002")) == f"{SLOW}/0123456789abcdef".encode()
        assert await redis.exists(IN_PROGRESS_PREFIX + "turn:meta:254700000002:2") == 1
        assert await redis.get(lock_key("meta", "254700000003")) == mine.encode()
        assert await redis.sismember(REGISTRY, worker_id())
    finally:
        beat.stop()
    assert not await redis.sismember(REGISTRY, worker_id())  # a clean exit leaves nothing behind
    assert await redis.exists(beat_key(worker_id())) == 0


async def test_a_missing_beat_is_confirmed_before_anything_is_released(redis: Any) -> None:
    await held_by(redis, DEAD, "254700000001", job="j1")
    reaper = Reaper(redis, confirm_seconds=0.3)
    assert await reaper.once() == 0  # first look: only suspected (Redis may just have restarted)
    assert await redis.exists(lock_key("meta", "254700000001")) == 1
    await redis.set(beat_key(DEAD), "1", ex=60)  # it beats again: not dead
    await asyncio.sleep(0.35)
    assert await reaper.once() == 0
    await redis.delete(beat_key(DEAD))
    assert await reaper.once() == 0  # a new suspicion starts over
    await asyncio.sleep(0.35)
    assert await reaper.once() == 2
    assert await redis.exists(lock_key("meta", "254700000001"), IN_PROGRESS_PREFIX + "j1") == 0


async def test_a_job_a_live_worker_took_over_keeps_its_in_progress_key(redis: Any) -> None:
    await held_by(redis, DEAD, "254700000001", job="j1")
    await redis.sadd(REGISTRY, SLOW)
    await redis.set(beat_key(SLOW), "1", ex=60)
    await redis.sadd(jobs_key(SLOW), "j1")  # the dead run's key expired and SLOW runs the job now
    assert await Reaper(redis, confirm_seconds=0).once() == 1  # the lock only
    assert await redis.exists(IN_PROGRESS_PREFIX + "j1") == 1


async def test_arq_runs_a_dead_workers_job_again_at_once(redis: Any, redis_url: str) -> None:
    ran: list[str] = []

    async def echo(ctx: dict[str, Any], word: str) -> str:
        assert await ctx["redis"].sismember(jobs_key(worker_id()), ctx["job_id"])  # tracked while it runs
        ran.append(word)
        return word

    job = await redis.enqueue_job("echo", "again", _job_id="echo-1")
    assert job is not None
    await redis.sadd(REGISTRY, DEAD)
    await redis.sadd(jobs_key(DEAD), "echo-1")
    await redis.psetex(IN_PROGRESS_PREFIX + "echo-1", 600_000, b"1")  # arq's mark of the killed run

    def worker() -> ResilientWorker:
        return ResilientWorker(
            functions=[func(echo, name="echo")],
            redis_settings=redis_settings(redis_url),
            queue_name=QUEUE,
            burst=True,
            poll_delay=0.05,
            handle_signals=False,
        )

    first = worker()
    with pytest.raises(TimeoutError):  # a burst worker waits while the job is "in progress" elsewhere
        await asyncio.wait_for(first.main(), 1.5)
    await first.close()
    assert ran == []  # arq skipped the job: another worker has it in progress
    assert await Reaper(redis, confirm_seconds=0).once() == 1
    second = worker()
    await asyncio.wait_for(second.main(), 30)
    await second.close()
    assert ran == ["again"]
    assert await redis.smembers(jobs_key(worker_id())) == set()  # untracked when it ended


async def test_a_running_turn_with_a_free_lock_waits_and_one_with_a_held_lock_does_not(redis: Any, engine: Any) -> None:
    async with engine.begin() as conn:
        for chat in ("254700000001", "254700000002"):
            await conn.execute(insert(turns).values(provider="meta", chat_id=chat, thread_id=f"meta:{chat}"))
        await conn.execute(insert(turns).values(provider="meta", chat_id="254700000003", thread_id="x", status="done"))
    await redis.set(lock_key("meta", "254700000002"), lock_token(), px=600_000)
    services = SimpleNamespace(engine=engine, redis=redis)
    assert await waiting_turns(services) == [("meta", "254700000001")]  # type: ignore[arg-type]
