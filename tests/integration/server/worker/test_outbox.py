"""The outbox sends each key at most once: the attempt is recorded before the provider call, an unanswered attempt
waits for its delivery status (matched by our key, Meta's ``biz_opaque_callback_data``) and is resent only after
``SEND_CONFIRM_SECONDS`` without one. Real PostgreSQL and the Graph API stand-in over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db import outbound_messages
from server.channels.errors import ChannelSendError
from server.channels.meta import MetaCloudChannel
from server.channels.records import DeliveryStatus, StatusUpdate
from server.worker.outbox import apply_statuses, send_one
from tests.support.stack import TOKEN, await_for

AMINA = "254700000001"
HELLO = {"to": AMINA, "type": "text", "text": "hello"}


def make_channel(graph_url: str, **kwargs: Any) -> MetaCloudChannel:
    return MetaCloudChannel(
        app_secret="s",
        verify_token="v",
        access_token=TOKEN,
        phone_number_id="000000000000000",
        graph_url=graph_url,
        backoff_initial=0.01,
        backoff_max=0.05,
        **kwargs,
    )


@pytest.fixture
async def channel(graph_api: Any, clean: None) -> AsyncIterator[MetaCloudChannel]:
    graph_api.reset()
    meta = make_channel(graph_api.url)
    yield meta
    await meta.aclose()
    graph_api.release_held()


@pytest.fixture
async def impatient(graph_api: Any, clean: None) -> AsyncIterator[MetaCloudChannel]:
    """A channel whose HTTP client gives up after 0.3 s (a send held by the stand-in ends 'delivery unknown')."""
    graph_api.reset()
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.3)) as client:
        yield make_channel(graph_api.url, http_client=client)
    graph_api.release_held()


async def row(engine: Any, key: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(outbound_messages).where(outbound_messages.c.idempotency_key == key))
        ).one_or_none()


def status_for(wamid: str, key: str | None, state: DeliveryStatus = DeliveryStatus.SENT) -> StatusUpdate:
    return StatusUpdate(
        provider="meta",
        provider_message_id=wamid,
        status=state,
        recipient=AMINA,
        timestamp=datetime.now(UTC),
        callback_data=key,
    )


def wamids(graph_api: Any) -> list[str]:
    return [r.response["messages"][0]["id"] for r in graph_api.requests if r.is_message_send and r.status == 200]


async def test_attempt_is_recorded_before_the_call_and_a_cancelled_send_is_not_repeated(
    engine: Any, graph_api: Any, channel: MetaCloudChannel
) -> None:
    graph_api.slow_next(1, seconds=1.0)
    task = asyncio.create_task(send_one(engine, channel, "turn:1:0", HELLO, confirm_seconds=60))

    async def attempted() -> bool:
        r = await row(engine, "turn:1:0")
        return r is not None and r.attempted_at is not None

    await await_for(attempted, timeout=10)
    r = await row(engine, "turn:1:0")
    assert (r.status, r.attempts, r.provider_message_id) == ("sending", 1, None)
    assert graph_api.requests == []  # the provider has not answered yet: the attempt was committed first
    task.cancel()  # the job is cancelled (or the worker dies) between the attempt and the answer
    with pytest.raises(asyncio.CancelledError):
        await task
    await await_for(lambda: graph_api.sent_messages(), timeout=10)  # the slow provider did send it

    # the resumed turn finds the unanswered attempt: no second send while no status came within the window
    for _ in range(2):
        with pytest.raises(ChannelSendError, match="awaiting its delivery status") as caught:
            await send_one(engine, channel, "turn:1:0", HELLO, confirm_seconds=60)
        assert caught.value.retryable is True
    assert len(graph_api.sent_messages()) == 1

    # the status webhook, matched by our key, confirms it and fills in the provider's id
    [wamid] = wamids(graph_api)
    assert await apply_statuses(engine, [status_for(wamid, "turn:1:0", DeliveryStatus.DELIVERED)]) == 1
    r = await row(engine, "turn:1:0")
    assert (r.provider_message_id, r.status, r.attempts) == (wamid, "delivered", 1)
    assert await send_one(engine, channel, "turn:1:0", HELLO, confirm_seconds=60) == []
    assert len(graph_api.sent_messages()) == 1
    assert graph_api.sent_messages()[0]["biz_opaque_callback_data"] == "turn:1:0"


async def test_without_a_status_it_is_resent_once_after_the_window_and_logged(
    engine: Any, graph_api: Any, impatient: MetaCloudChannel, caplog: pytest.LogCaptureFixture
) -> None:
    graph_api.lose_answers_next(1)
    with pytest.raises(ChannelSendError, match="delivery unknown") as caught:
        await send_one(engine, impatient, "turn:2:0", HELLO, confirm_seconds=1.0)
    assert caught.value.retryable is True
    r = await row(engine, "turn:2:0")
    assert (r.status, r.attempts, r.provider_message_id) == ("unknown", 1, None)
    with pytest.raises(ChannelSendError, match="awaiting"):
        await send_one(engine, impatient, "turn:2:0", HELLO, confirm_seconds=1.0)
    assert len(graph_api.sent_messages()) == 1

    async def resent() -> bool:
        try:
            return bool(await send_one(engine, impatient, "turn:2:0", HELLO, confirm_seconds=1.0))
        except ChannelSendError:
            return False

    with caplog.at_level(logging.WARNING, logger="server.worker.outbox"):
        await await_for(resent, timeout=10, interval=0.2)
    assert len(graph_api.sent_messages()) == 2
    warnings = [rec.getMessage() for rec in caplog.records if "sending it again" in rec.getMessage()]
    assert len(warnings) == 1 and "turn:2:0" in warnings[0]
    first, second = wamids(graph_api)
    r = await row(engine, "turn:2:0")
    assert (r.provider_message_id, r.status, r.attempts) == (second, "sent", 2)
    # once answered, never again; a late status of the first send does not take the row over
    assert await send_one(engine, impatient, "turn:2:0", HELLO, confirm_seconds=1.0) == []
    assert await apply_statuses(engine, [status_for(first, "turn:2:0")]) == 0
    assert (await row(engine, "turn:2:0")).provider_message_id == second
    assert len(graph_api.sent_messages()) == 2


async def test_a_failure_that_sent_nothing_clears_the_attempt(engine: Any, graph_api: Any, clean: None) -> None:
    graph_api.reset()
    meta = make_channel(graph_api.url, max_attempts=1)
    try:
        graph_api.fail_next(1, status=500)
        with pytest.raises(ChannelSendError) as caught:
            await send_one(engine, meta, "turn:3:0", HELLO, confirm_seconds=60)
        assert caught.value.retryable and not caught.value.delivery_unknown
        r = await row(engine, "turn:3:0")
        assert (r.status, r.attempted_at, r.attempts) == ("pending", None, 1)
        assert len(await send_one(engine, meta, "turn:3:0", HELLO, confirm_seconds=60)) == 1  # at once
        # a refusal is final
        graph_api.fail_next(1, status=400, code=131009)
        assert await send_one(engine, meta, "turn:3:1", HELLO, confirm_seconds=0) == []
        assert (await row(engine, "turn:3:1")).status == "rejected"
        assert await send_one(engine, meta, "turn:3:1", HELLO, confirm_seconds=0) == []
    finally:
        await meta.aclose()
    assert len(graph_api.sent_messages()) == 1


async def test_a_status_before_the_answer_keeps_its_forward_state(
    engine: Any, graph_api: Any, channel: MetaCloudChannel
) -> None:
    # Meta's status webhook can overtake the API answer: matched by key; the late answer must not move it back.
    graph_api.lose_answers_next(1)
    task = asyncio.create_task(send_one(engine, channel, "turn:4:0", HELLO, confirm_seconds=60))
    await await_for(lambda: graph_api.sent_messages(), timeout=10)
    [wamid] = wamids(graph_api)
    assert await apply_statuses(engine, [status_for(wamid, "turn:4:0", DeliveryStatus.READ)]) == 1
    graph_api.release_held()
    assert await task == [wamid]
    r = await row(engine, "turn:4:0")
    assert (r.status, r.provider_message_id, r.attempts) == ("read", wamid, 1)
    assert [h["status"] for h in r.status_history] == ["read"]


async def test_concurrent_senders_of_one_key_make_one_call(
    engine: Any, graph_api: Any, channel: MetaCloudChannel
) -> None:
    # Five sends of the same key at once (two workers, a retried job): the one-statement claim lets one through.
    graph_api.slow_next(1, seconds=0.5)
    outcomes = await asyncio.gather(
        *(send_one(engine, channel, "turn:5:0", HELLO, confirm_seconds=60) for _ in range(5)), return_exceptions=True
    )
    sent = [o for o in outcomes if isinstance(o, list) and o]
    waiting = [o for o in outcomes if isinstance(o, ChannelSendError)]
    assert len(sent) == 1 and len(waiting) == 4 and all(e.retryable for e in waiting)
    assert len(graph_api.sent_messages()) == 1
    r = await row(engine, "turn:5:0")
    assert (r.status, r.attempts, r.provider_message_id) == ("sent", 1, sent[0][0])
    assert await send_one(engine, channel, "turn:5:0", HELLO, confirm_seconds=0) == []  # answered: never again


async def test_an_unknown_send_recorded_before_attempts_is_never_repeated(
    engine: Any, graph_api: Any, channel: MetaCloudChannel
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            outbound_messages.insert().values(
                idempotency_key="turn:6:0",
                provider="meta",
                to=AMINA,
                kind="text",
                body={"text": "hello"},
                status="unknown",
            )
        )
    assert await send_one(engine, channel, "turn:6:0", HELLO, confirm_seconds=0) == []
    r = await row(engine, "turn:6:0")
    assert (r.status, r.attempts, r.attempted_at) == ("unknown", 0, None)
    assert graph_api.sent_messages() == []
