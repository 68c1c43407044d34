"""The Meta WhatsApp Cloud API channel: one class tying webhook authentication, parsing and the Graph API client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import httpx
import orjson

from server.channels.meta.client import MEDIA_MAX_BYTES, GraphAPIClient
from server.channels.meta.parse import parse_webhook
from server.channels.meta.webhook import verify_signature, verify_subscription
from server.channels.protocol import Channel
from server.channels.records import InboundMessage, StatusUpdate

if TYPE_CHECKING:
    from core.config import Settings

__all__ = ["MetaCloudChannel"]

_JSON = "application/json"


class MetaCloudChannel(Channel):
    """The Meta WhatsApp Cloud API channel for one business phone number.

    Webhooks: ``POST /webhooks/meta`` signed with ``X-Hub-Signature-256`` over the body
    (:mod:`server.channels.meta.webhook`), JSON bodies read by :mod:`server.channels.meta.parse`, and a ``GET``
    subscription handshake (``hub.mode``, ``hub.verify_token``, ``hub.challenge``). Sending and media go through
    :class:`~server.channels.meta.client.GraphAPIClient` (:attr:`graph`).

    Args:
        app_secret: the Meta app secret, the HMAC key of webhook signatures (``META_APP_SECRET``).
        verify_token: the token Meta echoes in the subscription GET (``META_VERIFY_TOKEN``).
        access_token: the Graph API bearer token (``META_ACCESS_TOKEN``).
        phone_number_id: the business phone number id messages are sent from (``META_PHONE_NUMBER_ID``).
        graph_url: Graph API base URL including the version, e.g. ``https://graph.facebook.com/v23.0``
            (``META_GRAPH_URL``).
        http_client: an ``httpx.AsyncClient`` to share; when omitted the channel makes one and
            :meth:`aclose` closes it (a shared client is left open).
        max_attempts: attempts per API call, including the first.
        backoff_initial: first backoff wait, in seconds; it doubles on each retry, plus up to as much jitter.
        backoff_max: longest single wait, in seconds.
        max_retry_seconds: no new attempt starts after this many seconds from the first one.
        max_media_bytes: largest media download accepted, in bytes.

    Raises:
        ValueError: ``app_secret``, ``access_token`` or ``phone_number_id`` is empty.
    """

    name = "meta"
    title = "Meta"
    webhook_path = "/webhooks/meta"
    signs_url = False  # Meta signs the body only
    subscription_params = ("hub.mode", "hub.verify_token", "hub.challenge")

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
        max_media_bytes: int = MEDIA_MAX_BYTES,
    ) -> None:
        if not app_secret:
            raise ValueError("app_secret must not be empty")
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token.encode()
        self.graph = GraphAPIClient(
            access_token=access_token,
            phone_number_id=phone_number_id,
            graph_url=graph_url,
            http_client=http_client,
            max_attempts=max_attempts,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            max_retry_seconds=max_retry_seconds,
            max_media_bytes=max_media_bytes,
        )
        self.phone_number_id = self.graph.phone_number_id
        self.graph_url = self.graph.graph_url

    @classmethod
    def from_settings(cls, settings: Settings, http_client: httpx.AsyncClient | None = None) -> MetaCloudChannel:
        """Build the channel from the process settings (``META_*``); always configured (placeholders in development).

        Args:
            settings: the process settings.
            http_client: an HTTP client to share, or ``None`` for the channel's own.
        """
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

    # -- webhooks ---------------------------------------------------------------------------------------------

    def verify_subscription(self, mode: str | None, token: str | None, challenge: str | None) -> str | None:
        """Answer Meta's subscription check; see :func:`server.channels.meta.webhook.verify_subscription`.

        Returns:
            the challenge to answer with, or ``None`` to answer 403.
        """
        return verify_subscription(self._verify_token, mode, token, challenge)

    def answer_subscription(self, query: Mapping[str, str]) -> str | None:
        """The GET handshake from its query parameters (``hub.mode``, ``hub.verify_token``, ``hub.challenge``)."""
        return self.verify_subscription(
            query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
        )

    def verify_request(self, headers: Mapping[str, str], body: bytes, url: str = "") -> None:
        """Check ``X-Hub-Signature-256`` over the raw body; ``url`` is unused (Meta does not sign it).

        Raises:
            SignatureError: see :func:`server.channels.meta.webhook.verify_signature`.
        """
        verify_signature(self._app_secret, headers, body)

    def parse(self, body: bytes, content_type: str = _JSON) -> tuple[list[InboundMessage], list[StatusUpdate]]:
        """Messages and statuses of a webhook body; see :func:`server.channels.meta.parse.parse_webhook`.

        Args:
            body: the raw request body.
            content_type: not checked; the body is parsed as JSON anyway.

        Raises:
            PayloadError: the body is not a WhatsApp Business Account webhook.
        """
        return parse_webhook(body)

    def webhook_answer(self, stored: int, duplicates: int) -> tuple[bytes, str]:
        """``{"status": "ok", "stored": n, "duplicates": m}`` as JSON (Meta only needs the 200)."""
        return orjson.dumps({"status": "ok", "stored": stored, "duplicates": duplicates}), _JSON

    # -- sending (Graph API) ----------------------------------------------------------------------------------

    async def send_text(self, to: str, text: str, *, callback_data: str | None = None) -> list[str]:
        """See :meth:`GraphAPIClient.send_text`."""
        return await self.graph.send_text(to, text, callback_data=callback_data)

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
        """See :meth:`GraphAPIClient.send_buttons`."""
        return await self.graph.send_buttons(to, body, buttons, header, footer, callback_data=callback_data)

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
        """See :meth:`GraphAPIClient.send_list`."""
        return await self.graph.send_list(
            to, body, button_text, rows, section_title, header, footer, callback_data=callback_data
        )

    async def mark_read(self, message_id: str, typing: bool = True) -> None:
        """See :meth:`GraphAPIClient.mark_read`."""
        await self.graph.mark_read(message_id, typing)

    async def download_media(self, media_id: str) -> tuple[bytes, str]:
        """See :meth:`GraphAPIClient.download_media`."""
        return await self.graph.download_media(media_id)

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        await self.graph.aclose()
