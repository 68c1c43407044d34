"""The webhook hot path in pieces: the batched insert + schedule stages, and the plain ASGI webhook layer.

Real PostgreSQL and Redis; no worker runs here, so the queued arq jobs stay in Redis to be inspected.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from arq.constants import job_key_prefix
from arq.jobs import deserialize_job
from sqlalchemy import func, select

from core.config import Settings
from core.db import inbox
from server.channels.meta import MetaCloudChannel
from server.ingest import IngestBatcher, debounce_key
from server.services import Services
from tests.support.payloads import envelope, sign, signed, text_message
from tests.support.stack import SECRET

QUEUE = "procure:test-ingest"


@pytest.fixture
async def svc(database_url, redis_url, clean):
    s = Settings(META_APP_SECRET=SECRET, QUEUE_NAME=QUEUE, ENVIRONMENT="test", DEBOUNCE_SECONDS=2.0)
    services = await Services.create(s, database_url, redis_url, chat_model=False)
    yield services
    await services.aclose()


def parse(payload: dict) -> list:
    ch = MetaCloudChannel.from_settings(Settings(META_APP_SECRET=SECRET, ENVIRONMENT="test"))
    body, _ = signed(payload, SECRET)
    return ch.parse(body)[0]


async def queued(redis) -> dict[str, float]:
    return {k.decode(): s for k, s in await redis.zrange(QUEUE, 0, -1, withscores=True)}


async def wait_queued(redis, n: int, timeout: float = 5) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = await queued(redis)
        if len(q) >= n:
            return q
        await asyncio.sleep(0.02)
    return await queued(redis)


async def test_concurrent_stores_batch_insert_and_schedule_every_message(svc, engine):
    # 60 requests at once, 6 chats, one duplicate delivery of each of the first 10 messages.
    msgs = [
        parse(envelope([text_message(f"2547000100{i % 6:02d}", f"need {i} pens", mid=f"wamid.B{i:03d}")]))
        for i in range(50)
    ]
    results = await asyncio.gather(*(svc.ingest.store(m) for m in msgs + msgs[:10]))
    stored = [r for r in results if r]
    assert len(stored) == 50 and sum(len(r) for r in results) == 50  # each wamid new exactly once
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(inbox))).scalar_one() == 50
    q = await wait_queued(svc.redis, 6)
    await asyncio.sleep(0.2)  # nothing more comes
    q = await queued(svc.redis)
    assert len(q) == 6  # one deferred turn job per chat's burst, none for later messages or the duplicates
    now_ms = time.time() * 1000
    assert all(now_ms < due <= now_ms + 2_100 for due in q.values())  # due DEBOUNCE_SECONDS after arrival
    # The job is arq's own format: run_turn(provider, chat_id).
    some = next(iter(q))
    job = deserialize_job(await svc.redis.get(job_key_prefix + some))
    assert job.function == "run_turn" and job.args[0] == "meta" and job.args[1] == some.split(":")[2]
    burst = await svc.redis.hgetall(debounce_key("meta", "254700010000"))
    assert set(burst) == {b"first", b"last", b"job"} and float(burst[b"first"]) <= float(burst[b"last"])
    assert burst[b"job"].decode() in q and burst[b"job"].decode().startswith("turn:meta:254700010000:")


async def test_a_message_later_in_the_burst_moves_the_due_time_within_the_cap(svc):
    svc.settings.DEBOUNCE_MAX_SECONDS = 3.0
    chat = "254700020000"
    await svc.ingest.store(parse(envelope([text_message(chat, "first", mid="wamid.L1")])))
    ((job, first_due),) = (await wait_queued(svc.redis, 1)).items()

    async def due_after(mid: str, body: str, before: float) -> float:
        await asyncio.sleep(1.2)
        await svc.ingest.store(parse(envelope([text_message(chat, body, mid=mid)])))
        deadline = time.monotonic() + 5
        while (q := await queued(svc.redis)) == {job: before} and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert list(q) == [job]  # the burst keeps its one job; a later message moves it
        return q[job]

    second_due = await due_after("wamid.L2", "second", first_due)
    assert second_due - first_due == pytest.approx(1000, abs=300)  # quiet gap restarted by the second message
    third_due = await due_after("wamid.L3", "third", second_due)
    assert third_due == pytest.approx(first_due - 2000 + 3000, abs=150)  # capped at first + DEBOUNCE_MAX_SECONDS


async def test_a_burst_whose_job_is_gone_gets_a_new_one(svc):
    chat = "254700021000"
    await svc.ingest.store(parse(envelope([text_message(chat, "first", mid="wamid.G1")])))
    (job,) = await wait_queued(svc.redis, 1)
    # arq gave up on the job (or it ended) while the burst stayed open: the next message enqueues another job
    await svc.redis.delete(job_key_prefix + job)
    await svc.redis.zrem(QUEUE, job)
    await svc.ingest.store(parse(envelope([text_message(chat, "second", mid="wamid.G2")])))
    (again,) = await wait_queued(svc.redis, 1)
    assert again != job and again.startswith(f"turn:meta:{chat}:")
    assert (await svc.redis.hget(debounce_key("meta", chat), "job")).decode() == again


async def test_database_error_fails_every_request_of_the_batch(svc, database_url, redis_url):
    class Broken:
        def connection(self):
            raise OSError("database is down")

    batcher = IngestBatcher(Broken(), svc.redis, svc.settings)
    msgs = [parse(envelope([text_message("254700030000", "x", mid=f"wamid.E{i}")])) for i in range(5)]
    results = await asyncio.gather(*(batcher.store(m) for m in msgs), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert await queued(svc.redis) == {}
    # The stages survive the failure: the next batch goes through the real pool.
    batcher.pool = svc.pg
    assert len(await batcher.store(msgs[0])) == 1
    await batcher.aclose()


async def test_redis_down_still_stores_and_answers(svc, engine):
    from arq.connections import ArqRedis

    dead = ArqRedis.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    batcher = IngestBatcher(svc.pg, dead, svc.settings)
    new = await batcher.store(parse(envelope([text_message("254700040000", "hello", mid="wamid.R1")])))
    assert len(new) == 1  # durable, so the webhook answers 200; the worker's sweeper schedules it later
    await asyncio.sleep(0.2)
    await batcher.aclose()
    await dead.aclose()
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(inbox))).scalar_one() == 1


async def test_a_stored_message_never_scheduled_is_picked_up_by_the_sweeper(svc, engine):
    """The web process died between the commit and the Redis call: the worker's sweeper schedules the chat."""
    from sqlalchemy import text

    from server.worker.sweeper import sweep_turns as sweep_once

    svc.settings.SWEEP_INTERVAL_SECONDS = 3600  # one sweep bucket for the whole test
    batcher = IngestBatcher(svc.pg, svc.redis, svc.settings)
    batcher._schedule_stage = asyncio.Event().wait  # type: ignore[method-assign]  # dies before scheduling
    await batcher.store(parse(envelope([text_message("254700070000", "need 3 pens", mid="wamid.S1")])))
    for t in list(batcher._tasks):
        t.cancel()  # killed: no graceful close
    assert await queued(svc.redis) == {}
    assert await sweep_once(svc) == 0  # too young: its own turn job may still be coming
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE inbox SET received_at = received_at - interval '60 seconds'"))
    assert await sweep_once(svc) == 1
    assert await sweep_once(svc) == 0  # the same sweep job is already queued
    (job_id,) = await queued(svc.redis)
    job = deserialize_job(await svc.redis.get(job_key_prefix + job_id))
    assert job.function == "run_turn" and job.args == ("meta", "254700070000")


