"""The channel interface: what every WhatsApp provider (Meta Cloud API, Twilio, Evolution) implements.

A channel turns a provider's webhook request into provider-neutral :class:`InboundMessage` and
:class:`StatusUpdate` records, and sends replies (text, reply buttons, lists, read receipts) back through the
provider's API. The shapes follow pywa's style (david-lev/pywa): frozen, slotted dataclasses that keep the raw
provider payload (out of ``repr``) next to the few fields the rest of the program needs.

Limits enforced here come from Meta's Cloud API message reference
(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages) and apply to every provider,
since they all end up on WhatsApp:

- text body: at most 4,096 characters (:func:`split_text` cuts longer replies into several messages);
- reply buttons: 1 to 3 buttons, title at most 20 characters, id at most 256 characters, ids unique;
- interactive body at most 1,024 characters, header and footer at most 60;
- lists: 1 to 10 rows, row title at most 24, row description at most 72, row id at most 200, list button label
  at most 20, section title at most 24.

Display labels (titles, descriptions, header, footer) that are too long are shortened with an ellipsis (``…``)
because a slightly shorter label beats a failed message; structure that cannot be shortened without changing
its meaning (too many buttons or rows, too-long or duplicate ids, an over-long body) raises ``ValueError``,
because that is a bug in the caller.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BUTTON_ID_MAX",
    "BUTTON_TITLE_MAX",
    "BUTTONS_MAX",
    "ELLIPSIS",
    "HEADER_MAX",
    "FOOTER_MAX",
    "INTERACTIVE_BODY_MAX",
    "LIST_BUTTON_MAX",
    "LIST_ROWS_MAX",
    "ROW_DESCRIPTION_MAX",
    "ROW_ID_MAX",
    "ROW_TITLE_MAX",
    "SECTION_TITLE_MAX",
    "TEXT_MAX",
    "Channel",
    "ChannelError",
    "ChannelSendError",
    "DeliveryStatus",
    "InboundMessage",
    "ListMessage",
    "MessageKind",
    "PayloadError",
    "ReplyButtons",
    "SignatureError",
    "StatusError",
    "StatusUpdate",
    "clip",
    "split_text",
    "validate_buttons",
    "validate_list",
]

# --- WhatsApp limits, in characters (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages)
TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
HEADER_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_ROWS_MAX = 10
LIST_BUTTON_MAX = 20
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
#: One character, so a clipped label stays within its limit.
ELLIPSIS = "…"


# ----------------------------------------------------------------------------------------------
# Inbound records
# ----------------------------------------------------------------------------------------------


class MessageKind(enum.StrEnum):
    """What an inbound message carries, provider-neutral.

    ``BUTTON`` covers both interactive ``button_reply`` and template quick-reply ``button`` messages; ``LIST``
    is an interactive ``list_reply``. ``VOICE`` is an audio message recorded as a voice note (Meta:
    ``audio.voice`` true). ``UNSUPPORTED`` is what the provider itself could not deliver (Meta's
    ``unsupported`` type, or a message that arrives with only ``errors``); ``OTHER`` is anything the provider
    delivered that this program does not model (system notices, edits, revokes, flow replies, types added
    after this code was written).
    """

    TEXT = "text"
    BUTTON = "button"
    LIST = "list"
    IMAGE = "image"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    REACTION = "reaction"
    CONTACTS = "contacts"
    ORDER = "order"
    UNSUPPORTED = "unsupported"
    OTHER = "other"


class DeliveryStatus(enum.StrEnum):
    """Delivery state of a message we sent.

    Meta can skip ``delivered`` when a message is read at once, and statuses can arrive out of order
    (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples).
    """

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    PLAYED = "played"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a person sent us, provider-neutral.

    The provider message id is globally unique and is the deduplication key: providers deliver webhooks at
    least once, so the same message can arrive several times.

    Attributes:
        provider: channel name, e.g. ``"meta"``.
        provider_message_id: the provider's message id (Meta: the wamid).
        chat_id: the conversation to answer in. Meta one-to-one chats: the sender's wa_id.
        sender: the sender's WhatsApp id (wa_id; digits of the phone number, no ``+``).
        sender_name: the sender's WhatsApp profile name, when the provider gives one.
        sender_user_id: Meta's business-scoped user id (``contacts[].user_id``, e.g. ``"US.1349…"``), when
            present.
        kind: what the message carries.
        text: the text body, media caption, button or list title, reaction emoji, location name and address,
            or a summary of shared contacts; ``None`` when there is none.
        reply_id: the id of the chosen button or list row, or a template quick-reply payload.
        media_id: provider media id to pass to :meth:`Channel.download_media`.
        mime_type: media MIME type, e.g. ``"audio/ogg; codecs=opus"``.
        filename: document file name, when given.
        latitude: location latitude in decimal degrees.
        longitude: location longitude in decimal degrees.
        context_id: id of the message this one replies (or reacts) to.
        business_phone_number_id: our number's id the message was sent to (Meta ``metadata.phone_number_id``);
            routes a deployment with several numbers.
        timestamp: when the provider received the message, timezone-aware UTC.
        raw: the provider's message object as received (not in ``repr``, not in :meth:`to_dict`).
    """

    provider: str
    provider_message_id: str
    chat_id: str
    sender: str
    kind: MessageKind
    timestamp: datetime
    sender_name: str | None = None
    sender_user_id: str | None = None
    text: str | None = None
    reply_id: str | None = None
    media_id: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    context_id: str | None = None
    business_phone_number_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field but ``raw`` (``kind`` as its string, ``timestamp`` as ISO 8601)."""
        return {
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "chat_id": self.chat_id,
            "sender": self.sender,
            "kind": self.kind.value,
            "timestamp": self.timestamp.isoformat(),
            "sender_name": self.sender_name,
            "sender_user_id": self.sender_user_id,
            "text": self.text,
            "reply_id": self.reply_id,
            "media_id": self.media_id,
            "mime_type": self.mime_type,
            "filename": self.filename,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "context_id": self.context_id,
            "business_phone_number_id": self.business_phone_number_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InboundMessage:
        """Rebuild a message from :meth:`to_dict` output (``raw`` comes back empty).

        Raises:
            KeyError: a required field is missing.
            ValueError: ``kind`` or ``timestamp`` is not valid.
        """
        return cls(
            provider=data["provider"],
            provider_message_id=data["provider_message_id"],
            chat_id=data["chat_id"],
            sender=data["sender"],
            kind=MessageKind(data["kind"]),
            timestamp=datetime.fromisoformat(data["timestamp"]),
            sender_name=data.get("sender_name"),
            sender_user_id=data.get("sender_user_id"),
            text=data.get("text"),
            reply_id=data.get("reply_id"),
            media_id=data.get("media_id"),
            mime_type=data.get("mime_type"),
            filename=data.get("filename"),
            latitude=data.get("latitude"),
            longitude=data.get("longitude"),
            context_id=data.get("context_id"),
            business_phone_number_id=data.get("business_phone_number_id"),
        )


@dataclass(frozen=True, slots=True)
class StatusError:
    """One error attached to a failed status (Meta ``errors[]``).

    Codes are listed at https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes.

    Attributes:
        code: provider error code, e.g. ``131047`` (outside the 24-hour window); ``None`` when absent.
        title: short error title.
        message: error message.
        details: longer explanation (Meta ``error_data.details``).
    """

    code: int | None
    title: str | None = None
    message: str | None = None
    details: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict ``{code, title, message, details}``."""
        return {"code": self.code, "title": self.title, "message": self.message, "details": self.details}


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery status for a message we sent: never a reason to start a conversation turn.

    Attributes:
        provider: channel name, e.g. ``"meta"``.
        provider_message_id: id of the message the status is about (the wamid we got back when sending).
        status: the delivery state.
        recipient: who the message went to (wa_id, or a group id for group messages).
        timestamp: when the status happened, timezone-aware UTC.
        errors: why the message failed (empty unless ``status`` is ``failed``).
        business_phone_number_id: our number's id (Meta ``metadata.phone_number_id``).
        raw: the provider's status object as received (not in ``repr``).
    """

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    recipient: str | None
    timestamp: datetime
    errors: tuple[StatusError, ...] = ()
    business_phone_number_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field but ``raw``; ``errors`` as a list of dicts."""
        return {
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "status": self.status.value,
            "recipient": self.recipient,
            "timestamp": self.timestamp.isoformat(),
            "errors": [e.to_dict() for e in self.errors],
            "business_phone_number_id": self.business_phone_number_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusUpdate:
        """Rebuild a status from :meth:`to_dict` output (``raw`` comes back empty)."""
        return cls(
            provider=data["provider"],
            provider_message_id=data["provider_message_id"],
            status=DeliveryStatus(data["status"]),
            recipient=data.get("recipient"),
            timestamp=datetime.fromisoformat(data["timestamp"]),
            errors=tuple(
                StatusError(
                    code=e.get("code"),
                    title=e.get("title"),
                    message=e.get("message"),
                    details=e.get("details"),
                )
                for e in data.get("errors", ())
            ),
            business_phone_number_id=data.get("business_phone_number_id"),
        )


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


class ChannelError(Exception):
    """Base class of every channel error."""


class SignatureError(ChannelError):
    """The webhook request is not authentic: signature missing, malformed or wrong. Answer 401/403."""


class PayloadError(ChannelError):
    """The webhook body cannot be understood (not JSON, wrong envelope). Answer 400."""


class ChannelSendError(ChannelError):
    """A call to the provider's API failed.

    Attributes:
        retryable: a later retry may succeed (rate limit, 5xx, network); the channel has already retried a
            few times before raising this.
        code: provider error code (Meta ``error.code``, e.g. ``131047``), when the provider gave one.
        http_status: HTTP status of the last response, ``None`` when no response arrived.
        delivery_unknown: the request may have reached the provider before the connection failed, so the
            message may have been sent; retrying risks a duplicate.
        sent_message_ids: ids of the parts of a multi-part send that did go out before the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: int | None = None,
        http_status: int | None = None,
        delivery_unknown: bool = False,
        sent_message_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.http_status = http_status
        self.delivery_unknown = delivery_unknown
        self.sent_message_ids: tuple[str, ...] = tuple(sent_message_ids)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, retryable={self.retryable}, code={self.code}, "
            f"http_status={self.http_status}, delivery_unknown={self.delivery_unknown})"
        )


# ----------------------------------------------------------------------------------------------
# The interface
# ----------------------------------------------------------------------------------------------


@runtime_checkable
class Channel(Protocol):
    """A WhatsApp provider: authenticate and parse its webhooks, send through its API.

    Implementations: ``server.channels.meta.MetaCloudChannel`` (Meta Cloud API), and the Twilio and
    Evolution channels. Webhook handlers call :meth:`verify_request` then :meth:`parse` on the raw body;
    senders call the async methods. Every ``send_*`` raises :class:`ChannelSendError` on failure, after the
    channel's own retries.
    """

    #: Channel name, stored as :attr:`InboundMessage.provider` (``"meta"``, ``"twilio"``, ``"evolution"``).
    name: str
    #: The signature covers the request URL (Twilio): the webhook handler then builds and passes ``url``.
    signs_url: bool

    def verify_request(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        """Check that a webhook request comes from the provider.

        Args:
            headers: request headers (matched case-insensitively).
            body: the raw request body bytes, exactly as received (never re-serialised).
            url: the full public URL the provider called (Twilio signs it; Meta ignores it).

        Raises:
            SignatureError: the request is not authentic.
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

    async def send_text(self, to: str, text: str) -> list[str]:
        """Send a text reply, split with :func:`split_text` when longer than one message allows.

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
    ) -> str:
        """Send up to three reply buttons under a body text (see :func:`validate_buttons`).

        Args:
            to: recipient.
            body: the question, at most 1,024 characters.
            buttons: ``(id, title)`` pairs; the id comes back as :attr:`InboundMessage.reply_id`.
            header: optional header text.
            footer: optional footer text.

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
    ) -> str:
        """Send a single-section list message (see :func:`validate_list`).

        Args:
            to: recipient.
            body: the question, at most 1,024 characters.
            button_text: label of the button that opens the list.
            rows: ``(id, title, description)`` triples; the id comes back as :attr:`InboundMessage.reply_id`.
            section_title: title of the one section.

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


# ----------------------------------------------------------------------------------------------
# Text splitting and interactive-message validation
# ----------------------------------------------------------------------------------------------

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n")
# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) and whitespace.
_SENTENCE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_WORD = re.compile(r"\s+")
# Separators used to glue pieces back together, one per level.
_LEVELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_PARAGRAPH, "\n\n"),
    (_LINE, "\n"),
    (_SENTENCE, " "),
    (_WORD, " "),
)


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Split a text into messages of at most ``limit`` characters, cutting at the most natural boundary.

    Paragraphs (separated by blank lines) are packed greedily into parts; a paragraph longer than ``limit`` is
    cut at line breaks, then sentence ends, then spaces, and as a last resort (a single word longer than the
    limit) hard at ``limit``. Whitespace at part boundaries is dropped; parts are never empty.

    Lengths are counted in Python characters (code points), which is how WhatsApp documents its
    4,096-character text limit (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages).

    Args:
        text: the text to send.
        limit: the largest part, in characters (must be > 0).

    Returns:
        the parts in order; ``[]`` for an empty or blank text.

    Raises:
        ValueError: ``limit`` is not positive.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    text = text.strip()
    if not text:
        return []
    return _split(text, limit, 0)


def _split(text: str, limit: int, level: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    if level == len(_LEVELS):
        # One unbreakable run (a URL, a long number): cut hard, the only option left.
        return [text[i : i + limit].strip() for i in range(0, len(text), limit) if text[i : i + limit].strip()]
    pattern, glue = _LEVELS[level]
    pieces = [p.strip() for p in pattern.split(text) if p.strip()]
    if len(pieces) <= 1:
        return _split(text, limit, level + 1)
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{glue}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        if len(piece) <= limit:
            current = piece
        else:
            # The piece alone is too long: cut it at a finer boundary; its last part may still take company.
            sub = _split(piece, limit, level + 1)
            parts.extend(sub[:-1])
            current = sub[-1]
    if current:
        parts.append(current)
    return parts


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, ending with ``…`` when it had to be cut.

    Args:
        text: a display label.
        limit: the largest length allowed, in characters (>= 1).

    Returns:
        ``text`` stripped, unchanged when it fits.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def _check_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise ValueError("interactive body must not be empty")
    if len(body) > INTERACTIVE_BODY_MAX:
        raise ValueError(
            f"interactive body is {len(body)} characters; WhatsApp allows {INTERACTIVE_BODY_MAX}. "
            "Send the long part as text first."
        )
    return body


def _check_id(value: str, limit: int, what: str, seen: set[str]) -> str:
    if not value:
        raise ValueError(f"{what} id must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} id is {len(value)} characters; WhatsApp allows {limit}")
    if value in seen:
        raise ValueError(f"duplicate {what} id {value!r}; WhatsApp requires unique ids")
    seen.add(value)
    return value


def _optional(text: str | None, limit: int) -> str | None:
    if text is None or not text.strip():
        return None
    return clip(text, limit)


@dataclass(frozen=True, slots=True)
class ReplyButtons:
    """A reply-buttons message within WhatsApp's limits (built by :func:`validate_buttons`).

    Attributes:
        body: body text, at most 1,024 characters.
        buttons: ``(id, title)`` pairs, 1 to 3, titles at most 20 characters, ids at most 256 and unique.
        header: header text, at most 60 characters, or ``None``.
        footer: footer text, at most 60 characters, or ``None``.
    """

    body: str
    buttons: tuple[tuple[str, str], ...]
    header: str | None = None
    footer: str | None = None


@dataclass(frozen=True, slots=True)
class ListMessage:
    """A single-section list message within WhatsApp's limits (built by :func:`validate_list`).

    Attributes:
        body: body text, at most 1,024 characters.
        button_text: label of the button that opens the list, at most 20 characters.
        section_title: section title, at most 24 characters.
        rows: ``(id, title, description)`` triples, 1 to 10, title at most 24, description at most 72 or
            ``None``, ids at most 200 and unique.
        header: header text, at most 60 characters, or ``None``.
        footer: footer text, at most 60 characters, or ``None``.
    """

    body: str
    button_text: str
    section_title: str
    rows: tuple[tuple[str, str, str | None], ...]
    header: str | None = None
    footer: str | None = None


def validate_buttons(
    body: str,
    buttons: Sequence[tuple[str, str]],
    header: str | None = None,
    footer: str | None = None,
) -> ReplyButtons:
    """Check a reply-buttons message against WhatsApp's limits, shortening labels that are too long.

    Limits: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages (interactive object).

    Args:
        body: body text.
        buttons: ``(id, title)`` pairs.
        header: optional header text.
        footer: optional footer text.

    Returns:
        the checked message; titles over 20 and header/footer over 60 characters end in ``…``.

    Raises:
        ValueError: no button or more than 3, an empty, duplicate or over-256-character id, an empty title, or
            an empty or over-1,024-character body.
    """
    if not 1 <= len(buttons) <= BUTTONS_MAX:
        raise ValueError(f"reply buttons: {len(buttons)} given; WhatsApp allows 1 to {BUTTONS_MAX}")
    seen: set[str] = set()
    checked: list[tuple[str, str]] = []
    for button_id, title in buttons:
        if not title.strip():
            raise ValueError("button title must not be empty")
        checked.append((_check_id(button_id, BUTTON_ID_MAX, "button", seen), clip(title, BUTTON_TITLE_MAX)))
    return ReplyButtons(
        body=_check_body(body),
        buttons=tuple(checked),
        header=_optional(header, HEADER_MAX),
        footer=_optional(footer, FOOTER_MAX),
    )


def validate_list(
    body: str,
    button_text: str,
    rows: Sequence[tuple[str, str, str | None]],
    section_title: str,
    header: str | None = None,
    footer: str | None = None,
) -> ListMessage:
    """Check a single-section list message against WhatsApp's limits, shortening labels that are too long.

    Limits: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages (interactive object,
    sections and rows).

    Args:
        body: body text.
        button_text: label of the button that opens the list.
        rows: ``(id, title, description)`` triples; ``description`` may be ``None``.
        section_title: title of the section.
        header: optional header text.
        footer: optional footer text.

    Returns:
        the checked message; over-long labels end in ``…``.

    Raises:
        ValueError: no row or more than 10, an empty, duplicate or over-200-character id, an empty title or
            button text, or an empty or over-1,024-character body.
    """
    if not 1 <= len(rows) <= LIST_ROWS_MAX:
        raise ValueError(f"list rows: {len(rows)} given; WhatsApp allows 1 to {LIST_ROWS_MAX}")
    if not button_text.strip():
        raise ValueError("list button text must not be empty")
    seen: set[str] = set()
    checked: list[tuple[str, str, str | None]] = []
    for row_id, title, description in rows:
        if not title.strip():
            raise ValueError("list row title must not be empty")
        checked.append(
            (
                _check_id(row_id, ROW_ID_MAX, "list row", seen),
                clip(title, ROW_TITLE_MAX),
                _optional(description, ROW_DESCRIPTION_MAX),
            )
        )
    return ListMessage(
        body=_check_body(body),
        button_text=clip(button_text, LIST_BUTTON_MAX),
        section_title=clip(section_title, SECTION_TITLE_MAX) if section_title.strip() else "",
        rows=tuple(checked),
        header=_optional(header, HEADER_MAX),
        footer=_optional(footer, FOOTER_MAX),
    )
