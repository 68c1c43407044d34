"""Poison isolation at the webhook: odd messages are normalised or dead-lettered, answered 200, never hurt others.

Real web app (uvicorn in a thread), PostgreSQL and Redis; no worker, so stored messages stay in the inbox to be
inspected. Also: the row-by-row fallback of the batched INSERT, the body-read timeout, API path ids, dead-letter
replay and ``procure deadletters``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text

from core.config import Settings
from core.db import dead_letters, inbox
from server.channels.meta import MetaCloudChannel
from server.channels.records import InboundMessage
from server.ingest import IngestBatcher
from server.ingest import deadletters as DL
from server.services import Services
from tests.support.paths import ROOT
from tests.support.payloads import contact, envelope, sign, status, text_message
from tests.support.stack import ADMIN, SECRET

QUEUE = "procure:test-poison"


@pytest.fixture
async def empty(engine, clean):
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE dead_letters RESTART IDENTITY"))


def post_raw(url: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}
    return httpx.post(url + "/webhooks/meta", content=body, headers=headers, timeout=30)


def post(url: str, payload: dict[str, Any]) -> httpx.Response:
    return post_raw(url, orjson.dumps(payload))


async def rows(engine, table=inbox) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).mappings())


def with_deep(payload: dict[str, Any], levels: int) -> bytes:
    """``payload`` as JSON with its ``"DEEP"`` string replaced by objects nested ``levels`` deep (orjson parses up
    to 1,024 levels but serialises only 255, so the body is built as text)."""
    return orjson.dumps(payload).replace(b'"DEEP"', b'{"k":' * levels + b"1" + b"}" * levels)


async def test_a_deeply_nested_message_is_stored_and_its_forty_neighbours_too(web, empty, engine):
    deep = text_message("254700100001", "need 1 stapler", mid="wamid.DEEP")
    deep["text"]["extra"] = "DEEP"
    good = [text_message(f"2547001001{i:02d}", f"need {i} pens", mid=f"wamid.N{i:02d}") for i in range(40)]
    bodies = [with_deep(envelope([deep]), 600)] + [orjson.dumps(envelope([g])) for g in good[:20]]
    bodies.append(with_deep(envelope([deep, *good[20:]]), 300))
    answers = await asyncio.gather(*(asyncio.to_thread(post_raw, web.url, b) for b in bodies))
    assert [a.status_code for a in answers] == [200] * len(bodies)
    stored = {r["provider_message_id"]: r for r in await rows(engine)}
    assert set(stored) == {"wamid.DEEP"} | {g["id"] for g in good}
    kept = stored["wamid.DEEP"]["raw_payload"]["text"]
    assert kept["body"] == "need 1 stapler" and "extra" in kept  # bounded, not dropped
    assert await rows(engine, dead_letters) == []


POISON = {
    "nul in id": ({"id": "wamid.\x00x"}, "provider_message_id contains a NUL character"),
    "id over 200": ({"id": "w" * 201}, "provider_message_id is 201 characters long"),
    "from over 100": ({"from": "2" * 101}, "sender is 101 characters long"),
    "nul in from": ({"from": "2547\x00"}, "sender contains a NUL character"),
    "nul in context": ({"context": {"from": "1", "id": "c\x00"}}, "context_id contains a NUL character"),
}


@pytest.mark.parametrize("case", sorted(POISON))
async def test_a_message_that_cannot_be_stored_is_dead_lettered_and_answered_200(web, empty, engine, case):
    change, reason = POISON[case]
    bad = {**text_message("254700200001", "need 5 pens", mid="wamid.BAD"), **change}
    neighbour = text_message("254700200002", "need 2 staplers", mid="wamid.OK")
    body = orjson.dumps(envelope([bad, neighbour]))
    r = post_raw(web.url, body)
    assert r.status_code == 200 and r.json()["stored"] == 1  # not a 503: Meta would redeliver it for 7 days
    assert [row["provider_message_id"] for row in await rows(engine)] == ["wamid.OK"]
    (letter,) = await rows(engine, dead_letters)
    assert letter["reason"].startswith(reason) and bytes(letter["raw_body"]) == body and letter["provider"] == "meta"
    assert letter["message"]["text"] == "need 5 pens" and letter["replayed_at"] is None


async def test_odd_but_usable_messages_are_normalised_and_stored(web, empty, engine):
    now = int(time.time())
    msgs = [
        text_message("254700300001", "need\x00 3 pens", mid="wamid.T1"),
        {**text_message("254700300002", "hi", mid="wamid.T2"), "ke\x00y": {"a\x00": "b\x00"}},
        text_message("254700300003", "x" * 900_000, mid="wamid.T3"),
        {**text_message("254700300004", "late", mid="wamid.T4"), "timestamp": "99999999999999"},
        {**text_message("254700300005", "early", mid="wamid.T5"), "timestamp": "-62135596800"},
        {
            "from": "254700300006",
            "id": "wamid.T6",
            "timestamp": str(now),
            "type": "location",
            "location": {"latitude": 1.0, "longitude": 1e300, "name": "Site\x00 B"},
        },
        {
            "from": "254700300007",
            "id": "wamid.T7",
            "timestamp": str(now),
            "type": "location",
            "location": {"latitude": "nan", "longitude": "inf"},
        },
    ]
    r = post(web.url, envelope(msgs, contacts=[contact("254700300001", "Ami\x00na")]))
    assert r.status_code == 200 and r.json()["stored"] == len(msgs)
    got = {row["provider_message_id"]: row for row in await rows(engine)}
    assert got["wamid.T1"]["message"]["text"] == "need 3 pens"
    assert got["wamid.T1"]["message"]["sender_name"] == "Amina"
    assert got["wamid.T2"]["raw_payload"]["key"] == {"a": "b"}
    cut = got["wamid.T3"]["message"]["text"]
    assert cut.startswith("x" * 4096) and "4096" in cut and "900000" in cut and len(cut) < 4300
    for mid in ("wamid.T4", "wamid.T5"):
        assert abs(got[mid]["sent_at"].timestamp() - time.time()) < 600  # the receive time, not year 1 or 3e6
    for mid in ("wamid.T6", "wamid.T7"):
        m = got[mid]["message"]
        assert m["latitude"] is None and m["longitude"] is None
    assert got["wamid.T6"]["message"]["text"] == "Site B"
    assert await rows(engine, dead_letters) == []


@pytest.mark.parametrize("errors", ["boom", 42, {"code": 1}, [None, "x"]])
async def test_statuses_with_odd_errors_are_answered_200(web, empty, errors):
    s = status("wamid.OUT", "254700400001", "failed")
    s["errors"] = errors
    r = post(web.url, envelope(statuses=[s, status("wamid.\x00", "1", "read")]))
    assert r.status_code == 200


@pytest.fixture
async def svc(database_url, redis_url, empty):
    s = Settings(META_APP_SECRET=SECRET, QUEUE_NAME=QUEUE, ENVIRONMENT="test", DEBOUNCE_SECONDS=2.0)
    services = await Services.create(s, database_url, redis_url, chat_model=False)
    yield services
    await services.aclose()


def message(mid: str, body: str, sender: str = "254700500001") -> InboundMessage:
    ch = MetaCloudChannel.from_settings(Settings(META_APP_SECRET=SECRET, ENVIRONMENT="test"))
    (m,), _ = ch.parse(orjson.dumps(envelope([text_message(sender, body, mid=mid)])))
    return m


async def test_a_row_the_database_refuses_fails_only_itself(svc, engine):
    # Not normalised on purpose (the batcher's own safety net): PostgreSQL refuses a NUL in text.
    bad = message("wamid.R0", "need\x00 pens")
    good = [message(f"wamid.R{i}", f"need {i} pens") for i in range(1, 30)]
    results = await asyncio.gather(*(svc.ingest.store_checked([m]) for m in [*good[:10], bad, *good[10:]]))
    refused = [pair for r in results for pair in r.refused]
    assert [m.provider_message_id for m, _ in refused] == ["wamid.R0"]
    assert "database refused the row" in refused[0][1] and "Unicode" in refused[0][1]
    assert sorted(m.provider_message_id for r in results for _, m in r.new) == sorted(
        m.provider_message_id for m in good
    )
    assert len(await rows(engine)) == 29
    # A second delivery of the same batch: duplicates, still nothing refused but the bad row.
    again = await asyncio.gather(*(svc.ingest.store_checked([m]) for m in [bad, *good]))
    assert sum(len(r.new) for r in again) == 0 and sum(len(r.refused) for r in again) == 1


async def test_an_outage_is_not_taken_for_bad_data(svc):
    class Down:
        def connection(self):
            raise OSError("connection refused")

    batcher = IngestBatcher(Down(), svc.redis, svc.settings)
    with pytest.raises(OSError):
        await batcher.store_checked([message("wamid.O1", "hello")])
    await batcher.aclose()


async def test_a_body_that_never_completes_gets_408_and_nothing_is_stored(web, empty, engine):
    settings = web.server.config.app.state.services.settings
    before = settings.BODY_READ_TIMEOUT_SECONDS
    settings.BODY_READ_TIMEOUT_SECONDS = 0.5
    try:
        body = orjson.dumps(envelope([text_message("254700600001", "hello", mid="wamid.SLOW")]))
        head = (
            f"POST /webhooks/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {sign(body, SECRET)}\r\nContent-Length: {len(body) + 100}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
            sock.sendall(head + body)  # 100 bytes short of what was announced
            answer = b""
            while chunk := sock.recv(4096):  # the server closes the connection after answering
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        settings.BODY_READ_TIMEOUT_SECONDS = before
    assert await rows(engine) == []


async def test_api_path_ids_beyond_the_integer_range_or_in_other_scripts_are_422(web, empty):
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=web.url, headers=auth) as http:
        for base in ("/api/purchase-requests/", "/api/tickets/"):
            for bad in ("9223372036854775807", "¹", "2147483648", "%D9%A3"):
                assert (await http.get(base + bad)).status_code == 422, base + bad
            assert (await http.get(base + "2147483647")).status_code == 404


async def test_replay_stores_a_letter_the_current_code_accepts_and_keeps_one_it_still_refuses(svc, engine):
    good_body = orjson.dumps(envelope([text_message("254700700001", "need 4 pens", mid="wamid.P1")]))
    bad_body = orjson.dumps(envelope([text_message("2" * 101, "need 4 pens", mid="wamid.P2")]))
    await DL.record(svc.pg, "meta", good_body, [(message("wamid.P1", "need 4 pens", "254700700001"), "old reason")])
    await DL.record(svc.pg, "meta", bad_body, [(None, "sender too long")])
    first, second = await DL.list_letters(svc.pg)
    assert first.preview().startswith('{"object":"whatsapp_business_account"') and len(first.preview()) == 80

    ok, outcome = await DL.replay(svc.pg, svc.channels, svc.ingest, first, 4096)
    assert ok and outcome == "stored 1 message(s), 0 already in the inbox"
    assert [r["provider_message_id"] for r in await rows(engine)] == ["wamid.P1"]
    assert await svc.ingest.drain()
    queued = await svc.redis.zrange(QUEUE, 0, -1)
    assert [q.decode().split(":")[:3] for q in queued] == [["turn", "meta", "254700700001"]]  # scheduled as a webhook

    ok, outcome = await DL.replay(svc.pg, svc.channels, svc.ingest, second, 4096)
    assert not ok and "sender is 101 characters long" in outcome
    (pending,) = await DL.list_letters(svc.pg)
    assert pending.id == second.id and pending.reason == "sender is 101 characters long; at most 100 are stored"
    assert pending.replayed_at is None and pending.replay_result == outcome
    (done,) = [d for d in await DL.list_letters(svc.pg, include_replayed=True) if d.id == first.id]
    assert done.replayed_at is not None and done.replay_result.startswith("stored 1")


def procure(args: list[str], database_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING", QUEUE_NAME=QUEUE)
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


async def test_procure_deadletters_list_and_replay(web, empty, engine, database_url, redis_url):
    body = orjson.dumps(envelope([{**text_message("254700800001", "need 9 pens", mid="wamid.\x00Q")}]))
    assert post_raw(web.url, body).status_code == 200
    good = orjson.dumps(envelope([text_message("254700800002", "need 1 pen", mid="wamid.Q2")]))
    svc_pg = web.server.config.app.state.services.pg
    await DL.record(svc_pg, "meta", good, [(None, "database was refusing it")])

    r = procure(["deadletters", "list"], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    first = lines[0].split("\t")
    assert first[0] == "1" and first[2] == "meta" and first[3] == "provider_message_id contains a NUL character"
    assert first[4].startswith('{"object":"whatsapp_business_account"') and len(first[4]) == 80

    r = procure(["deadletters", "replay", "--all"], database_url, redis_url)
    assert r.returncode == 1  # the NUL id still cannot be stored
    assert "1\tfailed\treplay failed" in r.stdout and "2\treplayed\tstored 1 message(s)" in r.stdout
    assert [row["provider_message_id"] for row in await rows(engine)] == ["wamid.Q2"]
    r = procure(["deadletters", "list"], database_url, redis_url)
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["1"]
    r = procure(["deadletters", "replay", "2", "7"], database_url, redis_url)
    assert r.returncode == 1 and "already replayed" in r.stdout and "7\tno such dead letter" in r.stderr
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(dead_letters))).scalar_one() == 2
