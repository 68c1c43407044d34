"""Tracing: off and silent without a LangSmith key; with one, runs carry the turn's metadata and no personal data.

Turns run through the real :class:`server.worker.turns.TurnRunner` (PostgreSQL, Redis, both graphs with an in-memory
checkpointer, a recording channel). With a key, LangSmith's endpoint is a local stand-in that records every
request body.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy import insert, select

from core.config import Settings
from core.db import inbox, purchase_requests
from core.repo import load_catalog
from graphs import approval, procurement
from prompts import INTAKE_PROMPT_VERSION
from server import tracing
from server.worker.turns import TurnRunner
from tools.catalog import CatalogIndex

LANGSMITH_ENV = (
    "LANGSMITH_TRACING",
    "LANGCHAIN_TRACING_V2",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "LANGSMITH_ENDPOINT",
    "LANGSMITH_PROJECT",
)
_ids = itertools.count(1)


# -- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture
def langsmith_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore LangSmith's process-wide state and environment after a test that configures tracing."""
    import langsmith
    from langsmith import run_trees
    from langsmith._internal import _context

    for name in LANGSMITH_ENV:  # monkeypatch restores whatever configure_tracing writes to these
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    saved = (run_trees._CLIENT, _context._GLOBAL_TRACING_ENABLED, _context._GLOBAL_PROJECT_NAME)
    monkeypatch.setattr(tracing, "_state", tracing._State())
    yield
    client, enabled, project = saved
    langsmith.configure(client=client, enabled=enabled, project_name=project)


