"""A reply the provider took while the database could not record its answer is recorded on the retry, not resent.

Real PostgreSQL and the Graph API stand-in over HTTP; the database "outage" is the recording step failing once
(the statement after the provider call), which is where a PostgreSQL outage during a send bites.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from core.db import outbound_messages
from server.channels.meta import MetaCloudChannel
from server.worker import outbox
from tests.support.stack import TOKEN

AMINA = "254700000001"


@pytest.fixture
async def channel(graph_api: Any, clean: None) -> AsyncIterator[MetaCloudChannel]:
    graph_api.reset()
    meta = MetaCloudChannel(
        app_secret="s", verify_token="v", access_token=TOKEN, phone_number_id="000000000000000", graph_url=graph_api.url
    )
    yield meta
    await meta.aclose()


@pytest.mark.parametrize(
    "msg",
    [
        {"to": AMINA, "type": "text", "text": "hello"},
        {"to": AMINA, "type": "buttons", "text": "Approve?", "buttons": [["yes", "Yes"], ["no", "No"]]},
    ],
)
async def test_an_answer_the_database_missed_is_recorded_on_retry_and_not_sent_again(
    engine: Any, channel: MetaCloudChannel, graph_api: Any, monkeypatch: pytest.MonkeyPatch, msg: dict[str, Any]
) -> None:
    record = outbox._record
    calls = []

    async def down_once(engine: Any, key: str, ids: list[str]) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise ConnectionError("database went away")
        await record(engine, key, ids)

    monkeypatch.setattr(outbox, "_record", down_once)
    with pytest.raises(ConnectionError):
        await outbox.send_one(engine, channel, "turn:1:0", msg, confirm_seconds=0)  # resend allowed at once
    assert len(graph_api.sent_messages()) == 1
    sent = await outbox.send_one(engine, channel, "turn:1:0", msg, confirm_seconds=0)
    assert len(graph_api.sent_messages()) == 1  # not sent again although the confirm window is over
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(outbound_messages).where(outbound_messages.c.idempotency_key == "turn:1:0"))
        ).one()
    assert row.status == "sent" and row.provider_message_id == sent[0]
    assert "turn:1:0" not in outbox._answered
