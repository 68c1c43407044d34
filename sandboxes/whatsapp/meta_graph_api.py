"""A local stand-in for Meta's Graph API (WhatsApp Cloud API), for tests, the demo and benchmarks.

It is a real HTTP server (Starlette served by uvicorn on ``127.0.0.1``, a free port, in a background thread),
so the code under test runs its real HTTP client, retries and timeouts. It follows Meta's documented contract:

- ``POST /{version}/{phone_number_id}/messages`` sends a message and answers ``{"messaging_product":
  "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": "wamid.…"}]}``; a read receipt
  (``{"status": "read", "message_id": …}``, optionally with ``typing_indicator``) answers
  ``{"success": true}``
  (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages,
  https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read).
  Text bodies over 4,096 characters and interactive messages over WhatsApp's limits are refused with HTTP 400
  and code 131009, so a client that forgets to split or clip fails its tests.
- ``GET /{version}/{media_id}`` answers ``{"messaging_product", "url", "mime_type", "sha256", "file_size",
  "id"}`` for media registered with :meth:`GraphAPIStandIn.add_media`; ``GET`` on that ``url`` (with the
  bearer token) returns the bytes (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media).
- Every request must carry ``Authorization: Bearer <access_token>``; otherwise HTTP 401 with Meta's
  ``OAuthException`` body (code 190).
- Errors use Meta's shape ``{"error": {"message", "type", "code", "error_data": {"messaging_product",
  "details"}, "fbtrace_id"}}`` (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
  :meth:`GraphAPIStandIn.fail_next` makes the next requests fail, e.g. 429 with code 130429, or 500.
- Faults of a send that went out: :meth:`GraphAPIStandIn.slow_next` answers late (the message counts as sent
  after the wait), :meth:`GraphAPIStandIn.lose_answers_next` sends at once and never answers in time (the client
  cannot know the message went out).
- Status webhooks: with :attr:`GraphAPIStandIn.status_webhooks` set (a
  :class:`sandboxes.whatsapp.status_webhooks.StatusWebhooks`), every message sent is followed by signed
  ``sent``/``delivered`` status posts to the app that echo the send's ``biz_opaque_callback_data``.

Use it as a context manager or through a pytest fixture::

    @pytest.fixture
    def graph():
        with GraphAPIStandIn(access_token="test-token") as standin:
            yield standin

    def test_something(graph):
        channel = MetaCloudChannel(..., access_token="test-token", graph_url=graph.url)
        ...
        assert graph.sent_messages()[0]["text"]["body"] == "hello"

Point ``META_GRAPH_URL`` at :attr:`GraphAPIStandIn.url` (it includes the API version, like the real one).

About 530 lines, on purpose: one stand-in server reproducing one documented API (the messages, media and error
contracts above), kept together like the client it checks (``server/channels/meta/client.py``).

Kept as one module past 500 lines on purpose: it is one stand-in of one provider contract (send, media, fault
modes and their state), read as a whole by tests; the status-webhook sender already lives apart
(``status_webhooks.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.config import GRAPH_API_VERSION
from sandboxes.whatsapp.status_webhooks import StatusWebhooks

__all__ = ["GraphAPIStandIn", "RecordedRequest"]

# WhatsApp limits, in characters (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages).
_TEXT_MAX = 4096
_BODY_MAX = 1024
_HEADER_FOOTER_MAX = 60
_BUTTON_TITLE_MAX = 20
_BUTTON_ID_MAX = 256
_BUTTONS_MAX = 3
_ROWS_MAX = 10
_ROW_TITLE_MAX = 24
_ROW_DESCRIPTION_MAX = 72
_ROW_ID_MAX = 200
_LIST_BUTTON_MAX = 20


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the stand-in received, with what it answered.

    Attributes:
        method: HTTP method, upper case.
        path: URL path, e.g. ``"/v23.0/1234/messages"``.
        query: query parameters (last value wins).
        headers: request headers, names lower case.
        json: the parsed JSON body, or ``None`` when the body was empty or not JSON.
        status: the HTTP status answered.
        response: the JSON answered, or ``None`` for binary (media) answers.
        body: the raw request body.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int
    response: Any
    body: bytes = field(default=b"", repr=False)

    @property
    def is_message_send(self) -> bool:
        """True for a ``POST …/messages`` that sends a message (not a read receipt)."""
        return (
            self.method == "POST"
            and self.path.endswith("/messages")
            and isinstance(self.json, dict)
            and "status" not in self.json
        )

    @property
    def is_read_receipt(self) -> bool:
        """True for a ``POST …/messages`` with ``status: "read"``."""
        return (
            self.method == "POST"
            and self.path.endswith("/messages")
            and isinstance(self.json, dict)
            and self.json.get("status") == "read"
        )


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    code: int | None
    message: str


@dataclass(frozen=True, slots=True)
class _Media:
    content: bytes
    mime_type: str


def _meta_error(status: int, code: int | None, message: str, details: str | None = None, **extra: Any) -> JSONResponse:
    """A Meta-style error response."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": uuid.uuid4().hex[:22],
        **extra,
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return JSONResponse({"error": error}, status_code=status)


