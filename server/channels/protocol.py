"""The channel protocol: what one WhatsApp provider package (Meta, Twilio, Evolution API, console) implements.

A channel is one package under ``server/channels/`` with a class satisfying :class:`Channel`, named once in
:mod:`server.channels.registry`. Everything provider-specific derives from that class:

- the webhook route (``POST`` :attr:`Channel.webhook_path`, answered by ``server.routes.webhooks.WebhookIngest``) and,
  when :attr:`Channel.subscription_params` is not empty, a ``GET`` on the same path for the provider's
  subscription handshake (Meta's ``hub.challenge``);
- authentication (:meth:`Channel.verify_request`: a body signature, a URL signature when
  :attr:`Channel.signs_url`, or a secret in the path), parsing (:meth:`Channel.parse`) and the answer the
  provider expects (:meth:`Channel.webhook_answer`: JSON for Meta, TwiML for Twilio);
- sending (text, reply buttons, lists, read receipts) and media download, used by the worker's outbox.

How the upcoming providers fit: Twilio posts form-encoded bodies, signs URL + parameters with
``X-Twilio-Signature`` (``signs_url = True``), expects TwiML back (``webhook_answer`` returns ``<Response/>``,
``text/xml``) and sends through its REST API; Evolution API posts JSON to ``/webhooks/evolution/{secret}``
(the path template's last segment is matched by ``WebhookIngest``; ``signs_url = True`` so the channel sees the
URL and checks the secret); the console channel answers a browser simulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from server.channels.records import InboundMessage, StatusUpdate

if TYPE_CHECKING:
    import httpx

    from core.config import Settings

__all__ = ["Channel"]


@runtime_checkable
class Channel(Protocol):
    """A WhatsApp provider: authenticate and parse its webhooks, answer them, send through its API.

    Implementations: ``server.channels.meta.MetaCloudChannel`` (Meta Cloud API). Webhook handlers call
    :meth:`verify_request`, then :meth:`parse` on the raw body, then :meth:`webhook_answer`; senders call the
    async methods. Every ``send_*`` raises ``ChannelSendError`` (``server.channels.errors``) on failure, after
    the channel's own retries.
    """

    #: Channel name, stored as :attr:`InboundMessage.provider` and in thread ids (``"meta"``, ``"twilio"``).
    name: str
    #: Human name of the provider, for the API documentation (``"Meta"``).
    title: str
    #: The webhook's path, e.g. ``"/webhooks/meta"``; a last segment ``{name}`` matches any one segment
    #: (``"/webhooks/evolution/{secret}"``), which :meth:`verify_request` then checks through ``url``.
    webhook_path: str
    #: :meth:`verify_request` needs the full request URL (Twilio signs it; Evolution carries its secret in it).
    signs_url: bool
    #: Query parameters of the provider's GET subscription handshake, documented in the API schema; empty when
    #: the provider has none (then no GET route exists).
    subscription_params: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings, http_client: httpx.AsyncClient | None = None) -> Channel | None:
        """Build the channel from the process settings.

        Args:
            settings: the process settings (the channel's own ``<PROVIDER>_*`` fields).
            http_client: an HTTP client to share; the channel makes its own when ``None``.

        Returns:
            the channel, or ``None`` when the provider is not configured (its webhook then answers 404).
        """
        ...

    def verify_request(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        """Check that a webhook request comes from the provider.

        Args:
            headers: request headers (matched case-insensitively).
            body: the raw request body bytes, exactly as received (never re-serialised).
            url: the full public URL the provider called when :attr:`signs_url`, else ``""``.

        Raises:
            SignatureError: the request is not authentic.
        """
        ...

    def answer_subscription(self, query: Mapping[str, str]) -> str | None:
        """Answer the provider's GET subscription handshake (only called when :attr:`subscription_params`).

        Args:
            query: the request's query parameters.

        Returns:
            the text to answer with (HTTP 200, ``text/plain``), or ``None`` to answer 403.
        """
        ...

    def parse(self, body: bytes, content_type: str) -> tuple[list[InboundMessage], list[StatusUpdate]]:
        """Turn a webhook body into inbound messages and delivery statuses, in payload order.

        Args:
            body: the raw request body.
            content_type: the request's ``Content-Type`` header.

        Returns:
            ``(messages, statuses)``; both empty for events this program ignores.

        Raises:
            PayloadError: the body is malformed.
        """
        ...

    def webhook_answer(self, stored: int, duplicates: int) -> tuple[bytes, str]:
        """The body of the 200 answer to an accepted webhook, once its messages are durable.

        Args:
            stored: messages of the request that were new.
            duplicates: messages already stored by an earlier delivery.

        Returns:
            ``(body, content type)``.
        """
        ...

    async def send_text(self, to: str, text: str, *, callback_data: str | None = None) -> list[str]:
        """Send a text reply, split with ``server.channels.limits.split_text`` when longer than one message.

        Args:
            to: recipient.
            text: the message text.
            callback_data: the outbox's idempotency key of this message. A provider that echoes a tag in its
                delivery statuses (Meta: ``biz_opaque_callback_data``) sends it along, so a status can confirm a
                send whose API answer was lost (see ``server.worker.outbox``); others ignore it. Several parts
                carry ``<callback_data>:<i>``.

        Returns:
            provider message ids, one per part, in sending order.
        """
        ...

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
        """Send up to three reply buttons under a body text (see ``server.channels.limits.validate_buttons``).

        Args:
            to: recipient.
            body: the question, at most 1,024 characters.
            buttons: ``(id, title)`` pairs; the id comes back as :attr:`InboundMessage.reply_id`.
            header: optional header text.
            footer: optional footer text.
            callback_data: the outbox's idempotency key (see :meth:`send_text`).

        Returns:
            the provider message id.
        """
        ...

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
        """Send a single-section list message (see ``server.channels.limits.validate_list``).

        Args:
            to: recipient.
            body: the question, at most 1,024 characters.
            button_text: label of the button that opens the list.
            rows: ``(id, title, description)`` triples; the id comes back as :attr:`InboundMessage.reply_id`.
            section_title: title of the one section.
            callback_data: the outbox's idempotency key (see :meth:`send_text`).

        Returns:
            the provider message id.
        """
        ...

    async def mark_read(self, message_id: str, typing: bool = True) -> None:
        """Mark an inbound message as read and, when ``typing``, show a typing indicator to its sender."""
        ...

    async def download_media(self, media_id: str) -> tuple[bytes, str]:
        """Download inbound media at once (provider links expire).

        Returns:
            ``(content, mime_type)``.
        """
        ...

    async def aclose(self) -> None:
        """Release the channel's HTTP resources."""
        ...
