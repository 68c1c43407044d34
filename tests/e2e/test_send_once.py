"""Send at most once, unknown senders, per-turn caps: the whole stack (web server, worker processes, the Graph API
stand-in over HTTP).

These tests use their own arq queue, web server and workers so the session's worker cannot take their jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select, text

from core.db import inbox, outbound_messages, turns
from sandboxes.whatsapp.status_webhooks import StatusWebhooks
from tests.support.payloads import envelope, status, text_message
from tests.support.stack import SECRET, WebServer, WorkerProcess, await_for, post, stack_env

AMINA = "254700000001"
STRANGER = "254799999999"


@pytest.fixture
def iso_env(database_url: str, redis_url: str, graph_api: Any, data_dir: Any) -> dict[str, str]:
    return stack_env(
        database_url,
        redis_url,
        graph_api.url,
        data_dir,
        QUEUE_NAME="procure:sendonce",
        TURN_TIMEOUT_SECONDS=4,
        SWEEP_INTERVAL_SECONDS=1,
        SEND_CONFIRM_SECONDS=60,
        TURN_MAX_MESSAGES=50,
    )


@pytest.fixture
async def fresh_replies(engine: Any, fresh: Any) -> Any:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE unknown_sender_replies"))
    return fresh


@pytest.fixture
def stack(iso_env: dict[str, str], graph_api: Any, fresh_replies: Any) -> Iterator[tuple[WebServer, WorkerProcess]]:
    web = WebServer(iso_env).start()
    worker = WorkerProcess(iso_env).start()
    try:
        yield web, worker
    finally:
        worker.stop()
        web.stop()
        graph_api.status_webhooks = None
        graph_api.release_held()


async def scalar(engine: Any, query: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar()


async def test_worker_killed_while_sending_never_sends_twice_and_the_status_confirms(
    iso_env: dict[str, str], engine: Any, graph_api: Any, stack: tuple[WebServer, WorkerProcess]
) -> None:
    web, first = stack
    hooks = StatusWebhooks(web.url + "/webhooks/meta", SECRET)
    hooks.paused = True  # the provider reports nothing (yet)
    graph_api.status_webhooks = hooks
    graph_api.lose_answers_next(1)  # the reply goes out, its answer never comes back
    assert post(web.url, envelope([text_message(AMINA, "help")])).status_code == 200

    await await_for(lambda: graph_api.sent_messages(), timeout=40)
    attempted = select(outbound_messages.c.attempts).where(outbound_messages.c.attempted_at.is_not(None))
    assert await scalar(engine, attempted) == 1
    first.kill()  # between the attempt record and the answer
    second = WorkerProcess(iso_env).start()
    try:
        # The turn is resumed (sweeper / arq re-run after the kill) and finds the unanswered attempt: it waits.
        resumed = select(turns.c.attempts).where(turns.c.status == "running")
        await await_for(lambda: _at_least(engine, resumed, 2), timeout=60)
        await await_for(lambda: _at_least(engine, resumed, 3), timeout=60)  # and checks again later, still waiting
        assert len(graph_api.sent_messages()) == 1
        key = await scalar(engine, select(outbound_messages.c.idempotency_key))
        assert key == "turn:1:0" and graph_api.sent_messages()[0]["biz_opaque_callback_data"] == key

        # Meta's status webhook carries our key: it confirms the send, the turn finishes without a second one.
        [wamid] = [r.response["messages"][0]["id"] for r in graph_api.requests if r.is_message_send]
        assert (
            post(web.url, envelope(statuses=[status(wamid, AMINA, "delivered", callback_data=key)])).status_code == 200
        )
        done = select(func.count()).select_from(turns).where(turns.c.status == "done")
        await await_for(lambda: _at_least(engine, done, 1), timeout=60)
        assert len(graph_api.sent_messages()) == 1
        row = (await _rows(engine, select(outbound_messages)))[0]
        assert (row.provider_message_id, row.status, row.attempts) == (wamid, "delivered", 1)
    finally:
        second.stop()


async def test_unknown_sender_three_bursts_get_one_reply(
    engine: Any, graph_api: Any, stack: tuple[WebServer, WorkerProcess]
) -> None:
    web, _ = stack
    done = select(func.count()).select_from(turns).where(turns.c.status == "done")
    for burst in range(3):
        msgs = [text_message(STRANGER, f"burst {burst} part {i} " + "x" * 200) for i in range(3)]
        assert post(web.url, envelope(msgs)).status_code == 200
        await await_for(partial(_at_least, engine, done, burst + 1), timeout=40)
    to_stranger = [m for m in graph_api.sent_messages() if m["to"] == STRANGER]
    assert len(to_stranger) == 1
    assert (await _rows(engine, text("SELECT suppressed FROM unknown_sender_replies")))[0].suppressed == 2
    payloads = [r.raw_payload for r in await _rows(engine, select(inbox.c.raw_payload))]
    assert len(payloads) == 9 and all(set(p) == {"id", "type", "minimal"} for p in payloads)


async def test_a_flood_of_120_messages_is_processed_in_order_over_capped_turns(
    engine: Any, graph_api: Any, stack: tuple[WebServer, WorkerProcess]
) -> None:
    web, _ = stack
    msgs = [text_message(AMINA, f"note {i}") for i in range(120)]
    assert post(web.url, envelope(msgs)).status_code == 200
    processed = select(func.count()).select_from(inbox).where(inbox.c.processed_at.is_not(None))
    await await_for(lambda: _at_least(engine, processed, 120), timeout=120)
    rows = await _rows(engine, select(inbox.c.provider_message_id, inbox.c.turn_id).order_by(inbox.c.id))
    assert [r.provider_message_id for r in rows] == [m["id"] for m in msgs]
    per_turn: dict[int, int] = {}
    for r in rows:
        per_turn[r.turn_id] = per_turn.get(r.turn_id, 0) + 1
    assert list(per_turn.values()) == [50, 50, 20]
    assert [r.turn_id for r in rows] == sorted(r.turn_id for r in rows)  # order kept across turns
    finished = await _rows(engine, select(turns.c.status))
    assert [t.status for t in finished] == ["done"] * 3


async def _at_least(engine: Any, query: Any, n: int) -> bool:
    value = await scalar(engine, query)
    return value is not None and value >= n


async def _rows(engine: Any, query: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def test_the_stand_ins_status_webhooks_reach_the_app_and_confirm_by_key(
    engine: Any, graph_api: Any, stack: tuple[WebServer, WorkerProcess]
) -> None:
    web, _ = stack
    graph_api.status_webhooks = StatusWebhooks(web.url + "/webhooks/meta", SECRET)
    assert post(web.url, envelope([text_message(AMINA, "help")])).status_code == 200
    delivered = select(func.count()).select_from(outbound_messages).where(outbound_messages.c.status == "delivered")
    await await_for(partial(_at_least, engine, delivered, 1), timeout=40)
    hooks = graph_api.status_webhooks
    posted = await await_for(lambda: len(hooks.posted) == 2 and hooks.posted, timeout=10)
    assert [p.http_status for p in posted] == [200, 200]
    assert {p.status["biz_opaque_callback_data"] for p in posted} == {"turn:1:0"}
    row = (await _rows(engine, select(outbound_messages)))[0]
    assert [h["status"] for h in row.status_history] == ["sent", "delivered"]
