"""Meta Graph API client for one business phone number: send messages, read receipts, media download, retries.

Sources (Meta):

- Sending messages: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
- Read receipts and typing indicators:
  https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read
- Media download: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media
- Error codes and which ones are rate limits: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes

The access token is never logged and never appears in ``repr``. Kept as one module just past 500 lines: most of it
is the documented contract of each call, and the retry policy and error mapping are shared by every call; parsing
and webhooks already live in ``parse.py`` and ``webhook.py``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from server.channels.errors import ChannelSendError
from server.channels.limits import split_text, validate_buttons, validate_list
from server.channels.meta.parse import as_str

__all__ = ["CALLBACK_DATA_MAX", "MEDIA_MAX_BYTES", "RATE_LIMIT_CODES", "GraphAPIClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Meta error codes that mean "slow down", retried with backoff whatever the HTTP status (Meta sends some
#: of them with HTTP 400): 4 app call limit, 80007 WABA rate limit, 130429 throughput (80 msg/s), 131048 spam
#: rate limit, 131056 pair rate limit (same user too often), 133016 registration rate limit.
#: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056, 133016})

#: WhatsApp's largest media file (documents), in bytes; bigger downloads are refused.
MEDIA_MAX_BYTES = 100 * 1024 * 1024

# Transport errors raised before any byte of the request left this machine: retrying them can never
# duplicate a message.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


class GraphAPIClient:
    """Sends through the WhatsApp Cloud API (Graph API) as one business phone number, with retries.

    Args:
        access_token: the Graph API bearer token (``META_ACCESS_TOKEN``).
        phone_number_id: the business phone number id messages are sent from (``META_PHONE_NUMBER_ID``).
        graph_url: Graph API base URL including the version, e.g. ``https://graph.facebook.com/v23.0``
            (``META_GRAPH_URL``); tests point it at ``sandboxes.whatsapp.meta_graph_api.GraphAPIStandIn``.
        http_client: an ``httpx.AsyncClient`` to share; when omitted the client makes one and
            :meth:`aclose` closes it (a shared client is left open).
        max_attempts: attempts per API call, including the first (retries on 429, 5xx, network errors and
            :data:`RATE_LIMIT_CODES`).
        backoff_initial: first backoff wait, in seconds; it doubles on each retry, plus up to as much jitter.
        backoff_max: longest single wait, in seconds.
        max_retry_seconds: no new attempt starts after this many seconds from the first one.
        max_media_bytes: largest media download accepted, in bytes.

    Raises:
        ValueError: ``access_token`` or ``phone_number_id`` is empty.
    """

    def __init__(
        self,
        *,
        access_token: str,
        phone_number_id: str,
        graph_url: str,
        http_client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 3.0,
        max_retry_seconds: float = 15.0,
        max_media_bytes: int = MEDIA_MAX_BYTES,
    ) -> None:
        for label, value in (("access_token", access_token), ("phone_number_id", phone_number_id)):
            if not value:
                raise ValueError(f"{label} must not be empty")
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

    def __repr__(self) -> str:
        # Deliberately without the access token.
        return f"GraphAPIClient(phone_number_id={self.phone_number_id!r}, graph_url={self.graph_url!r})"

    # ----------------------------------------------------------------------------------------------
    # Sending
    # ----------------------------------------------------------------------------------------------

    async def send_text(self, to: str, text: str, *, callback_data: str | None = None) -> list[str]:
        """Send a text message, split at paragraph boundaries into parts of at most 4,096 characters.

        One request per part, in order, with ``preview_url`` false
        (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#text-object).

        Args:
            to: recipient wa_id.
            text: the message text.
            callback_data: our tag for the message (the outbox's idempotency key), sent as
                ``biz_opaque_callback_data`` and echoed in its status webhooks; when the text needs several
                parts, part ``i`` carries ``<callback_data>:<i>`` (the outbox's own key of that part).

        Returns:
            the wamids of the parts, in order.

        Raises:
            ValueError: the text is empty or blank, or ``callback_data`` is longer than 512 characters.
            ChannelSendError: a part failed; ``sent_message_ids`` lists the parts already sent.
        """
        parts = split_text(text)
        if not parts:
            raise ValueError("cannot send an empty text")
        sent: list[str] = []
        for i, part in enumerate(parts):
            payload: dict[str, Any] = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": part},
            }
            if callback_data:
                _tag(payload, callback_data if len(parts) == 1 else f"{callback_data}:{i}")
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
        *,
        callback_data: str | None = None,
    ) -> str:
        """Send an interactive reply-buttons message.

        https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#interactive-object

        Args:
            to: recipient wa_id.
            body: body text, at most 1,024 characters.
            buttons: 1 to 3 ``(id, title)`` pairs; titles over 20 characters are shortened with ``…``.
            header: optional text header (at most 60 characters, else shortened).
            footer: optional footer (at most 60 characters, else shortened).
            callback_data: our tag, sent as ``biz_opaque_callback_data`` (see :meth:`send_text`).

        Returns:
            the wamid.

        Raises:
            ValueError: the message breaks a limit that cannot be fixed by shortening (see
                :func:`server.channels.limits.validate_buttons`).
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
        return await self._send_message(_tag(_interactive(to, interactive), callback_data))

    async def send_list(
        self,
        to: str,
        body: str,
        button_text: str,
        rows: Sequence[tuple[str, str, str | None]],
        section_title: str,
        header: str | None = None,
        footer: str | None = None,
        *,
        callback_data: str | None = None,
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
            callback_data: our tag, sent as ``biz_opaque_callback_data`` (see :meth:`send_text`).

        Returns:
            the wamid.

        Raises:
            ValueError: see :func:`server.channels.limits.validate_list`.
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
        return await self._send_message(_tag(_interactive(to, interactive), callback_data))

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
        mime = as_str(meta.get("mime_type")) or content_type or "application/octet-stream"
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


#: Longest ``biz_opaque_callback_data`` Meta accepts, in characters
#: (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages).
CALLBACK_DATA_MAX = 512


def _tag(payload: dict[str, Any], callback_data: str | None) -> dict[str, Any]:
    """Add ``biz_opaque_callback_data`` (echoed by Meta in the message's status webhooks) to a send payload.

    Raises:
        ValueError: longer than :data:`CALLBACK_DATA_MAX` characters.
    """
    if callback_data:
        if len(callback_data) > CALLBACK_DATA_MAX:
            raise ValueError(f"callback_data is {len(callback_data)} characters; Meta accepts {CALLBACK_DATA_MAX}")
        payload["biz_opaque_callback_data"] = callback_data
    return payload


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
        message = as_str(error.get("message")) or message
        if isinstance(error.get("error_data"), dict):
            details = as_str(error["error_data"].get("details"))
    retryable = status == 429 or status >= 500 or code in RATE_LIMIT_CODES
    text = f"{what}: HTTP {status}, code {code}: {message}"
    if details:
        text += f" ({details})"
    raise ChannelSendError(text, retryable=retryable, code=code, http_status=status)