async def test_close_schedules_what_is_still_waiting(svc):
    batcher = IngestBatcher(svc.pg, svc.redis, svc.settings)
    batcher._schedule_stage = asyncio.Event().wait  # type: ignore[method-assign]  # a stage that never gets to run
    msgs = [parse(envelope([text_message("254700050000", f"m{i}", mid=f"wamid.C{i}")])) for i in range(3)]
    for m in msgs:
        assert len(await batcher.store(m)) == 1  # answered once stored, whatever the schedule stage does
    assert await queued(svc.redis) == {}
    await batcher.aclose()
    assert len(await queued(svc.redis)) == 1  # the burst's one job


# -- the ASGI layer in front of FastAPI --------------------------------------------------------------------------


async def test_webhook_layer_methods_streamed_bodies_and_openapi(web, fresh):
    url = web.url + "/webhooks/meta"
    assert httpx.put(url, content=b"{}").status_code == 405  # other methods fall through to FastAPI
    limit = 1_048_576

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(limit // 65_536 + 2):
            yield b" " * 65_536

    r = httpx.post(url, content=chunks(), headers={"X-Hub-Signature-256": sign(b"", SECRET)})
    assert r.status_code == 413
    body, headers = signed(envelope([text_message("254700060000", "need 1 stapler")]), SECRET)

    def streamed():
        yield body[:100]
        yield body[100:]

    r = httpx.post(url, content=streamed(), headers=headers)
    assert r.status_code == 200 and r.json() == {"status": "ok", "stored": 1, "duplicates": 0}
    assert r.headers["content-type"] == "application/json"
    spec = httpx.get(web.url + "/openapi.json").json()
    post = spec["paths"]["/webhooks/meta"]["post"]
    assert {"200", "401", "403", "413", "503"} <= set(post["responses"])
    assert "get" in spec["paths"]["/webhooks/meta"]  # the verification route is still documented