class GraphAPIStandIn:
    """A Graph API stand-in running on ``127.0.0.1`` in a background thread.

    Args:
        access_token: the bearer token every request must carry.
        version: the API version path segment; :attr:`url` ends with it.
        host: interface to listen on.

    Attributes:
        access_token: the accepted bearer token (assignable, e.g. to simulate a revoked token).
        status_webhooks: where status webhooks of sent messages go, or ``None`` for none (assignable).
    """

    def __init__(
        self,
        access_token: str = "test-access-token",
        *,
        version: str = GRAPH_API_VERSION,
        host: str = "127.0.0.1",
    ) -> None:
        self.access_token = access_token
        self._version = version
        self._host = host
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: deque[_Failure | None] = deque()  # None: let one request through
        self._media: dict[str, _Media] = {}
        self._delays: deque[float] = deque()
        self._lost: deque[float] = deque()  # hold times of sends whose answer is "lost"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self.status_webhooks: StatusWebhooks | None = None
        self._counter = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._app = Starlette(
            routes=[
                Route("/media-download/{media_id}", self._download_media, methods=["GET"]),
                Route(f"/{version}/{{phone_number_id}}/messages", self._messages, methods=["POST"]),
                Route(f"/{version}/{{media_id}}", self._media_lookup, methods=["GET"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ]
        )

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; returns once the server accepts connections.

        Raises:
            RuntimeError: already started, or the server did not start within ``timeout`` seconds.
        """
        if self._thread is not None:
            raise RuntimeError("GraphAPIStandIn is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="graph-api-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("GraphAPIStandIn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and free the port (safe to call twice); held answers are let go first."""
        self.release_held()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without the version (media download URLs live here)."""
        if self._port is None:
            raise RuntimeError("GraphAPIStandIn is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """The Graph API base URL to use as ``META_GRAPH_URL``: ``http://127.0.0.1:<port>/<version>``."""
        return f"{self.base_url}/{self._version}"

    # -- control and inspection -------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        code: int | None = None,
        message: str | None = None,
        *,
        after: int = 0,
    ) -> None:
        """Make the next ``n`` requests (of any kind) fail with a Meta-style error.

        Calls queue up: ``fail_next(1, 429, 130429); fail_next(1, 500)`` fails the next request with a rate
        limit and the one after with a server error. Failed requests are recorded too.

        Args:
            n: how many requests fail.
            status: the HTTP status, e.g. 429, 500, 400.
            code: Meta's ``error.code``, e.g. 130429 (throughput limit), 131047 (outside the 24-hour window).
            message: ``error.message``; a generic one by default.
            after: let this many requests through normally first (e.g. ``after=1`` fails the second part of a
                multi-part send).
        """
        failure = _Failure(status=status, code=code, message=message or f"(#{code}) Simulated failure")
        with self._lock:
            self._failures.extend([None] * after + [failure] * n)

    def slow_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """Make the next ``n`` requests wait ``seconds`` before being answered (to exercise client timeouts).

        The request is processed (and, for a send, the message counts as sent) after the wait, like a slow
        Graph API that still delivers: a client that timed out does not know whether the message went out.
        """
        with self._lock:
            self._delays.extend([seconds] * n)

    def lose_answers_next(self, n: int = 1, hold_seconds: float = 600.0) -> None:
        """Make the next ``n`` message sends go out at once but hold their answer for ``hold_seconds``.

        The message counts as sent (and its status webhooks go out) when the request arrives; the HTTP answer
        comes only after the hold, or when :meth:`release_held` or :meth:`stop` is called: a client times out
        or dies without knowing its message went out, as when Meta's answer is lost on the way.
        """
        with self._lock:
            self._lost.extend([hold_seconds] * n)

    def release_held(self) -> None:
        """Answer every send held by :meth:`lose_answers_next` now (safe from any thread)."""
        loop, release = self._loop, self._release
        self._release = None  # later holds wait on a fresh event
        if loop is not None and release is not None and not loop.is_closed():
            loop.call_soon_threadsafe(release.set)

    def add_media(self, media_id: str, content: bytes, mime_type: str = "image/jpeg") -> None:
        """Register media that ``GET /{media_id}`` and its download URL will serve."""
        with self._lock:
            self._media[media_id] = _Media(content=content, mime_type=mime_type)

    def reset(self) -> None:
        """Forget recorded requests, queued failures and registered media."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._delays.clear()
            self._lost.clear()
            self._media.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in the order answered (a copy)."""
        with self._lock:
            return list(self._requests)

    def sent_messages(self) -> list[dict[str, Any]]:
        """JSON bodies of the message sends that succeeded (not read receipts, not failed attempts)."""
        return [r.json for r in self.requests if r.is_message_send and r.status == 200]

    def read_receipts(self) -> list[dict[str, Any]]:
        """JSON bodies of the read receipts that succeeded."""
        return [r.json for r in self.requests if r.is_read_receipt and r.status == 200]

    # -- request handling -------------------------------------------------------------------------------

    async def _record(self, request: Request, response: Response) -> Response:
        body = await request.body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        answered: Any = None
        if isinstance(response, JSONResponse):
            answered = json.loads(bytes(response.body))
        record = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed,
            status=response.status_code,
            response=answered,
            body=body,
        )
        with self._lock:
            self._requests.append(record)
        return response

    async def _precheck(self, request: Request) -> Response | None:
        """Queued delay, then queued failure, then the bearer token."""
        await request.body()  # read (and cache) it now: a client that times out cannot send it later
        with self._lock:
            delay = self._delays.popleft() if self._delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return _meta_error(failure.status, failure.code, failure.message, "Simulated by GraphAPIStandIn")
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return _meta_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        return None

    async def _messages(self, request: Request) -> Response:
        response = await self._precheck(request) or await self._answer_messages(request)
        # a message send that went out (a 200 answer means the body was a JSON object); not a read receipt
        sent = response.status_code == 200 and "status" not in json.loads(await request.body())
        with self._lock:
            hold = self._lost.popleft() if self._lost and sent else 0.0
        if not hold:
            return await self._record(request, response)
        await self._record(request, response)  # sent: it counts now, whatever happens to the answer
        if self._release is None:
            self._loop, self._release = asyncio.get_running_loop(), asyncio.Event()
        release = self._release
        try:
            await asyncio.wait_for(release.wait(), timeout=hold)
        except TimeoutError:
            pass
        return response

    async def _answer_messages(self, request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _meta_error(400, 100, "(#100) Invalid parameter", "Request body is not JSON")
        if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
            return _meta_error(400, 100, "(#100) The parameter messaging_product is required.")
        if "status" in payload:
            if payload.get("status") != "read" or not payload.get("message_id"):
                return _meta_error(400, 100, "(#100) Invalid parameter", "status must be 'read' with message_id")
            return JSONResponse({"success": True})
        to = payload.get("to")
        if not isinstance(to, str) or not to:
            return _meta_error(400, 100, "(#100) The parameter to is required.")
        problem = _check_message(payload)
        if problem:
            return _meta_error(400, 131009, "(#131009) Parameter value is not valid", problem)
        wamid = f"wamid.standin{next(self._counter):06d}{uuid.uuid4().hex[:12]}"
        wa_id = to.lstrip("+")
        if self.status_webhooks is not None:
            self.status_webhooks.message_sent(wamid, payload)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [{"id": wamid}],
            }
        )

    async def _media_lookup(self, request: Request) -> Response:
        response = await self._precheck(request)
        if response is None:
            media_id = request.path_params["media_id"]
            with self._lock:
                media = self._media.get(media_id)
            if media is None:
                response = _meta_error(
                    400,
                    100,
                    f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation.",
                    error_subcode=33,
                )
            else:
                response = JSONResponse(
                    {
                        "messaging_product": "whatsapp",
                        "url": f"{self.base_url}/media-download/{media_id}?mid={media_id}",
                        "mime_type": media.mime_type,
                        "sha256": hashlib.sha256(media.content).hexdigest(),
                        "file_size": len(media.content),
                        "id": media_id,
                    }
                )
        return await self._record(request, response)

    async def _download_media(self, request: Request) -> Response:
        response = await self._precheck(request)
        if response is None:
            with self._lock:
                media = self._media.get(request.path_params["media_id"])
            if media is None:
                response = _meta_error(404, 100, "Media not found")
            else:
                response = Response(media.content, media_type=media.mime_type)
        return await self._record(request, response)

    async def _unknown(self, request: Request) -> Response:
        response = await self._precheck(request) or _meta_error(
            400, 100, f"Unsupported {request.method.lower()} request (GraphAPIStandIn: {request.url.path})"
        )
        return await self._record(request, response)


