"""Our idempotency key travels as Meta's ``biz_opaque_callback_data``: sent with each message, read from statuses.

Also the Graph API stand-in's faults used by the outbox tests: a lost answer, and status webhooks that echo the
tag.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandboxes.whatsapp.status_webhooks import StatusWebhooks
from server.channels.errors import ChannelSendError
from server.channels.meta import MetaCloudChannel
from server.channels.meta.client import CALLBACK_DATA_MAX
from server.channels.records import DeliveryStatus, StatusUpdate
from tests.support.payloads import envelope, status
from tests.support.standins.graph_api import GraphAPIStandIn

TOKEN = "test-access-token"
SECRET = "test-app-secret"


def make_channel(graph_url: str, **kwargs: Any) -> MetaCloudChannel:
    return MetaCloudChannel(
        app_secret=SECRET,
        verify_token="v",
        access_token=TOKEN,
        phone_number_id="106540352242922",
        graph_url=graph_url,
        backoff_initial=0.01,
        backoff_max=0.05,
        **kwargs,
    )


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphAPIStandIn]:
    with GraphAPIStandIn(access_token=TOKEN) as standin:
        yield standin


@pytest.fixture
async def channel(graph: GraphAPIStandIn) -> AsyncIterator[MetaCloudChannel]:
    graph.reset()
    graph.status_webhooks = None
    meta = make_channel(graph.url)
    yield meta
    await meta.aclose()


def test_status_carries_the_callback_data() -> None:
    payload = envelope(statuses=[status("wamid.OUT1", "2547", "delivered", callback_data="turn:7:0")])
    _, statuses = make_channel("http://127.0.0.1:9").parse(json.dumps(payload).encode())
    assert statuses[0].callback_data == "turn:7:0"
    assert statuses[0].status is DeliveryStatus.DELIVERED
    # it survives the record's dict form; a status without one has None
    assert StatusUpdate.from_dict(json.loads(json.dumps(statuses[0].to_dict()))) == statuses[0]
    _, plain = make_channel("http://127.0.0.1:9").parse(
        json.dumps(envelope(statuses=[status("w", "1", "sent")])).encode()
    )
    assert plain[0].callback_data is None


async def test_each_send_carries_its_key(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    await channel.send_text("2547", "hello", callback_data="turn:1:0")
    await channel.send_buttons("2547", "Approve?", [("a", "Yes"), ("b", "No")], callback_data="approval:PR-1:r1:0")
    await channel.send_list("2547", "Pick", "Open", [("r1", "One", None)], "Items", callback_data="turn:1:2")
    await channel.send_text("2547", "no tag")
    tags = [m.get("biz_opaque_callback_data") for m in graph.sent_messages()]
    assert tags == ["turn:1:0", "approval:PR-1:r1:0", "turn:1:2", None]


async def test_a_split_text_tags_each_part(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    para = ("word " * 99 + "end.").strip()
    await channel.send_text("2547", "\n\n".join([para] * 10), callback_data="turn:3:0")
    assert [m["biz_opaque_callback_data"] for m in graph.sent_messages()] == ["turn:3:0:0", "turn:3:0:1"]


async def test_too_long_callback_data_is_refused_before_sending(
    channel: MetaCloudChannel, graph: GraphAPIStandIn
) -> None:
    with pytest.raises(ValueError, match="callback_data"):
        await channel.send_text("2547", "hello", callback_data="k" * (CALLBACK_DATA_MAX + 1))
    assert graph.requests == []


async def test_lost_answer_sends_but_the_client_times_out(graph: GraphAPIStandIn) -> None:
    graph.reset()
    graph.lose_answers_next(1)
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.3)) as client:
        meta = make_channel(graph.url, http_client=client)
        with pytest.raises(ChannelSendError) as caught:
            await meta.send_text("2547", "hello", callback_data="turn:9:0")
        assert caught.value.delivery_unknown is True
        # the next send is answered normally; the lost one did go out
        assert len(await meta.send_text("2547", "again")) == 1
    bodies = [m["text"]["body"] for m in graph.sent_messages()]
    assert bodies == ["hello", "again"]
    graph.release_held()


async def test_status_webhooks_echo_the_tag(graph: GraphAPIStandIn) -> None:
    received: list[dict[str, Any]] = []

    async def webhook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/webhooks/meta", webhook, methods=["POST"])])
    graph.reset()
    hooks = StatusWebhooks("http://app/webhooks/meta", SECRET, transport=httpx.ASGITransport(app=app))
    graph.status_webhooks = hooks
    meta = make_channel(graph.url)
    try:
        await meta.send_text("2547", "hello", callback_data="turn:5:0")
        hooks.paused = True
        await meta.send_text("2547", "quiet")
        for _ in range(100):
            if len(hooks.posted) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await meta.aclose()
        graph.status_webhooks = None
    await asyncio.sleep(0.2)
    assert [p.status["status"] for p in hooks.posted] == ["sent", "delivered"]
    assert all(p.http_status == 200 for p in hooks.posted)
    assert {p.status["biz_opaque_callback_data"] for p in hooks.posted} == {"turn:5:0"}
    wamid = graph.requests[0].response["messages"][0]["id"]
    assert {p.status["id"] for p in hooks.posted} == {wamid}
    statuses = [s for body in received for s in body["entry"][0]["changes"][0]["value"]["statuses"]]
    assert len(statuses) == 2  # nothing for the message sent while paused
