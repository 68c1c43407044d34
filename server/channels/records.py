"""Provider-neutral records of what a webhook carries: inbound messages and delivery statuses.

Every channel turns its provider's webhook into these. The shapes follow pywa's style (david-lev/pywa): frozen,
slotted dataclasses that keep the raw provider payload (out of ``repr``) next to the few fields the rest of the
program needs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["DeliveryStatus", "InboundMessage", "MessageKind", "StatusError", "StatusUpdate"]


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
        media_id: provider media id to pass to :meth:`server.channels.protocol.Channel.download_media`.
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
        callback_data: the tag we sent with the message, echoed back (Meta ``biz_opaque_callback_data``, see
            https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples); the outbox puts
            its idempotency key there, so a status confirms a send whose API answer was lost.
        raw: the provider's status object as received (not in ``repr``).
    """

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    recipient: str | None
    timestamp: datetime
    errors: tuple[StatusError, ...] = ()
    business_phone_number_id: str | None = None
    callback_data: str | None = None
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
            "callback_data": self.callback_data,
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
            callback_data=data.get("callback_data"),
        )
