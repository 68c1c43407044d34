"""Claiming a chat's messages as turns within the per-turn caps, and unknown senders answered once per window.

Real PostgreSQL and Redis; the Graph API stand-in over HTTP for the unknown sender's reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import create_pool
from sqlalchemy import func, insert, select, text

from core.db import inbox
from server.channels.meta import MetaCloudChannel
from server.services import redis_settings
from server.worker.inbox import claim, claim_turn, finish_turn, has_pending, minimise, schedule_rest
from server.worker.unknown import answer_unknown_sender
from tests.support.stack import TOKEN

CHAT = "254711111111"
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


async def store(engine: Any, texts: list[str], *, chat: str = CHAT, start: int = 0) -> None:
    """Inbox rows as the web process stores them, one second apart (provider timestamps)."""
    rows = []
    for i, body in enumerate(texts, start):
        mid = f"wamid.CAP{chat}{i:04d}"
        message = {
            "provider": "meta",
            "provider_message_id": mid,
            "chat_id": chat,
            "sender": chat,
            "kind": "text",
            "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "text": body,
            "sender_name": "Stranger",
        }
        raw = {"from": chat, "id": mid, "type": "text", "text": {"body": body}}
        rows.append(
            dict(
                provider="meta",
                provider_message_id=mid,
                chat_id=chat,
                sender=chat,
                type="text",
                message=message,
                raw_payload=raw,
                sent_at=T0 + timedelta(seconds=i),
            )
        )
    async with engine.begin() as conn:
        await conn.execute(insert(inbox), rows)


@pytest.fixture
async def empty(engine: Any, clean: None) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE unknown_sender_replies"))


async def test_120_messages_are_claimed_in_order_over_several_capped_turns(engine: Any, empty: None) -> None:
    texts = [f"item {i}" for i in range(120)]
    await store(engine, texts)
    seen: list[str] = []
    sizes = []
    while (claimed := await claim_turn(engine, "meta", CHAT, max_messages=50, max_chars=20_000)) is not None:
        turn_id, messages = claimed
        sizes.append(len(messages))
        seen += [m["text"] for m in messages]
        await finish_turn(engine, turn_id)
    assert sizes == [50, 50, 20]
    assert seen == texts  # nothing lost, nothing twice, order kept
    assert not await has_pending(engine, "meta", CHAT)


async def test_character_cap_takes_at_least_one_message(engine: Any, empty: None) -> None:
    await store(engine, ["a" * 5000, "b" * 3000, "c" * 3000, "d" * 3000, "e"])
    sizes = []
    while (claimed := await claim_turn(engine, "meta", CHAT, max_messages=50, max_chars=7000)) is not None:
        turn_id, messages = claimed
        sizes.append([m["text"][0] for m in messages])
        await finish_turn(engine, turn_id)
    # the first message alone is over the cap and still goes; then 3000 + 3000 fit, then the rest
    assert sizes == [["a"], ["b", "c"], ["d", "e"]]


async def test_a_running_turn_is_resumed_whole_and_the_rest_scheduled(engine: Any, redis_url: str, empty: None) -> None:
    await store(engine, [f"m{i}" for i in range(5)])
    turn_id, first = await claim_turn(engine, "meta", CHAT, max_messages=2, max_chars=100)  # type: ignore[misc]
    # a crash: the same turn comes back with the same messages, however the caps are set now
    again = await claim_turn(engine, "meta", CHAT, max_messages=1, max_chars=1)
    assert again is not None and again[0] == turn_id and [m["text"] for m in again[1]] == ["m0", "m1"]
    await finish_turn(engine, turn_id)
    redis = await create_pool(redis_settings(redis_url))
    try:
        assert await schedule_rest(redis, engine, "meta", CHAT, turn_id) is True
        assert await schedule_rest(redis, engine, "meta", CHAT, turn_id) is False  # same job id: once
        jobs = await redis.queued_jobs()
        assert [(j.function, j.args) for j in jobs] == [("run_turn", ("meta", CHAT))]
    finally:
        await redis.aclose()


async def test_the_one_statement_claim_writes_no_empty_turn_and_counts_resumes(engine: Any, empty: None) -> None:
    assert await claim_turn(engine, "meta", CHAT) is None  # nothing waits: no turn row either
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM turns"))).scalar_one() == 0
    await store(engine, ["one", "two"])
    turn_id, first = await claim_turn(engine, "meta", CHAT)  # type: ignore[misc]
    await store(engine, ["three"], start=2)  # arrives during the turn: the next turn's
    again = await claim_turn(engine, "meta", CHAT)
    assert again is not None and again[0] == turn_id
    assert [m["text"] for m in first] == [m["text"] for m in again[1]] == ["one", "two"]
    assert all(m["inbox_id"] for m in again[1])
    await finish_turn(engine, turn_id, graph_ms=7)
    async with engine.connect() as conn:
        turn = (await conn.execute(text("SELECT * FROM turns WHERE id = :id"), {"id": turn_id})).one()
        processed = (
            await conn.execute(
                text("SELECT count(*) FROM inbox WHERE turn_id = :id AND processed_at IS NOT NULL"), {"id": turn_id}
            )
        ).scalar_one()
    assert (turn.status, turn.attempts, turn.graph_ms, processed) == ("done", 2, 7, 2)
    nxt = await claim_turn(engine, "meta", CHAT)
    assert nxt is not None and nxt[0] != turn_id and [m["text"] for m in nxt[1]] == ["three"]


async def test_a_claim_says_whether_it_resumed_and_what_the_caps_left(engine: Any, empty: None) -> None:
    await store(engine, [f"m{i}" for i in range(5)])
    new = await claim(engine, "meta", CHAT, max_messages=3)
    assert new is not None and (new.resumed, new.left, len(new.messages)) == (False, 2, 3)
    again = await claim(engine, "meta", CHAT, max_messages=3)
    assert again is not None and (again.turn_id, again.resumed, again.left) == (new.turn_id, True, None)
    await finish_turn(engine, new.turn_id)
    rest = await claim(engine, "meta", CHAT, max_messages=3)
    assert rest is not None and (rest.resumed, rest.left, [m["text"] for m in rest.messages]) == (
        False,
        0,
        ["m3", "m4"],
    )


async def test_minimise_keeps_only_ids_and_type(engine: Any, empty: None) -> None:
    await store(engine, ["my secret order list"])
    turn_id, _ = await claim_turn(engine, "meta", CHAT)  # type: ignore[misc]
    assert await minimise(engine, turn_id) == 1
    async with engine.connect() as conn:
        row = (await conn.execute(select(inbox.c.message, inbox.c.raw_payload))).one()
    assert row.raw_payload == {"id": f"wamid.CAP{CHAT}0000", "type": "text", "minimal": True}
    assert set(row.message) == {"provider", "provider_message_id", "chat_id", "sender", "kind", "timestamp"}
    assert "secret" not in str(row.message)


@pytest.fixture
async def meta(graph_api: Any) -> AsyncIterator[dict[str, Any]]:
    graph_api.reset()
    channel = MetaCloudChannel(
        app_secret="s", verify_token="v", access_token=TOKEN, phone_number_id="1", graph_url=graph_api.url
    )
    yield {"meta": channel}
    await channel.aclose()


async def test_unknown_sender_gets_one_reply_per_window(
    engine: Any, graph_api: Any, meta: dict[str, Any], empty: None
) -> None:
    answered, turn_ids = [], []
    for burst in range(3):
        await store(engine, [f"burst {burst} a", f"burst {burst} b"], start=burst * 2)
        turn_id, _ = await claim_turn(engine, "meta", CHAT)  # type: ignore[misc]
        turn_ids.append(turn_id)
        answered.append(await answer_unknown_sender(engine, meta, "meta", CHAT, turn_id, window_hours=24))
        await finish_turn(engine, turn_id, error="unknown sender")
    assert answered == [True, False, False]
    assert len(graph_api.sent_messages()) == 1
    assert "not registered" in graph_api.sent_messages()[0]["text"]["body"]
    async with engine.connect() as conn:
        suppressed = (await conn.execute(text("SELECT suppressed FROM unknown_sender_replies"))).scalar_one()
        kept = (await conn.execute(select(func.count()).where(inbox.c.raw_payload.has_key("text")))).scalar_one()
    assert suppressed == 2
    assert kept == 0  # every burst stored minimal
    # a re-run of the answered turn (a crash after the claim) finishes its own reply, never a second one
    assert await answer_unknown_sender(engine, meta, "meta", CHAT, turn_ids[0], window_hours=24) is True
    assert len(graph_api.sent_messages()) == 1
    # after the window, the chat is answered again
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE unknown_sender_replies SET replied_at = now() - interval '25 hours'"))
    await store(engine, ["later"], start=10)
    turn_id, _ = await claim_turn(engine, "meta", CHAT)  # type: ignore[misc]
    assert await answer_unknown_sender(engine, meta, "meta", CHAT, turn_id, window_hours=24) is True
    assert len(graph_api.sent_messages()) == 2