class NetworkGuard:
    """Records (and refuses) every connection or name lookup that is not loopback or a unix socket."""

    def __init__(self) -> None:
        self.attempts: list[Any] = []

    @staticmethod
    def _local_host(host: Any) -> bool:
        if host in (None, "", "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def check(self, family: Any, address: Any) -> None:
        if family == socket.AF_UNIX or isinstance(address, str | bytes):
            return
        if not self._local_host(address[0]):
            self.attempts.append(address)
            raise OSError(f"test network guard: connection to {address!r} refused")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> NetworkGuard:
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_create, real_getaddrinfo = socket.create_connection, socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> Any:
            guard.check(sock.family, address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            guard.check(sock.family, address)
            return real_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check(socket.AF_INET, address)
            return real_create(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not self._local_host(host.decode() if isinstance(host, bytes) else host):
                guard.attempts.append(("getaddrinfo", host))
                raise OSError(f"test network guard: name lookup of {host!r} refused")
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "create_connection", create_connection)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return self


class RecordingChannel:
    """A channel that records what would be sent (no provider)."""

    name = "meta"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def mark_read(self, message_id: str, typing: bool = False) -> None:
        return None

    async def send_text(self, to: str, text: str, **_: Any) -> list[str]:
        self.sent.append(("text", to, text))
        return [f"wamid.out{next(_ids)}"]

    async def send_buttons(self, to: str, text: str, buttons: Any, **_: Any) -> str:
        self.sent.append(("buttons", to, text))
        return f"wamid.out{next(_ids)}"

    async def send_list(self, to: str, text: str, button: str, rows: Any, section: str, **_: Any) -> str:
        self.sent.append(("list", to, text))
        return f"wamid.out{next(_ids)}"

    async def aclose(self) -> None:
        return None


async def make_runner(engine: Any, redis_url: str, settings: Settings) -> tuple[TurnRunner, RecordingChannel, Any]:
    from arq.connections import create_pool

    from server.services import redis_settings

    channel = RecordingChannel()
    catalog = CatalogIndex(await load_catalog(engine))

    async def get_catalog() -> CatalogIndex:
        return catalog

    redis = await create_pool(redis_settings(redis_url), default_queue_name="procure:test-tracing")
    services = SimpleNamespace(
        settings=settings,
        engine=engine,
        redis=redis,
        channels={"meta": channel},
        chat_model=None,
        extras={},
        catalog=get_catalog,
    )
    saver = InMemorySaver()
    runner = TurnRunner(
        services,
        procurement.builder.compile(checkpointer=saver, name="procurement"),
        approval.builder.compile(checkpointer=saver, name="approval"),
    )
    return runner, channel, redis


def wamid(wa_id: str) -> str:
    """A Cloud-API-like message id: like real wamids, it carries the sender's number in base64."""
    return "wamid.HBgM" + base64.b64encode(wa_id.encode()).decode() + "FQIAEhgU" + uuid.uuid4().hex[:20].upper()


async def deliver(engine: Any, wa_id: str, name: str, **fields: Any) -> None:
    """Store one inbound message the way the webhook does (the turn then claims it)."""
    now = datetime.now(UTC)
    message = {
        "provider": "meta",
        "provider_message_id": wamid(wa_id),
        "chat_id": wa_id,
        "sender": wa_id,
        "sender_name": name,
        "timestamp": now.isoformat(),
        **fields,
    }
    async with engine.begin() as conn:
        await conn.execute(
            insert(inbox).values(
                provider="meta",
                provider_message_id=message["provider_message_id"],
                chat_id=wa_id,
                sender=wa_id,
                type=fields["kind"],
                message=message,
                raw_payload={},
                sent_at=now,
            )
        )


async def request_then_confirm(engine: Any, runner: TurnRunner, user: Any) -> None:
    """Two turns: a complete request, then the Confirm button (submits PR-1 and starts its approval)."""
    await deliver(engine, user.wa_id, user.display_name, kind="text", text="need 2 staplers for nairobi by friday")
    assert (await runner.run("meta", user.wa_id)).startswith("turn")
    await deliver(engine, user.wa_id, user.display_name, kind="button", reply_id="confirm", text="Confirm")
    assert (await runner.run("meta", user.wa_id)).startswith("turn")
    async with engine.connect() as conn:
        status = (await conn.execute(select(purchase_requests.c.status))).scalar_one()
    assert status == "pending_approval"


# -- unit: the scrubber -----------------------------------------------------------------------------------------
def test_scrub_removes_numbers_ids_and_names(langsmith_state: None) -> None:
    tracing.set_known_names(["Amina Requester", "Brian Approver"])
    data = {
        "inbound": [
            {
                "sender": "254700000001",
                "chat_id": "254700000001",
                "sender_name": "Amina",
                "provider_message_id": wamid("254700000001"),
                "text": "call +254 700 000 001 or 0712 345 678; brian approver knows. 2 staplers, 1234567.50 total",
                "timestamp": "2026-11-18T07:00:00+00:00",
            }
        ],
        "outbound": [{"to": "254700000002", "text": "✅ *PR-1* sent to *Brian Approver* for approval."}],
        "metadata": {"thread_id": "meta:254700000001", "role": "approver"},
    }
    out = json.dumps(tracing.scrub(data))
    for secret in ("254700000001", "254700000002", "700 000 001", "0712 345 678", "MjU0NzAwMDAwMDAx", "Amina", "Brian"):
        assert secret not in out, secret
    scrubbed = tracing.scrub(data)
    assert scrubbed["inbound"][0]["sender"] == tracing.pseudonym("254700000001") == scrubbed["inbound"][0]["chat_id"]
    assert scrubbed["inbound"][0]["timestamp"] == "2026-11-18T07:00:00+00:00"
    assert "2 staplers, 1234567.50 total" in scrubbed["inbound"][0]["text"]
    assert scrubbed["outbound"][0]["text"] == "✅ *PR-1* sent to *[name]* for approval."
    assert scrubbed["metadata"] == {"thread_id": tracing.thread_ref("meta:254700000001"), "role": "approver"}
    assert tracing.thread_ref("approval:PR-12:r2") == "approval:PR-12:r2"
    assert tracing.scrub_metadata({"phone": "+254700000001", "display_name": "Amina", "turn_id": 3}) == {"turn_id": 3}
    # Site names stay readable even inside a (shared account's) name.
    tracing._state.keep_words = frozenset({"Nairobi"})
    tracing.set_known_names(["Stores Nairobi"])
    assert tracing.scrub_text("Stores Nairobi asked for Nairobi; Stores will collect") == (
        "[name] asked for Nairobi; [name] will collect"
    )


# -- (a) no key: tracing off, no network --------------------------------------------------------------------------
async def test_no_key_means_no_tracing_and_no_network(
    engine: Any, redis_url: str, seeded: dict[str, Any], langsmith_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import langsmith
    from langchain_core.tracers.langchain import LangChainTracer

    # A misleading environment: tracing "on" but no key in Settings. Settings win.
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "true")
    asked: list[str] = []
    for method in (
        "create_run",
        "update_run",
        "batch_ingest_runs",
        "multipart_ingest",
        "request_with_retries",
        "_send_multipart_req",
    ):

        def record(*args: Any, _m: str = method, **kwargs: Any) -> None:
            asked.append(_m)

        monkeypatch.setattr(langsmith.Client, method, record)
    real_tracer_init = LangChainTracer.__init__

    def tracer_init(self: Any, *args: Any, **kwargs: Any) -> None:
        asked.append("LangChainTracer")
        real_tracer_init(self, *args, **kwargs)

    monkeypatch.setattr(LangChainTracer, "__init__", tracer_init)
    guard = NetworkGuard().install(monkeypatch)

    settings = Settings(_env_file=None, LANGSMITH_API_KEY=None)  # type: ignore[call-arg]
    runner, channel, redis = await make_runner(engine, redis_url, settings)
    try:
        await request_then_confirm(engine, runner, seeded["amina"])
    finally:
        await redis.aclose()

    assert guard.attempts == []
    assert asked == []
    assert not tracing.tracing_enabled()
    assert os.environ["LANGSMITH_TRACING"] == "false"
    assert any(kind == "buttons" and to == seeded["brian"].wa_id for kind, to, _ in channel.sent), channel.sent


# -- (b) with a key: runs reach the (stand-in) endpoint with metadata and without personal data -----------------
class LangSmithStandIn:
    """A local HTTP server in a thread that answers like LangSmith's ingest API and records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LangSmithStandIn:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def endpoint(request: Request) -> JSONResponse:
            body = await request.body()
            if request.headers.get("content-encoding") == "zstd":  # compression is off unless /info enables it
                import zstandard

                body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "content_type": request.headers.get("content-type", ""),
                    "body": body,
                }
            )
            if request.url.path.endswith("/info"):
                return JSONResponse({"version": "0.0.0-standin"})
            return JSONResponse({}, status_code=202 if request.method == "POST" else 200)

        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PATCH", "PUT"])])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run posted or patched, by id, with its parts merged (multipart, batch and single endpoints)."""
        runs: dict[str, dict[str, Any]] = {}

        def merge(run: dict[str, Any]) -> None:
            runs.setdefault(str(run["id"]), {}).update({k: v for k, v in run.items() if v is not None})

        for req in self.requests:
            if req["method"] not in ("POST", "PATCH") or "/runs" not in req["path"]:
                continue
            if req["path"].endswith("/runs/multipart"):
                head = f"Content-Type: {req['content_type']}\r\n\r\n".encode()
                msg = BytesParser(policy=HTTP).parsebytes(head + req["body"])
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition") or ""
                    payload = json.loads(part.get_payload(decode=True) or b"null")
                    _op, run_id, *field = str(name).split(".")
                    merge({"id": run_id, **({field[0]: payload} if field else payload)})
            elif req["path"].endswith("/runs/batch"):
                doc = json.loads(req["body"])
                for run in [*doc.get("post", []), *doc.get("patch", [])]:
                    merge(run)
            else:
                doc = json.loads(req["body"] or b"{}")
                if "id" not in doc and req["method"] == "PATCH":
                    doc["id"] = req["path"].rsplit("/", 1)[-1]
                merge(doc)
        return runs


async def test_key_sends_redacted_runs_with_turn_metadata(
    engine: Any, redis_url: str, seeded: dict[str, Any], langsmith_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    amina, brian = seeded["amina"], seeded["brian"]
    guard = NetworkGuard().install(monkeypatch)
    with LangSmithStandIn() as standin:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            LANGSMITH_API_KEY="lsv2_pt_test_key",
            LANGSMITH_ENDPOINT=standin.url,
            LANGSMITH_PROJECT="procure-tests",
        )
        assert tracing.configure_tracing(settings)
        runner, channel, redis = await make_runner(engine, redis_url, settings)
        try:
            await request_then_confirm(engine, runner, amina)
        finally:
            await redis.aclose()
        tracing.flush_tracing(timeout=20)
        runs = standin.runs()

    assert guard.attempts == []
    raw = b"".join(r["body"] for r in standin.requests)
    assert raw, "no request reached the LangSmith stand-in"
    people = [p for p in seeded.values()]
    for p in people:
        assert p.wa_id.encode() not in raw, f"{p.display_name}'s number left the machine"
        assert base64.b64encode(p.wa_id.encode()).rstrip(b"=")[:12] not in raw
    for word in ("Amina", "Brian"):
        assert word.encode() not in raw, f"name {word!r} left the machine"

    turns = [r for r in runs.values() if r.get("name") == "procurement turn"]
    assert len(turns) == 2, sorted({r.get("name") for r in runs.values()})
    for run in turns:
        md = run["extra"]["metadata"]
        assert md["thread_id"] == tracing.thread_ref(f"meta:{amina.wa_id}")
        assert md["thread_id"].startswith("meta:p-")
        assert md["prompt_version"] == INTAKE_PROMPT_VERSION
        assert md["role"] == "requester"
        assert md["provider"] == "meta"
        assert md["model_name"] == "none"
        assert isinstance(md["turn_id"], int)
        assert {"graph:procurement", "provider:meta", "role:requester"} <= set(run["tags"])
        assert run.get("inputs") and run.get("outputs")
    # The submitted request's approval thread is traced with its number.
    steps = [r for r in runs.values() if r.get("name") == "approval step"]
    assert steps and steps[0]["extra"]["metadata"]["request_number"] == "PR-1"
    assert steps[0]["extra"]["metadata"]["thread_id"] == "approval:PR-1:r1"
    # The inputs kept their shape: the sender became a pseudonym, the text stayed readable.
    first = min(turns, key=lambda r: r["extra"]["metadata"]["turn_id"])
    msg = first["inputs"]["inbound"][0]
    assert msg["sender"] == tracing.pseudonym(amina.wa_id)
    assert msg["text"] == "need 2 staplers for nairobi by friday"
    assert msg["provider_message_id"] == "[id]" and msg["sender_name"] == "[name]"
    # The approver still got the buttons (tracing changes nothing in the conversation).
    assert any(kind == "buttons" and to == brian.wa_id for kind, to, _ in channel.sent)
