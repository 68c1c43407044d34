"""Failures: database outage at the webhook, a worker SIGKILLed in the middle of a turn.

These tests use their own arq queue, web server and workers so the session's worker cannot take their jobs.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from sqlalchemy import func, select, text

from core.db import inbox, turns
from tests.support.payloads import envelope, signed, text_message
from tests.support.stack import SECRET, WebServer, WorkerProcess, await_for, stack_env

AMINA = "254700000001"


@pytest.fixture
def iso_env(database_url, redis_url, graph_api, data_dir):
    return stack_env(
        database_url,
        redis_url,
        graph_api.url,
        data_dir,
        QUEUE_NAME="procure:resilience",
        TURN_TIMEOUT_SECONDS=4,
        SWEEP_INTERVAL_SECONDS=1,
    )


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="needs the embedded PostgreSQL to stop and start it")
async def test_database_outage_503_then_redelivery_processed_once(services, iso_env, engine, graph_api, fresh):
    web = WebServer(iso_env).start()
    worker = WorkerProcess(iso_env).start()
    try:
        payload = envelope([text_message(AMINA, "help", mid="wamid.OUTAGE1")])
        body, headers = signed(payload, SECRET)
        services.postgres.stop()
        try:
            r = httpx.post(web.url + "/webhooks/meta", content=body, headers=headers, timeout=30)
            assert r.status_code == 503
        finally:
            services.postgres.restart()
        # Meta redelivers the same message (twice, as it may): processed once.
        for _ in range(2):
            r = httpx.post(web.url + "/webhooks/meta", content=body, headers=headers, timeout=30)
            assert r.status_code == 200
        await await_for(lambda: graph_api.sent_messages(), timeout=40)
        await asyncio.sleep(1.5)
        assert len(graph_api.sent_messages()) == 1
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(inbox))).scalar_one() == 1
    finally:
        worker.stop()
        web.stop()


async def test_worker_killed_mid_turn_resumes_from_checkpoint_one_answer(iso_env, engine, graph_api, fresh):
    slow = dict(iso_env, TEST_STEP_DELAY_SECONDS="0.7")
    web = WebServer(slow).start()
    first = WorkerProcess(slow).start()
    second = None
    try:
        body, headers = signed(envelope([text_message(AMINA, "need 20 boxes a4 paper for nairobi by friday")]), SECRET)
        assert httpx.post(web.url + "/webhooks/meta", content=body, headers=headers).status_code == 200

        async def checkpoints_written():
            async with engine.connect() as conn:
                return (
                    await conn.execute(
                        text("SELECT count(*) FROM checkpoints WHERE thread_id = :t"), {"t": f"meta:{AMINA}"}
                    )
                ).scalar_one() >= 2

        await await_for(checkpoints_written, timeout=40)
        first.kill()
        assert graph_api.sent_messages() == []
        second = WorkerProcess(slow).start()
        await await_for(lambda: graph_api.sent_messages(), timeout=60)
        await asyncio.sleep(3)
        assert len(graph_api.sent_messages()) == 1
        assert "A4 copy paper" in graph_api.sent_messages()[0]["interactive"]["body"]["text"]
        async with engine.connect() as conn:
            row = (await conn.execute(select(turns))).one()
        assert row.status == "done" and row.attempts >= 2
    finally:
        first.kill()
        if second:
            second.stop()
        web.stop()


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="needs the embedded PostgreSQL to stop and start it")
def test_startup_waits_for_a_database_that_is_still_starting(services):
    """``serve``/``worker`` start-up (``upgrade(wait_seconds=...)``) rides out a database that comes up late."""
    import threading
    import time

    import psycopg

    from core.migrate import upgrade

    restarted = threading.Event()

    def restart() -> None:
        services.postgres.restart()
        restarted.set()

    restarter = threading.Timer(2.0, restart)
    services.postgres.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            upgrade(services.database_url)  # no wait: fails at once
        restarter.start()
        t = time.monotonic()
        upgrade(services.database_url, wait_seconds=60)
        assert time.monotonic() - t >= 1.5  # it did wait for the restart
    finally:
        if restarter.is_alive():
            restarter.join()
        if not restarted.is_set():
            restarter.cancel()
            services.postgres.restart()