def _check_message(payload: dict[str, Any]) -> str | None:
    """The first WhatsApp limit a send breaks, as Meta's ``error_data.details`` would say it, or ``None``."""
    msg_type = payload.get("type")
    if msg_type == "text":
        text = payload.get("text")
        body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(body, str) or not body:
            return "text.body is required"
        if len(body) > _TEXT_MAX:
            return f"Param text['body'] must be at most {_TEXT_MAX} characters long."
        return None
    if msg_type != "interactive":
        return None  # other types (image, template, ...) are accepted as they are
    interactive = payload.get("interactive")
    if not isinstance(interactive, dict):
        return "interactive is required"
    body = (interactive.get("body") or {}).get("text")
    if not isinstance(body, str) or not body or len(body) > _BODY_MAX:
        return f"Body text length invalid. Min length: 1, Max length: {_BODY_MAX}"
    header = interactive.get("header")
    if isinstance(header, dict) and len(header.get("text") or "") > _HEADER_FOOTER_MAX:
        return f"Header text length invalid. Max length: {_HEADER_FOOTER_MAX}"
    footer = interactive.get("footer")
    if isinstance(footer, dict) and len(footer.get("text") or "") > _HEADER_FOOTER_MAX:
        return f"Footer text length invalid. Max length: {_HEADER_FOOTER_MAX}"
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= _BUTTONS_MAX:
            return f"Buttons count invalid. Min: 1, Max: {_BUTTONS_MAX}"
        ids = [b.get("reply", {}).get("id", "") for b in buttons]
        if len(set(ids)) != len(ids):
            return "Button ids must be unique"
        for button in buttons:
            reply = button.get("reply") or {}
            if not 1 <= len(reply.get("title") or "") <= _BUTTON_TITLE_MAX:
                return f"Button title length invalid. Min length: 1, Max length: {_BUTTON_TITLE_MAX}"
            if not 1 <= len(reply.get("id") or "") <= _BUTTON_ID_MAX:
                return f"Button id length invalid. Min length: 1, Max length: {_BUTTON_ID_MAX}"
    elif interactive.get("type") == "list":
        if not 1 <= len(action.get("button") or "") <= _LIST_BUTTON_MAX:
            return f"Button text length invalid. Min length: 1, Max length: {_LIST_BUTTON_MAX}"
        rows = [row for section in action.get("sections") or [] for row in section.get("rows") or []]
        if not 1 <= len(rows) <= _ROWS_MAX:
            return f"Total row count invalid. Min: 1, Max: {_ROWS_MAX}"
        for row in rows:
            if not 1 <= len(row.get("title") or "") <= _ROW_TITLE_MAX:
                return f"Row title length invalid. Min length: 1, Max length: {_ROW_TITLE_MAX}"
            if len(row.get("description") or "") > _ROW_DESCRIPTION_MAX:
                return f"Row description length invalid. Max length: {_ROW_DESCRIPTION_MAX}"
            if not 1 <= len(row.get("id") or "") <= _ROW_ID_MAX:
                return f"Row id length invalid. Min length: 1, Max length: {_ROW_ID_MAX}"
    return None
