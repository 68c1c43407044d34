"""Webhooks of every registered channel: the POSTs as a plain ASGI layer in front of FastAPI, the GET handshakes.

Meta may deliver up to 80 messages per second per number and expects an answer within a few hundred
milliseconds, so the hot path (verify, store durably, schedule the turn, answer) skips FastAPI's per-route
machinery (request object, dependency solving, response classes), which costs about as much CPU as all of our own
work. :class:`WebhookApp` puts it outside FastAPI's middleware stack, under the app's
lifespan (``scope["app"].state``); every other method and path falls through to the FastAPI app. An unexpected
error becomes the server's 500. The route is documented in the OpenAPI schema by :func:`openapi_paths`.
A channel with a GET subscription handshake (``Channel.subscription_params``, e.g. Meta's ``hub.challenge``) gets
an ordinary FastAPI GET route on the same path (:func:`add_subscription_route`). Both are unauthenticated by
design: the provider proves itself by its signature (POST) or verify token (GET).

Contract, the same for every channel (Meta's: https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications):
401 missing signature, 403 wrong signature (nothing stored), 404 channel not configured, 408 (connection closed)
when the body does not arrive within ``BODY_READ_TIMEOUT_SECONDS`` (a client announcing more bytes than it
sends), 413 body above ``WEBHOOK_MAX_BYTES``, 400 a body the channel cannot parse, 503 + ``Retry-After`` only when
the database is unavailable (the provider retries), 200 with the channel's
:meth:`~server.channels.protocol.Channel.webhook_answer` only after the inbound rows are committed.

Poison isolation: each parsed message is normalised or refused before it is batched
(:mod:`server.ingest.validate`), and a row the database still refuses fails only itself
(:class:`server.ingest.IngestBatcher`); refused messages are written to ``dead_letters`` with the raw body
(:mod:`server.ingest.deadletters`) and the request is answered 200, so the provider does not redeliver them for
days. ``procure deadletters replay`` stores them once the code can.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from psycopg_pool import PoolTimeout as PgPoolTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from server.channels.errors import PayloadError, SignatureError
from server.channels.protocol import Channel
from server.channels.records import InboundMessage
from server.channels.registry import match_path
from server.deps import get_services
from server.ingest import deadletters
from server.ingest.batcher import is_data_error
from server.ingest.validate import MessageRefused, normalise_message, normalise_statuses
from server.worker.outbox import apply_statuses

log = logging.getLogger(__name__)

#: errors that mean "storage unavailable": answer 503 so the provider redelivers later.
STORAGE_ERRORS = (OperationalError, DBAPIError, PoolTimeout, psycopg.Error, PgPoolTimeout, OSError)
_JSON = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    """The request body exceeded the configured limit (``WEBHOOK_MAX_BYTES``)."""


class BodyTimeout(Exception):
    """The request body did not arrive in time (``BODY_READ_TIMEOUT_SECONDS``)."""


async def read_body(scope: Scope, receive: Receive, limit: int, timeout: float | None = None) -> bytes:
    """The raw request body, refusing more than ``limit`` bytes without buffering it all.

    Args:
        scope: the ASGI HTTP scope (for ``content-length``).
        receive: the ASGI receive callable.
        limit: the largest accepted body, in bytes.
        timeout: seconds the whole body may take to arrive; ``None`` waits as long as the client takes.

    Raises:
        BodyTooLarge: the declared or the actual size is above ``limit``.
        BodyTimeout: the body was not complete after ``timeout`` seconds (e.g. a ``Content-Length`` larger than
            what the client sends).
        ConnectionError: the client disconnected before the body was complete.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise BodyTooLarge
            break
    try:
        async with asyncio.timeout(timeout):
            return await _read_chunks(receive, limit)
    except TimeoutError:
        raise BodyTimeout from None


