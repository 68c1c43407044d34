"""The channel registry: a channel defined here is registered in one place and a whole conversation runs through it.

The fake "jsonchat" provider speaks JSON over HTTP with a shared token header. Registering it is the only
wiring: the web app's webhook POST and GET handshake, verification, parsing, the answer body, the worker's
channel (read receipts, media download, sends) all come from the registry. The stack is real: uvicorn serving
``create_app``, an arq worker running ``server.worker``'s settings, PostgreSQL and Redis from the session.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from server.channels import registry
from server.channels.errors import PayloadError, SignatureError
from server.channels.meta import MetaCloudChannel
from server.channels.records import InboundMessage, MessageKind, StatusUpdate
from tests.support.stack import WebServer, stack_env, wait_for

TOKEN = "jsonchat-test-token"
AMINA, BRIAN = "254700000001", "254700000002"
PHOTO = b"\xff\xd8\xff\xe0 a tiny jpeg"
_ids = itertools.count(1)


class JsonChat:
    """A provider that posts ``{"messages": [{"id", "from", "text" | "reply" | "media"}]}`` with ``X-Jsonchat-Token``.

    Everything it "sends" is appended to :attr:`outbox` (class-level: the web app and the worker each build an
    instance from the registry).
    """

    name = "jsonchat"
    title = "JSON chat"
    webhook_path = "/webhooks/jsonchat"
    signs_url = False
    subscription_params = ("token", "challenge")
    outbox: list[dict[str, Any]] = []
    read: list[str] = []
    media: dict[str, bytes] = {}

    @classmethod
    def from_settings(cls, settings: Any, http_client: Any = None) -> JsonChat:
        return cls()

    def verify_request(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        given = {k.lower(): v for k, v in headers.items()}.get("x-jsonchat-token")
        if given is None:
            raise SignatureError("missing X-Jsonchat-Token")
        if not hmac.compare_digest(given.encode(), TOKEN.encode()):
            raise SignatureError("X-Jsonchat-Token does not match")

    def answer_subscription(self, query: Mapping[str, str]) -> str | None:
        return query.get("challenge") if query.get("token") == TOKEN else None

    def parse(self, body: bytes, content_type: str) -> tuple[list[InboundMessage], list[StatusUpdate]]:
        try:
            items = orjson.loads(body)["messages"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a jsonchat body: {exc}") from None
        out = []
        for m in items:
            kind = MessageKind.BUTTON if "reply" in m else MessageKind.IMAGE if "media" in m else MessageKind.TEXT
            out.append(
                InboundMessage(
                    provider=self.name,
                    provider_message_id=m["id"],
                    chat_id=m["from"],
                    sender=m["from"],
                    kind=kind,
                    timestamp=datetime.now(UTC),
                    text=m.get("text"),
                    reply_id=m.get("reply"),
                    media_id=m.get("media"),
                    mime_type="image/jpeg" if "media" in m else None,
                )
            )
        return out, []

    def webhook_answer(self, stored: int, duplicates: int) -> tuple[bytes, str]:
        return f"<ok stored={stored} duplicates={duplicates}/>".encode(), "text/xml"

    async def send_text(self, to: str, text: str, *, callback_data: str | None = None) -> list[str]:
        return [self._record({"to": to, "type": "text", "text": text})]

    async def send_buttons(
        self,
        to: str,
        body: str,
        buttons: Sequence[tuple[str, str]],
        header: str | None = None,
        footer: str | None = None,
        *,
        callback_data: str | None = None,
    ) -> str:
        return self._record({"to": to, "type": "buttons", "text": body, "ids": [b[0] for b in buttons]})

    async def send_list(
        self,
        to: str,
        body: str,
        button_text: str,
        rows: Sequence[tuple[str, str, str | None]],
        section_title: str,
        *,
        callback_data: str | None = None,
    ) -> str:
        return self._record({"to": to, "type": "list", "text": body, "ids": [r[0] for r in rows]})

    async def mark_read(self, message_id: str, typing: bool = True) -> None:
        self.read.append(message_id)

    async def download_media(self, media_id: str) -> tuple[bytes, str]:
        return self.media[media_id], "image/jpeg"

    async def aclose(self) -> None:
        return None

    def _record(self, msg: dict[str, Any]) -> str:
        msg["id"] = f"jc.out{next(_ids)}"
        self.outbox.append(msg)
        return msg["id"]


# -- the registry itself --------------------------------------------------------------------------------------


def test_builtin_meta_is_registered_and_derives_its_routes() -> None:
    classes = registry.channels()
    assert classes["meta"] is MetaCloudChannel
    assert MetaCloudChannel.webhook_path == "/webhooks/meta" and MetaCloudChannel.subscription_params


def test_register_refuses_clashes_bad_names_and_non_channels() -> None:
    class Clash(JsonChat):
        name = "meta"

    class SamePath(JsonChat):
        name = "other"
        webhook_path = "/webhooks/meta"

    class BadName(JsonChat):
        name = "Bad-Name"

    class NotAChannel:
        name = "half"
        webhook_path = "/webhooks/half"

    for cls, error in ((Clash, ValueError), (SamePath, ValueError), (BadName, ValueError), (NotAChannel, TypeError)):
        with pytest.raises(error):
            registry.register(cls)  # type: ignore[arg-type]
    assert not {"half", "Bad-Name", "other"} & set(registry.channels())
    assert registry.channels()["meta"] is MetaCloudChannel


def test_path_templates_match_one_segment() -> None:
    assert registry.match_path("/webhooks/meta", "/webhooks/meta")
    assert not registry.match_path("/webhooks/meta", "/webhooks/meta/x")
    assert registry.match_path("/webhooks/evolution/{secret}", "/webhooks/evolution/s3cr3t")
    assert not registry.match_path("/webhooks/evolution/{secret}", "/webhooks/evolution/")
    assert not registry.match_path("/webhooks/evolution/{secret}", "/webhooks/evolution/a/b")
    assert not registry.match_path("/webhooks/evolution/{secret}", "/webhooks/evolutionx")


def test_an_unconfigured_channel_is_not_built() -> None:
    class Unconfigured(JsonChat):
        name = "unconfigured"
        webhook_path = "/webhooks/unconfigured"

        @classmethod
        def from_settings(cls, settings: Any, http_client: Any = None) -> None:  # type: ignore[override]
            return None

    from core.config import Settings

    registry.register(Unconfigured)  # type: ignore[arg-type]
    try:
        built = registry.build(Settings(ENVIRONMENT="test"))
        assert "unconfigured" not in built and isinstance(built["meta"], MetaCloudChannel)
    finally:
        registry.unregister("unconfigured")


# -- a conversation through the registered fake channel ------------------------------------------------------


class WorkerThread:
    """The real arq worker (``server.worker.settings.worker_settings``) in a thread of this process, so it sees the registry."""

    def __init__(self, env: dict[str, str]) -> None:
        from core.config import Settings

        self.env = env
        self.settings = Settings(**{k: v for k, v in env.items() if k in Settings.model_fields})  # type: ignore[arg-type]
        self.loop = asyncio.new_event_loop()
        self.worker: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.failure: BaseException | None = None

    def _run(self) -> None:
        from arq.worker import Worker

        from server.worker.settings import worker_settings

        asyncio.set_event_loop(self.loop)
        options = worker_settings(self.settings, self.env["DATABASE_URL"], self.env["REDIS_URL"])
        options["handle_signals"] = False
        self.worker = Worker(**options)

        async def main() -> None:
            try:
                await self.worker.async_run()
            except asyncio.CancelledError:
                pass
            finally:
                await self.worker.close()

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by start()/stop()
            self.failure = exc

    def start(self) -> WorkerThread:
        import redis

        key = self.settings.QUEUE_NAME + ":health-check"
        r = redis.Redis.from_url(self.env["REDIS_URL"])
        r.delete(key)
        self.thread.start()
        try:
            wait_for(lambda: r.exists(key) or self.failure, timeout=60, interval=0.05)
        finally:
            r.close()
        if self.failure:
            raise self.failure
        return self

    def stop(self) -> None:
        task = getattr(self.worker, "main_task", None)
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)
        self.thread.join(20)


@pytest.fixture
def jsonchat_stack(database_url: str, redis_url: str, graph_api: Any, data_dir: Path) -> Iterator[WebServer]:
    registry.register(JsonChat)  # type: ignore[arg-type]  # the one line that wires a channel in
    JsonChat.outbox.clear()
    env = stack_env(database_url, redis_url, graph_api.url, data_dir, QUEUE_NAME="procure:test-jsonchat")
    web = WebServer(env).start()
    worker = WorkerThread(env).start()
    try:
        yield web
    finally:
        worker.stop()
        web.stop()
        registry.unregister("jsonchat")


def post(web: WebServer, *messages: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
    headers = {"X-Jsonchat-Token": token} if token is not None else {}
    body = orjson.dumps({"messages": list(messages)})
    return httpx.post(web.url + "/webhooks/jsonchat", content=body, headers=headers, timeout=10)


def say(web: WebServer, sender: str, **message: str) -> list[dict[str, Any]]:
    """Post one message and return everything the agent sent (to anyone) until it goes quiet."""
    before = len(JsonChat.outbox)
    r = post(web, {"id": f"jc.in{next(_ids)}", "from": sender, **message})
    assert r.status_code == 200 and r.text == "<ok stored=1 duplicates=0/>"
    assert r.headers["content-type"] == "text/xml"
    wait_for(lambda: len(JsonChat.outbox) > before, timeout=25)
    last, since = len(JsonChat.outbox), time.time()
    while time.time() - since < 0.8:
        time.sleep(0.1)
        if len(JsonChat.outbox) != last:
            last, since = len(JsonChat.outbox), time.time()
    return JsonChat.outbox[before:]


async def test_conversation_through_a_registered_channel(jsonchat_stack: WebServer, fresh: Any, data_dir: Path) -> None:
    web = jsonchat_stack
    # Verification, the handshake and the answer come from the channel class.
    assert post(web, {"id": "x", "from": AMINA, "text": "hi"}, token=None).status_code == 401
    assert post(web, {"id": "x", "from": AMINA, "text": "hi"}, token="wrong").status_code == 403
    assert (
        httpx.post(web.url + "/webhooks/jsonchat", content=b"[", headers={"X-Jsonchat-Token": TOKEN}).status_code == 400
    )
    assert httpx.get(web.url + "/webhooks/jsonchat", params={"token": TOKEN, "challenge": "42"}).text == "42"
    assert httpx.get(web.url + "/webhooks/jsonchat", params={"token": "no", "challenge": "42"}).status_code == 403
    spec = httpx.get(web.url + "/openapi.json").json()
    assert {"get", "post"} <= set(spec["paths"]["/webhooks/jsonchat"])

    # webhook -> inbox -> worker -> graph -> outbox -> JsonChat.send_*
    out = await asyncio.to_thread(say, web, AMINA, text="10 boxes a4 paper for nairobi by friday")
    draft = [m for m in out if m["to"] == AMINA]
    assert draft[-1]["type"] == "buttons" and "confirm" in draft[-1]["ids"], out
    assert JsonChat.read, "the worker marks the inbound message read through the channel"
    out = await asyncio.to_thread(say, web, AMINA, reply="confirm")
    assert any("PR-1" in m["text"] for m in out if m["to"] == AMINA), out
    approval = [m for m in out if m["to"] == BRIAN]
    assert approval and approval[0]["ids"] == ["approve:1:1", "reject:1:1"], out
    out = await asyncio.to_thread(say, web, BRIAN, reply="approve:1:1")
    assert any("approved" in m["text"] for m in out if m["to"] == AMINA), out

    # inbound media is downloaded through the same channel into object storage
    JsonChat.media["jc.media1"] = PHOTO
    await asyncio.to_thread(say, web, AMINA, media="jc.media1")
    stored = list((data_dir / "objects" / "media" / "jsonchat").glob("*"))
    assert [p.read_bytes() for p in stored] == [PHOTO]
