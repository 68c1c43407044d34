"""Meta WhatsApp Cloud API channel: webhook verification and parsing, and sending through the Graph API.

Why this module parses webhooks itself instead of through pywa
--------------------------------------------------------------
pywa 4.5.0 (installed) can parse raw webhook bytes without its server, but its user and status
constructors index ``contacts[].user_id`` and the status ``contacts`` array directly, so payloads of the
older, still common shape (no business-scoped user id; statuses without ``contacts``) raise ``KeyError`` (see
STACK-NOTES). Wrapping it would mean catching ``KeyError`` per update and losing those messages, or patching
payloads before handing them over. The part of the payload this program needs is small and documented, so
this module reads it directly with ``dict.get`` everywhere, in pywa's style: frozen slotted dataclasses, raw
payload kept, enums for types, tests driven by pywa's own example payloads (``tests/data/updates``).

Sources (Meta):

- Webhook payloads: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples
- Webhook verification and signatures: https://developers.facebook.com/docs/graph-api/webhooks/getting-started
- Sending messages: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
- Read receipts and typing indicators:
  https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read
- Media download: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media
- Error codes and which ones are rate limits: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes

Secrets (app secret, access token) are never logged and never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from server.channels.base import (
    Channel,
    ChannelSendError,
    DeliveryStatus,
    InboundMessage,
    MessageKind,
    PayloadError,
    SignatureError,
    StatusError,
    StatusUpdate,
    split_text,
    validate_buttons,
    validate_list,
)

if TYPE_CHECKING:
    from core.config import Settings

__all__ = ["RATE_LIMIT_CODES", "MetaCloudChannel"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Meta error codes that mean "slow down", retried with backoff whatever the HTTP status (Meta sends some
#: of them with HTTP 400): 4 app call limit, 80007 WABA rate limit, 130429 throughput (80 msg/s), 131048 spam
#: rate limit, 131056 pair rate limit (same user too often), 133016 registration rate limit.
#: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056, 133016})

_SIGNATURE_HEADER = "x-hub-signature-256"
_SIGNATURE_PREFIX = "sha256="
_OBJECT = "whatsapp_business_account"
#: WhatsApp's largest media file (documents), in bytes; bigger downloads are refused.
_MEDIA_MAX_BYTES = 100 * 1024 * 1024

# Transport errors raised before any byte of the request left this machine: retrying them can never
# duplicate a message.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

_MEDIA_KINDS: dict[str, MessageKind] = {
    "image": MessageKind.IMAGE,
    "video": MessageKind.VIDEO,
    "document": MessageKind.DOCUMENT,
    "sticker": MessageKind.STICKER,
    "audio": MessageKind.AUDIO,
}


class MetaCloudChannel(Channel):
    """The Meta WhatsApp Cloud API channel for one business phone number.

    Args:
        app_secret: the Meta app secret, the HMAC key of webhook signatures (``META_APP_SECRET``).
        verify_token: the token Meta echoes in the subscription GET (``META_VERIFY_TOKEN``).
        access_token: the Graph API bearer token (``META_ACCESS_TOKEN``).
        phone_number_id: the business phone number id messages are sent from (``META_PHONE_NUMBER_ID``).
        graph_url: Graph API base URL including the version, e.g. ``https://graph.facebook.com/v23.0``
            (``META_GRAPH_URL``); tests point it at ``tests.standins.graph_api.GraphAPIStandIn``.
        http_client: an ``httpx.AsyncClient`` to share; when omitted the channel makes one and
            :meth:`aclose` closes it (a shared client is left open).
        max_attempts: attempts per API call, including the first (retries on 429, 5xx, network errors and
            :data:`RATE_LIMIT_CODES`).
        backoff_initial: first backoff wait, in seconds; it doubles on each retry, plus up to as much jitter.
        backoff_max: longest single wait, in seconds.
        max_retry_seconds: no new attempt starts after this many seconds from the first one.
        max_media_bytes: largest media download accepted, in bytes.

    Raises:
        ValueError: ``app_secret``, ``access_token`` or ``phone_number_id`` is empty.
    """

    name = "meta"
    signs_url = False  # Meta signs the body only

    def __init__(
        self,
        *,
        app_secret: str,
        verify_token: str,
        access_token: str,
        phone_number_id: str,
        graph_url: str,
        http_client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 3.0,
        max_retry_seconds: float = 15.0,
        max_media_bytes: int = _MEDIA_MAX_BYTES,
    ) -> None:
        for label, value in (
            ("app_secret", app_secret),
            ("access_token", access_token),
            ("phone_number_id", phone_number_id),
        ):
            if not value:
                raise ValueError(f"{label} must not be empty")
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token.encode()
        self._access_token = access_token
        self.phone_number_id = phone_number_id
        self.graph_url = graph_url.rstrip("/")
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
        self._max_attempts = max_attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_retry_seconds = max_retry_seconds
        self._max_media_bytes = max_media_bytes

    @classmethod
    def from_settings(cls, settings: Settings, http_client: httpx.AsyncClient | None = None) -> MetaCloudChannel:
        """Build the channel from the process settings (``META_*``)."""
        return cls(
            app_secret=settings.META_APP_SECRET.get_secret_value(),
            verify_token=settings.META_VERIFY_TOKEN.get_secret_value(),
            access_token=settings.META_ACCESS_TOKEN.get_secret_value(),
            phone_number_id=settings.META_PHONE_NUMBER_ID,
            graph_url=settings.META_GRAPH_URL,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        # Deliberately without secrets.
        return f"MetaCloudChannel(phone_number_id={self.phone_number_id!r}, graph_url={self.graph_url!r})"

    # ----------------------------------------------------------------------------------------------
    # Webhook authentication
    # ----------------------------------------------------------------------------------------------

    def verify_subscription(self, mode: str | None, token: str | None, challenge: str | None) -> str | None:
        """Answer Meta's subscription check (the webhook GET, which carries no signature).

        https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests

        Args:
            mode: the ``hub.mode`` query parameter; must be ``"subscribe"``.
            token: the ``hub.verify_token`` query parameter, compared in constant time with the configured
                token.
            challenge: the ``hub.challenge`` query parameter.

        Returns:
            the challenge to answer with (HTTP 200, ``text/plain``), or ``None`` to answer 403.
        """
        if mode != "subscribe" or token is None or challenge is None or not self._verify_token:
            return None
        if not hmac.compare_digest(token.encode(), self._verify_token):
            return None
        return challenge

    def verify_request(self, headers: Mapping[str, str], body: bytes, url: str = "") -> None:
        """Check the ``X-Hub-Signature-256`` header of a webhook POST.

        The header is ``sha256=<hex>``, the HMAC-SHA256 of the raw body bytes keyed with the app secret
        (https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads);
        compared in constant time.

        Args:
            headers: request headers (looked up case-insensitively).
            body: the raw body exactly as received.
            url: unused (Meta does not sign the URL); part of the :class:`Channel` interface.

        Raises:
            SignatureError: header missing, without the ``sha256=`` prefix, not 64 hex digits, or not
                matching.
        """
        value = _header(headers, _SIGNATURE_HEADER)
        if value is None:
            raise SignatureError("missing X-Hub-Signature-256 header")
        value = value.strip()
        if not value.lower().startswith(_SIGNATURE_PREFIX):
            raise SignatureError("X-Hub-Signature-256 must start with 'sha256='")
        hex_digest = value[len(_SIGNATURE_PREFIX) :]
        try:
            given = bytes.fromhex(hex_digest)
        except ValueError:
            raise SignatureError("X-Hub-Signature-256 is not hexadecimal") from None
        expected = hmac.new(self._app_secret, body, hashlib.sha256).digest()
        if len(given) != len(expected) or not hmac.compare_digest(given, expected):
            raise SignatureError("X-Hub-Signature-256 does not match the body")

    # ----------------------------------------------------------------------------------------------
    # Webhook parsing
    # ----------------------------------------------------------------------------------------------

    def parse(
        self, body: bytes, content_type: str = "application/json"
    ) -> tuple[list[InboundMessage], list[StatusUpdate]]:
        """Read every entry, change, message and status of a webhook body.

        Only changes with ``field == "messages"`` are read; other fields (``account_update``, template
        updates, ``calls``, ``smb_message_echoes``, ``user_preferences``, ...) are ignored. Both payload
        shapes are accepted: with and without ``contacts[].user_id``, statuses with and without a
        ``contacts`` array. A message without ``from`` or ``id`` is skipped with a warning; an unknown message
        type becomes :attr:`MessageKind.OTHER`.
        Shapes: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples

        Args:
            body: the raw request body.
            content_type: the request's ``Content-Type``; not checked, the body is parsed as JSON anyway.

        Returns:
            ``(messages, statuses)`` in payload order.

        Raises:
            PayloadError: not UTF-8 JSON, not an object, ``object`` is not ``whatsapp_business_account``, or
                ``entry``/``changes``/``messages``/``statuses`` have the wrong JSON type.
        """
        try:
            payload = orjson.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"webhook body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise PayloadError("webhook body is not a JSON object")
        if payload.get("object") != _OBJECT:
            raise PayloadError(f"unexpected webhook object {payload.get('object')!r}; expected {_OBJECT!r}")
        messages: list[InboundMessage] = []
        statuses: list[StatusUpdate] = []
        for entry in _list(payload.get("entry"), "entry"):
            if not isinstance(entry, dict):
                raise PayloadError("entry item is not an object")
            for change in _list(entry.get("changes"), "entry.changes"):
                if not isinstance(change, dict):
                    raise PayloadError("change item is not an object")
                if change.get("field") != "messages":
                    logger.debug("meta webhook: ignoring change field %r", change.get("field"))
                    continue
                value = change.get("value")
                if not isinstance(value, dict):
                    raise PayloadError("change.value is not an object")
                self._parse_value(value, messages, statuses)
        return messages, statuses

    def _parse_value(self, value: dict[str, Any], messages: list[InboundMessage], statuses: list[StatusUpdate]) -> None:
        metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
        business_id = _str(metadata.get("phone_number_id")) if metadata else None
        by_wa_id: dict[str, dict[str, Any]] = {}
        by_user_id: dict[str, dict[str, Any]] = {}
        for contact in _list(value.get("contacts"), "contacts"):
            if isinstance(contact, dict):
                if wa_id := _str(contact.get("wa_id")):
                    by_wa_id[wa_id] = contact
                if user_id := _str(contact.get("user_id")):
                    by_user_id[user_id] = contact
        for raw in _list(value.get("messages"), "messages"):
            if not isinstance(raw, dict):
                logger.warning("meta webhook: skipping a message that is not an object")
                continue
            message = _parse_message(raw, business_id, by_wa_id, by_user_id)
            if message is not None:
                messages.append(message)
        for raw in _list(value.get("statuses"), "statuses"):
            if not isinstance(raw, dict):
                logger.warning("meta webhook: skipping a status that is not an object")
                continue
            status = _parse_status(raw, business_id)
            if status is not None:
                statuses.append(status)

    # ----------------------------------------------------------------------------------------------
    # Sending
    # ----------------------------------------------------------------------------------------------

    async def send_text(self, to: str, text: str) -> list[str]:
        """Send a text message, split at paragraph boundaries into parts of at most 4,096 characters.

        One request per part, in order, with ``preview_url`` false
        (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#text-object).

        Args:
            to: recipient wa_id.
            text: the message text.

        Returns:
            the wamids of the parts, in order.

        Raises:
            ValueError: the text is empty or blank.
            ChannelSendError: a part failed; ``sent_message_ids`` lists the parts already sent.
        """
        parts = split_text(text)
        if not parts:
            raise ValueError("cannot send an empty text")
        sent: list[str] = []
        for part in parts:
            payload = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": part},
            }
            try:
                sent.append(await self._send_message(payload))
            except ChannelSendError as exc:
                exc.sent_message_ids = tuple(sent)
                raise
        return sent

    async def send_buttons(
        self,
        to: str,
        body: str,
        buttons: Sequence[tuple[str, str]],
        header: str | None = None,
        footer: str | None = None,
    ) -> str:
        """Send an interactive reply-buttons message.

        https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#interactive-object

        Args:
            to: recipient wa_id.
            body: body text, at most 1,024 characters.
            buttons: 1 to 3 ``(id, title)`` pairs; titles over 20 characters are shortened with ``…``.
            header: optional text header (at most 60 characters, else shortened).
            footer: optional footer (at most 60 characters, else shortened).

        Returns:
            the wamid.

        Raises:
            ValueError: the message breaks a limit that cannot be fixed by shortening (see
                :func:`server.channels.base.validate_buttons`).
            ChannelSendError: the API call failed.
        """
        checked = validate_buttons(body, buttons, header, footer)
        interactive: dict[str, Any] = {
            "type": "button",
            "body": {"text": checked.body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": button_id, "title": title}}
                    for button_id, title in checked.buttons
                ]
            },
        }
        _add_header_footer(interactive, checked.header, checked.footer)
        return await self._send_message(_interactive(to, interactive))

    async def send_list(
        self,
        to: str,
        body: str,
        button_text: str,
        rows: Sequence[tuple[str, str, str | None]],
        section_title: str,
        header: str | None = None,
        footer: str | None = None,
    ) -> str:
        """Send an interactive list message with one section.

        https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#interactive-object

        Args:
            to: recipient wa_id.
            body: body text, at most 1,024 characters.
            button_text: label of the button that opens the list (at most 20 characters, else shortened).
            rows: 1 to 10 ``(id, title, description)``; title at most 24, description at most 72 characters
                (else shortened), description may be ``None``.
            section_title: the section's title (at most 24 characters, else shortened); omitted when blank.
            header: optional text header.
            footer: optional footer.

        Returns:
            the wamid.

        Raises:
            ValueError: see :func:`server.channels.base.validate_list`.
            ChannelSendError: the API call failed.
        """
        checked = validate_list(body, button_text, rows, section_title, header, footer)
        section: dict[str, Any] = {"rows": []}
        if checked.section_title:
            section["title"] = checked.section_title
        for row_id, title, description in checked.rows:
            row = {"id": row_id, "title": title}
            if description:
                row["description"] = description
            section["rows"].append(row)
        interactive: dict[str, Any] = {
            "type": "list",
            "body": {"text": checked.body},
            "action": {"button": checked.button_text, "sections": [section]},
        }
        _add_header_footer(interactive, checked.header, checked.footer)
        return await self._send_message(_interactive(to, interactive))

    async def mark_read(self, message_id: str, typing: bool = True) -> None:
        """Mark an inbound message (and the ones before it) as read, optionally showing a typing indicator.

        The indicator clears when we reply or after 25 seconds
        (https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read).
        The call is idempotent, so every failure that may pass is retried.

        Args:
            message_id: the wamid of the inbound message.
            typing: also show "typing…" to the sender.

        Raises:
            ChannelSendError: the API call failed.
        """
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        await self._json_call("POST", self._messages_url, payload, idempotent=True, what="mark_read")

    async def download_media(self, media_id: str) -> tuple[bytes, str]:
        """Download inbound media: look up its URL, then fetch it, both with the bearer token.

        The URL expires five minutes after the lookup, so the two calls run back to back
        (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#download-media).

        Args:
            media_id: :attr:`InboundMessage.media_id`.

        Returns:
            ``(content, mime_type)``; the MIME type from the media metadata, else the download's Content-Type.

        Raises:
            ChannelSendError: a call failed, the metadata has no URL, or the file is larger than
                ``max_media_bytes``.
        """
        meta = await self._json_call(
            "GET",
            f"{self.graph_url}/{media_id}",
            None,
            idempotent=True,
            what="media lookup",
            params={"phone_number_id": self.phone_number_id},
        )
        url = meta.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ChannelSendError("media lookup returned no URL", retryable=False)
        size = meta.get("file_size")
        if isinstance(size, int) and size > self._max_media_bytes:
            raise ChannelSendError(f"media is {size} bytes; the limit is {self._max_media_bytes}", retryable=False)
        content, content_type = await self._with_retries("media download", lambda: self._fetch_bytes(url))
        mime = _str(meta.get("mime_type")) or content_type or "application/octet-stream"
        return content, mime

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()

    # ----------------------------------------------------------------------------------------------
    # HTTP plumbing
    # ----------------------------------------------------------------------------------------------

    @property
    def _messages_url(self) -> str:
        return f"{self.graph_url}/{self.phone_number_id}/messages"

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access_token}"}

    async def _send_message(self, payload: dict[str, Any]) -> str:
        # Message sends are not idempotent (Meta has no idempotency key): a transport error after the request
        # left may mean the message went out, so only connect-phase errors are retried here.
        data = await self._json_call("POST", self._messages_url, payload, idempotent=False, what="send")
        try:
            wamid = data["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            wamid = None
        if not isinstance(wamid, str) or not wamid:
            raise ChannelSendError("send answered without messages[0].id", retryable=False, delivery_unknown=True)
        return wamid

    async def _json_call(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None,
        *,
        idempotent: bool,
        what: str,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            try:
                response = await self._client.request(method, url, json=payload, params=params, headers=self._auth)
            except httpx.TransportError as exc:
                raise _transport_error(exc, what, idempotent) from exc
            _raise_for_meta_error(response, what)
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise ChannelSendError(
                    f"{what}: HTTP {response.status_code} answered without a JSON object",
                    retryable=False,
                    http_status=response.status_code,
                    delivery_unknown=not idempotent,
                )
            return data

        return await self._with_retries(what, attempt)

    async def _fetch_bytes(self, url: str) -> tuple[bytes, str | None]:
        try:
            async with self._client.stream("GET", url, headers=self._auth) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_meta_error(response, "media download")
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > self._max_media_bytes:
                        raise ChannelSendError(f"media download exceeds {self._max_media_bytes} bytes", retryable=False)
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type")
        except httpx.TransportError as exc:
            raise _transport_error(exc, "media download", idempotent=True) from exc

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter: ``initial * 2**(n-1) + uniform(0, initial)``, capped at ``max``.

        Written out rather than tenacity's ``wait_exponential_jitter`` because its parameter names changed
        between tenacity 8 and 9 (``initial`` is deprecated in 9.2).
        """
        delay = self._backoff_initial * 2 ** (state.attempt_number - 1)
        return min(self._backoff_max, delay + random.uniform(0, self._backoff_initial))

    async def _with_retries(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, raises a non-retryable error, or the retry budget is spent.

        ``attempt`` raises :class:`ChannelSendError`; it is retried when ``retryable`` and not
        ``delivery_unknown`` (a send that may have gone out is never repeated here).
        """

        def should_retry(exc: BaseException) -> bool:
            return isinstance(exc, ChannelSendError) and exc.retryable and not exc.delivery_unknown

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "meta %s: attempt %d failed (%s); retrying in %.2fs",
                what,
                state.attempt_number,
                repr(exc),
                state.next_action.sleep if state.next_action else 0.0,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts) | stop_after_delay(self._max_retry_seconds),
            wait=self._wait,
            retry=retry_if_exception(should_retry),
            before_sleep=log_retry,
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                return await attempt()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# Parsing helpers
# ----------------------------------------------------------------------------------------------


def _parse_message(
    raw: dict[str, Any],
    business_id: str | None,
    by_wa_id: Mapping[str, dict[str, Any]],
    by_user_id: Mapping[str, dict[str, Any]],
) -> InboundMessage | None:
    """One message object -> :class:`InboundMessage`, or ``None`` (logged) when it cannot be attributed."""
    sender = _str(raw.get("from"))
    wamid = _str(raw.get("id"))
    if not sender:
        # Newer payloads can identify a user by business-scoped id only; without a wa_id we cannot answer.
        logger.warning("meta webhook: skipping message %s without 'from'", wamid or "<no id>")
        return None
    if not wamid:
        logger.warning("meta webhook: skipping message without 'id' (cannot deduplicate)")
        return None
    from_user_id = _str(raw.get("from_user_id"))
    contact = by_wa_id.get(sender) or (by_user_id.get(from_user_id) if from_user_id else None) or {}
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    fields: dict[str, Any] = {
        "provider": "meta",
        "provider_message_id": wamid,
        # Cloud API group messages carry group_id; one-to-one chats are keyed by the sender.
        "chat_id": _str(raw.get("group_id")) or sender,
        "sender": sender,
        "sender_name": _str(profile.get("name")) if profile else None,
        "sender_user_id": _str(contact.get("user_id")) or from_user_id,
        "timestamp": _timestamp(raw.get("timestamp"), wamid),
        "context_id": _str(context.get("id")) if context else None,
        "business_phone_number_id": business_id,
        "raw": raw,
    }
    fields.update(_content(raw))
    return InboundMessage(**fields)


def _content(raw: dict[str, Any]) -> dict[str, Any]:
    """The kind-specific fields of a message (``kind``, ``text``, ``reply_id``, media, location)."""
    msg_type = raw.get("type")
    body = raw.get(msg_type) if isinstance(msg_type, str) else None
    obj: dict[str, Any] = body if isinstance(body, dict) else {}
    if msg_type == "text":
        return {"kind": MessageKind.TEXT, "text": _str(obj.get("body"))}
    if msg_type == "button":  # template quick reply
        return {
            "kind": MessageKind.BUTTON,
            "text": _str(obj.get("text")),
            "reply_id": _str(obj.get("payload")),
        }
    if msg_type == "interactive":
        sub_type = obj.get("type")
        reply = obj.get(sub_type) if isinstance(sub_type, str) else None
        if isinstance(reply, dict) and sub_type in ("button_reply", "list_reply"):
            kind = MessageKind.BUTTON if sub_type == "button_reply" else MessageKind.LIST
            return {"kind": kind, "text": _str(reply.get("title")), "reply_id": _str(reply.get("id"))}
        if not obj:
            # Meta could not render the interactive reply; it then puts ``errors`` on the change value.
            return {"kind": MessageKind.UNSUPPORTED}
        return {"kind": MessageKind.OTHER}  # flow replies (nfm_reply), call permission replies, ...
    if isinstance(msg_type, str) and msg_type in _MEDIA_KINDS:
        kind = _MEDIA_KINDS[msg_type]
        if kind is MessageKind.AUDIO and obj.get("voice") is True:
            kind = MessageKind.VOICE
        return {
            "kind": kind,
            "text": _str(obj.get("caption")),
            "media_id": _str(obj.get("id")),
            "mime_type": _str(obj.get("mime_type")),
            "filename": _str(obj.get("filename")),
        }
    if msg_type == "location":
        label = ", ".join(p for p in (_str(obj.get("name")), _str(obj.get("address"))) if p)
        return {
            "kind": MessageKind.LOCATION,
            "text": label or None,
            "latitude": _float(obj.get("latitude")),
            "longitude": _float(obj.get("longitude")),
        }
    if msg_type == "reaction":
        # An empty or absent emoji removes a reaction; the reacted-to message is the context.
        return {
            "kind": MessageKind.REACTION,
            "text": _str(obj.get("emoji")),
            "context_id": _str(obj.get("message_id")),
        }
    if msg_type == "contacts":
        return {"kind": MessageKind.CONTACTS, "text": _contacts_summary(raw.get("contacts"))}
    if msg_type == "order":
        return {"kind": MessageKind.ORDER, "text": _str(obj.get("text"))}
    if msg_type == "unsupported" or (msg_type is None and raw.get("errors")):
        return {"kind": MessageKind.UNSUPPORTED}
    logger.info("meta webhook: message %s has type %r, kept as 'other'", raw.get("id"), msg_type)
    return {"kind": MessageKind.OTHER}


def _contacts_summary(contacts: Any) -> str | None:
    """Shared contacts as ``"Name (+1 555…, +1 666…); Name2 (…)"``, for the model to read."""
    if not isinstance(contacts, list):
        return None
    items: list[str] = []
    for card in contacts:
        if not isinstance(card, dict):
            continue
        name_obj = card.get("name") if isinstance(card.get("name"), dict) else {}
        name = _str(name_obj.get("formatted_name")) if name_obj else None
        phones = [
            phone
            for p in card.get("phones") or ()
            if isinstance(p, dict) and (phone := _str(p.get("phone"))) is not None
        ]
        label = name or "contact"
        items.append(f"{label} ({', '.join(phones)})" if phones else label)
    return "; ".join(items) or None


def _parse_status(raw: dict[str, Any], business_id: str | None) -> StatusUpdate | None:
    wamid = _str(raw.get("id"))
    if not wamid:
        logger.warning("meta webhook: skipping status without 'id'")
        return None
    try:
        status = DeliveryStatus(_str(raw.get("status")) or "")
    except ValueError:
        status = DeliveryStatus.OTHER
    errors = tuple(
        StatusError(
            code=e.get("code") if isinstance(e.get("code"), int) else None,
            title=_str(e.get("title")),
            message=_str(e.get("message")),
            details=_str(e["error_data"].get("details")) if isinstance(e.get("error_data"), dict) else None,
        )
        for e in raw.get("errors") or ()
        if isinstance(e, dict)
    )
    return StatusUpdate(
        provider="meta",
        provider_message_id=wamid,
        status=status,
        recipient=_str(raw.get("recipient_id")),
        timestamp=_timestamp(raw.get("timestamp"), wamid),
        errors=errors,
        business_phone_number_id=business_id,
        raw=raw,
    )


def _list(value: Any, where: str) -> list[Any]:
    """A JSON array field: absent -> ``[]``; present but not an array -> :class:`PayloadError`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where} is not an array")
    return value


def _str(value: Any) -> str | None:
    """A non-empty string, or ``None``; numbers become strings (ids sometimes arrive as numbers)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any, wamid: str) -> datetime:
    """Meta's unix-seconds timestamp (a string) as an aware UTC datetime; now, logged, when unreadable."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        logger.warning("meta webhook: %s has no valid timestamp (%r); using the receive time", wamid, value)
        return datetime.now(UTC)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


# ----------------------------------------------------------------------------------------------
# Sending helpers
# ----------------------------------------------------------------------------------------------


def _interactive(to: str, interactive: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": interactive,
    }


def _add_header_footer(interactive: dict[str, Any], header: str | None, footer: str | None) -> None:
    if header:
        interactive["header"] = {"type": "text", "text": header}
    if footer:
        interactive["footer"] = {"text": footer}


def _transport_error(exc: httpx.TransportError, what: str, idempotent: bool) -> ChannelSendError:
    """A network failure as a :class:`ChannelSendError`; ``delivery_unknown`` if a send may have gone out."""
    not_sent = isinstance(exc, _NOT_SENT_ERRORS)
    return ChannelSendError(
        f"{what}: network error {type(exc).__name__}",
        retryable=True,
        delivery_unknown=not idempotent and not not_sent,
    )


def _raise_for_meta_error(response: httpx.Response, what: str) -> None:
    """Raise :class:`ChannelSendError` for an error response; retryable on 429, 5xx and rate-limit codes.

    Meta's error body is ``{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
    "fbtrace_id"}}`` (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
    """
    status = response.status_code
    if status < 400:
        return
    code: int | None = None
    message = response.reason_phrase
    details: str | None = None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), int) else None
        message = _str(error.get("message")) or message
        if isinstance(error.get("error_data"), dict):
            details = _str(error["error_data"].get("details"))
    retryable = status == 429 or status >= 500 or code in RATE_LIMIT_CODES
    text = f"{what}: HTTP {status}, code {code}: {message}"
    if details:
        text += f" ({details})"
    raise ChannelSendError(text, retryable=retryable, code=code, http_status=status)
