"""Platform checks end to end: real HTTP, real PostgreSQL and Redis, real worker processes, Graph API stand-in."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from core.db import inbox, outbound_messages, turns
from tests.support.payloads import envelope, sign, signed, status, text_message
from tests.support.stack import ADMIN, SECRET, VERIFY, WorkerProcess, await_for, post


async def count(engine, table, *where):
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


AMINA = "254700000001"


async def test_get_verification(web):
    r = httpx.get(
        web.url + "/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "12345"},
    )
    assert r.status_code == 200 and r.text == "12345"
    r = httpx.get(
        web.url + "/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    )
    assert r.status_code == 403


async def test_signature_rejections_store_nothing(web, engine, fresh):
    payload = envelope([text_message(AMINA, "need 2 staplers")])
    body, headers = signed(payload, SECRET)
    tampered = body.replace(b"2 staplers", b"9 staplers")
    cases = [
        (tampered, headers),
        (body, {**headers, "X-Hub-Signature-256": sign(body, "wrong-secret")}),
        (body, {"Content-Type": "application/json"}),
        (body, {**headers, "X-Hub-Signature-256": "sha1=abc"}),
    ]
    for b, h in cases:
        r = httpx.post(web.url + "/webhooks/meta", content=b, headers=h)
        assert r.status_code in (401, 403), r.text
    assert await count(engine, inbox) == 0
    r = httpx.post(web.url + "/webhooks/meta", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["stored"] == 1


async def test_bad_bodies(web, engine, fresh):
    r = httpx.post(
        web.url + "/webhooks/meta", content=b"not json", headers={"X-Hub-Signature-256": sign(b"not json", SECRET)}
    )
    assert r.status_code == 400
    big = b"{" + b" " * (1_048_576 + 10) + b"}"
    r = httpx.post(web.url + "/webhooks/meta", content=big, headers={"X-Hub-Signature-256": sign(big, SECRET)})
    assert r.status_code == 413
    assert await count(engine, inbox) == 0


async def test_duplicate_delivery_concurrently_one_row_one_turn(web, worker, engine, graph_api, fresh):
    payload = envelope([text_message(AMINA, "help")])
    with ThreadPoolExecutor(5) as ex:
        codes = list(ex.map(lambda _: post(web.url, payload).status_code, range(5)))
    assert codes == [200] * 5
    await await_for(lambda: graph_api.sent_messages(), timeout=20)
    await asyncio.sleep(1.0)
    assert await count(engine, inbox) == 1
    assert await count(engine, turns) == 1
    assert len(graph_api.sent_messages()) == 1


async def test_burst_is_one_turn_then_next_turn(web, worker, engine, graph_api, fresh):
    texts = ["need 20 boxes a4 paper", "and 5 toner HP 26A", "for nairobi site", "by friday"]
    for t_ in texts:
        assert post(web.url, envelope([text_message(AMINA, t_)])).status_code == 200
        await asyncio.sleep(0.1)
    await await_for(lambda: graph_api.sent_messages(), timeout=20)
    await asyncio.sleep(0.8)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(inbox.c.turn_id, inbox.c.message).order_by(inbox.c.id))).all()
    assert len({r.turn_id for r in rows}) == 1
    assert [r.message["text"] for r in rows] == texts
    first = graph_api.sent_messages()
    assert len(first) == 1 and "Confirm" in json.dumps(first[0])
    # a message after the window: a second turn
    post(web.url, envelope([text_message(AMINA, "status")]))
    await await_for(lambda: len(graph_api.sent_messages()) >= 2, timeout=20)
    assert await count(engine, turns) == 2


async def test_two_workers_each_turn_once(web, worker, env, engine, graph_api, fresh):
    second = WorkerProcess(env).start()
    try:
        await asyncio.sleep(4)  # let it boot
        senders = [
            ("254700000001", "help"),
            ("254700000002", "pending"),
            ("254700000006", "my requests"),
            ("254700000004", "help"),
            ("254700000005", "pending"),
        ]
        for s, t_ in senders:
            post(web.url, envelope([text_message(s, t_)]))
        await await_for(lambda: len(graph_api.sent_messages()) >= 5, timeout=30)
        await asyncio.sleep(1.5)
        assert len(graph_api.sent_messages()) == 5
        assert await count(engine, turns) == 5
        async with engine.connect() as conn:
            done = (
                await conn.execute(select(func.count()).select_from(turns).where(turns.c.status == "done"))
            ).scalar_one()
        assert done == 5
    finally:
        second.stop()


async def test_status_webhook_updates_delivery_history(web, worker, engine, graph_api, fresh):
    post(web.url, envelope([text_message(AMINA, "help")]))
    await await_for(lambda: graph_api.sent_messages(), timeout=20)

    async def sent_id():
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    select(outbound_messages.c.provider_message_id).where(outbound_messages.c.status == "sent")
                )
            ).scalar()

    pmid = await await_for(sent_id, timeout=10)
    post(web.url, envelope(statuses=[status(pmid, AMINA, "read")]))
    post(web.url, envelope(statuses=[status(pmid, AMINA, "delivered")]))  # out of order: must not go back
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(outbound_messages).where(outbound_messages.c.provider_message_id == pmid))
        ).one()
    assert row.status == "read"
    assert [h["status"] for h in row.status_history] == ["read", "delivered"]
    # a failed status carries the error code; statuses never start a turn
    n_turns = await count(engine, turns)
    post(web.url, envelope(statuses=[status(pmid, AMINA, "failed", code=131047)]))
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(outbound_messages).where(outbound_messages.c.provider_message_id == pmid))
        ).one()
    assert row.status == "failed" and "131047" in row.error
    await asyncio.sleep(0.5)
    assert await count(engine, turns) == n_turns


async def test_outbound_split_and_429_retry(engine, graph_api, fresh, env):
    from core.config import Settings
    from server.channels.meta import MetaCloudChannel
    from server.worker.outbox import send_one

    settings = Settings(**{k: v for k, v in env.items() if k in Settings.model_fields})
    ch = MetaCloudChannel.from_settings(settings)
    try:
        para = ("word " * 99 + "end.").strip()
        long_text = "\n\n".join([para] * 10)  # ~5,000 characters
        assert 4500 < len(long_text) < 5500
        graph_api.fail_next(1, status=429, code=130429)
        ids = await send_one(engine, ch, "test:long", {"to": AMINA, "type": "text", "text": long_text})
        assert len(ids) == 2
        bodies = [m["text"]["body"] for m in graph_api.sent_messages()]
        assert len(bodies) == 2 and all(len(b) <= 4096 for b in bodies)
        assert bodies[0].endswith("end.") and "\n\n".join(bodies) == long_text
        # the same key again sends nothing (idempotent)
        assert await send_one(engine, ch, "test:long", {"to": AMINA, "type": "text", "text": long_text}) == []
        assert len(graph_api.sent_messages()) == 2
    finally:
        await ch.aclose()


async def test_api_requires_token(web, fresh):
    assert httpx.get(web.url + "/api/purchase-requests").status_code == 401
    assert httpx.get(web.url + "/api/purchase-requests", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = httpx.get(web.url + "/api/purchase-requests", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200 and r.json()["items"] == []
    assert httpx.get(web.url + "/readyz").json()["status"] == "ok"
    assert httpx.get(web.url + "/docs").status_code == 200