async def _read_chunks(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the client went away
            raise ConnectionError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: the whole body in one message, no copy
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


async def _answer(
    send: Send, status: int, payload: dict[str, Any], extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = orjson.dumps(payload)
    headers = [*_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WebhookIngest:
    """ASGI middleware answering ``POST <path>`` for one channel; everything else goes to ``app``.

    Args:
        app: the inner ASGI app (FastAPI's middleware stack and routes).
        path: the channel's webhook path (``Channel.webhook_path``); a last ``{segment}`` matches any one segment.
        channel: the channel's name, its key in ``Services.channels``.
        max_bytes: the largest accepted body, in bytes (``WEBHOOK_MAX_BYTES``).

    The app's ``state.services`` (a :class:`server.services.Services`) supplies the channel and the ingest
    batcher; it is set by the lifespan before the first request.
    """

    def __init__(self, app: ASGIApp, *, path: str, channel: str, max_bytes: int) -> None:
        self.app, self.path, self.channel, self.max_bytes = app, path, channel, max_bytes
        self._exact = not path.endswith("}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a webhook POST (statuses as in the module docstring) or pass the request on."""
        if scope["type"] != "http" or scope["method"] != "POST" or not self._matches(scope["path"]):
            await self.app(scope, receive, send)
            return
        services = scope["app"].state.services
        channel = services.channels.get(self.channel)
        if channel is None:  # registered but not configured in this deployment
            await _answer(send, 404, {"error": "channel not configured"})
            return
        try:
            body = await read_body(scope, receive, self.max_bytes, services.settings.BODY_READ_TIMEOUT_SECONDS)
        except BodyTooLarge:
            await _answer(send, 413, {"error": "body too large"})
            return
        except BodyTimeout:
            log.warning("%s webhook body not complete in time; closing", self.channel)
            await _answer(send, 408, {"error": "request body timeout"}, ((b"connection", b"close"),))
            return
        except ConnectionError:
            return  # nobody to answer; nothing was stored
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            # Meta signs the body only; a channel that needs the URL (Twilio signs it) gets it built here.
            url = _url(scope) if channel.signs_url else ""
            channel.verify_request(headers, body, url)
        except SignatureError as exc:
            status = 401 if "missing" in str(exc).lower() else 403
            log.warning("%s webhook rejected: %s", self.channel, exc)
            await _answer(send, status, {"error": "invalid signature"})
            return
        try:
            messages, statuses = channel.parse(body, headers.get("content-type", "application/json"))
        except PayloadError as exc:
            log.warning("%s webhook payload refused: %s", self.channel, exc)
            await _answer(send, 400, {"error": "malformed payload"})
            return
        good, refused = _checked(messages, services.settings.MAX_TEXT_CHARS)
        try:
            result = await services.ingest.store_checked(good)
            refused += result.refused
            if statuses:
                await _apply_statuses(services, normalise_statuses(statuses), refused)
            await deadletters.record(services.pg, self.channel, body, refused)
        except STORAGE_ERRORS as exc:
            log.error("database unavailable, asking %s to retry: %s", self.channel, type(exc).__name__)
            await _answer(send, 503, {"error": "temporarily unavailable"}, ((b"retry-after", b"30"),))
            return
        new = result.new
        body, content_type = channel.webhook_answer(len(new), len(good) - len(new) - len(result.refused))
        answer = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": answer})
        await send({"type": "http.response.body", "body": body})

    def _matches(self, path: str) -> bool:
        return path == self.path if self._exact else match_path(self.path, path)


def _checked(
    messages: list[InboundMessage], max_text_chars: int
) -> tuple[list[InboundMessage], list[tuple[InboundMessage | None, str]]]:
    """``(normalised messages, refused (message, reason) pairs)`` (see :mod:`server.ingest.validate`)."""
    now = datetime.now(UTC)
    good: list[InboundMessage] = []
    refused: list[tuple[InboundMessage | None, str]] = []
    for m in messages:
        try:
            good.append(normalise_message(m, max_text_chars, now))
        except MessageRefused as exc:
            refused.append((m, str(exc)))
    return good, refused


async def _apply_statuses(services: Any, statuses: list[Any], refused: list[tuple[InboundMessage | None, str]]) -> None:
    """Apply delivery statuses; ones the database refuses for their data become a dead letter, not a 503."""
    try:
        await apply_statuses(services.engine, statuses)
    except DBAPIError as exc:
        if exc.connection_invalidated or exc.orig is None or not is_data_error(exc.orig):
            raise
        refused.append((None, f"statuses refused by the database: {type(exc.orig).__name__}"))


def _url(scope: Scope) -> str:
    """The request URL as the client addressed it (scheme, Host header, path, query)."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{query}" if query else "")


def openapi_paths(path: str, provider: str) -> dict[str, Any]:
    """OpenAPI path item for a webhook POST served by :class:`WebhookIngest` (merged into the app's schema)."""

    def answer(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}

    return {
        path: {
            "post": {
                "tags": ["webhooks"],
                "summary": f"{provider} webhook",
                "description": "Receive messages and statuses: verify the signature over the raw body, store "
                "durably (exactly once per message id), schedule the chat's turn, then answer 200.",
                "operationId": f"{provider.lower()}_webhook",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": answer("Stored: `{status, stored, duplicates}`"),
                    "400": answer("Not a webhook JSON body"),
                    "401": answer("Signature header missing"),
                    "403": answer("Signature does not match"),
                    "404": answer("Channel not configured in this deployment"),
                    "408": answer("Body not complete within BODY_READ_TIMEOUT_SECONDS (connection closed)"),
                    "413": answer("Body above WEBHOOK_MAX_BYTES"),
                    "503": answer("Database unavailable; retry later (Retry-After)"),
                },
            }
        }
    }


class WebhookApp(FastAPI):
    """A FastAPI app whose webhook POSTs are answered by :class:`WebhookIngest` layers in front of everything.

    Args:
        ingest_webhooks: ``(path, channel name, provider title)`` per channel, from the channel registry.
        max_bytes: the largest accepted webhook body, in bytes.
        *args, **kwargs: for :class:`fastapi.FastAPI`.
    """

    def __init__(self, *args: Any, ingest_webhooks: list[tuple[str, str, str]], max_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ingest_webhooks, self.webhook_max_bytes = ingest_webhooks, max_bytes

    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack, wrapped by one :class:`WebhookIngest` per webhook."""
        app = super().build_middleware_stack()
        for path, channel, _ in self.ingest_webhooks:
            app = WebhookIngest(app, path=path, channel=channel, max_bytes=self.webhook_max_bytes)
        return app

    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema plus the webhook POSTs."""
        if self.openapi_schema is None:
            schema = super().openapi()
            for path, _, provider in self.ingest_webhooks:
                for p, item in openapi_paths(path, provider).items():
                    schema["paths"].setdefault(p, {}).update(item)
            self.openapi_schema = schema
        return self.openapi_schema


def add_subscription_route(app: FastAPI, name: str, cls: type[Channel]) -> None:
    """``GET <webhook path>``: the channel's subscription handshake (200 with its answer, else 403 or 404).

    Args:
        app: the web app.
        name: the channel's name, its key in ``Services.channels``.
        cls: the channel's class (path, title and the query parameters of its handshake).
    """

    async def verify(request: Request) -> PlainTextResponse:
        channel = get_services(request).channels.get(name)
        if channel is None:
            return PlainTextResponse("channel not configured", status_code=404)
        answer = channel.answer_subscription(request.query_params)
        if answer is None:
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(answer)

    params = [
        {"name": p, "in": "query", "required": False, "schema": {"type": "string"}} for p in cls.subscription_params
    ]
    app.add_api_route(
        cls.webhook_path,
        verify,
        methods=["GET"],
        tags=["webhooks"],
        response_class=PlainTextResponse,
        name=f"{name}_subscription",
        summary=f"{cls.title} webhook subscription handshake",
        description="Answer the provider's subscription check: 200 with its challenge when the token matches, else 403.",
        openapi_extra={"parameters": params},
    )
