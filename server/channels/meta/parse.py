"""Meta Cloud API webhook bodies as provider-neutral records (:class:`InboundMessage`, :class:`StatusUpdate`).

Why this module parses webhooks itself instead of through pywa: pywa's user and status constructors index
``contacts[].user_id`` and the status ``contacts`` array directly, so payloads of the older, still common shape
(no business-scoped user id; statuses without ``contacts``) raise ``KeyError``. Wrapping it would mean catching
``KeyError`` per update and losing those messages, or patching payloads before handing them over. The part of the
payload this program needs is small and documented, so this module reads it directly with ``dict.get``
everywhere, in pywa's style (frozen slotted dataclasses, raw payload kept, enums for types), and its tests are
driven by pywa's own example payloads (``tests/data/whatsapp/meta/pywa/updates``, MIT, licence alongside).

Shapes: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from server.channels.errors import PayloadError
from server.channels.records import DeliveryStatus, InboundMessage, MessageKind, StatusError, StatusUpdate

__all__ = ["as_str", "parse_webhook"]

logger = logging.getLogger(__name__)

_OBJECT = "whatsapp_business_account"

_MEDIA_KINDS: dict[str, MessageKind] = {
    "image": MessageKind.IMAGE,
    "video": MessageKind.VIDEO,
    "document": MessageKind.DOCUMENT,
    "sticker": MessageKind.STICKER,
    "audio": MessageKind.AUDIO,
}


def parse_webhook(body: bytes) -> tuple[list[InboundMessage], list[StatusUpdate]]:
    """Read every entry, change, message and status of a webhook body.

    Only changes with ``field == "messages"`` are read; other fields (``account_update``, template
    updates, ``calls``, ``smb_message_echoes``, ``user_preferences``, ...) are ignored. Both payload
    shapes are accepted: with and without ``contacts[].user_id``, statuses with and without a
    ``contacts`` array. A message without ``from`` or ``id`` is skipped with a warning; an unknown message
    type becomes :attr:`MessageKind.OTHER`.
    Shapes: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples

    Args:
        body: the raw request body (JSON whatever its ``Content-Type`` says).

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
            _parse_value(value, messages, statuses)
    return messages, statuses


def _parse_value(value: dict[str, Any], messages: list[InboundMessage], statuses: list[StatusUpdate]) -> None:
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    business_id = as_str(metadata.get("phone_number_id")) if metadata else None
    by_wa_id: dict[str, dict[str, Any]] = {}
    by_user_id: dict[str, dict[str, Any]] = {}
    for contact in _list(value.get("contacts"), "contacts"):
        if isinstance(contact, dict):
            if wa_id := as_str(contact.get("wa_id")):
                by_wa_id[wa_id] = contact
            if user_id := as_str(contact.get("user_id")):
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


def _parse_message(
    raw: dict[str, Any],
    business_id: str | None,
    by_wa_id: Mapping[str, dict[str, Any]],
    by_user_id: Mapping[str, dict[str, Any]],
) -> InboundMessage | None:
    """One message object -> :class:`InboundMessage`, or ``None`` (logged) when it cannot be attributed."""
    sender = as_str(raw.get("from"))
    wamid = as_str(raw.get("id"))
    if not sender:
        # Newer payloads can identify a user by business-scoped id only; without a wa_id we cannot answer.
        logger.warning("meta webhook: skipping message %s without 'from'", wamid or "<no id>")
        return None
    if not wamid:
        logger.warning("meta webhook: skipping message without 'id' (cannot deduplicate)")
        return None
    from_user_id = as_str(raw.get("from_user_id"))
    contact = by_wa_id.get(sender) or (by_user_id.get(from_user_id) if from_user_id else None) or {}
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    fields: dict[str, Any] = {
        "provider": "meta",
        "provider_message_id": wamid,
        # Cloud API group messages carry group_id; one-to-one chats are keyed by the sender.
        "chat_id": as_str(raw.get("group_id")) or sender,
        "sender": sender,
        "sender_name": as_str(profile.get("name")) if profile else None,
        "sender_user_id": as_str(contact.get("user_id")) or from_user_id,
        "timestamp": _timestamp(raw.get("timestamp"), wamid),
        "context_id": as_str(context.get("id")) if context else None,
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
        return {"kind": MessageKind.TEXT, "text": as_str(obj.get("body"))}
    if msg_type == "button":  # template quick reply
        return {
            "kind": MessageKind.BUTTON,
            "text": as_str(obj.get("text")),
            "reply_id": as_str(obj.get("payload")),
        }
    if msg_type == "interactive":
        sub_type = obj.get("type")
        reply = obj.get(sub_type) if isinstance(sub_type, str) else None
        if isinstance(reply, dict) and sub_type in ("button_reply", "list_reply"):
            kind = MessageKind.BUTTON if sub_type == "button_reply" else MessageKind.LIST
            return {"kind": kind, "text": as_str(reply.get("title")), "reply_id": as_str(reply.get("id"))}
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
            "text": as_str(obj.get("caption")),
            "media_id": as_str(obj.get("id")),
            "mime_type": as_str(obj.get("mime_type")),
            "filename": as_str(obj.get("filename")),
        }
    if msg_type == "location":
        label = ", ".join(p for p in (as_str(obj.get("name")), as_str(obj.get("address"))) if p)
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
            "text": as_str(obj.get("emoji")),
            "context_id": as_str(obj.get("message_id")),
        }
    if msg_type == "contacts":
        return {"kind": MessageKind.CONTACTS, "text": _contacts_summary(raw.get("contacts"))}
    if msg_type == "order":
        return {"kind": MessageKind.ORDER, "text": as_str(obj.get("text"))}
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
        name = as_str(name_obj.get("formatted_name")) if name_obj else None
        phones = [
            phone
            for p in _items(card.get("phones"))
            if isinstance(p, dict) and (phone := as_str(p.get("phone"))) is not None
        ]
        label = name or "contact"
        items.append(f"{label} ({', '.join(phones)})" if phones else label)
    return "; ".join(items) or None


def _parse_status(raw: dict[str, Any], business_id: str | None) -> StatusUpdate | None:
    wamid = as_str(raw.get("id"))
    if not wamid:
        logger.warning("meta webhook: skipping status without 'id'")
        return None
    try:
        status = DeliveryStatus(as_str(raw.get("status")) or "")
    except ValueError:
        status = DeliveryStatus.OTHER
    errors = tuple(
        StatusError(
            code=e.get("code") if isinstance(e.get("code"), int) else None,
            title=as_str(e.get("title")),
            message=as_str(e.get("message")),
            details=as_str(e["error_data"].get("details")) if isinstance(e.get("error_data"), dict) else None,
        )
        for e in _items(raw.get("errors"))
        if isinstance(e, dict)
    )
    return StatusUpdate(
        provider="meta",
        provider_message_id=wamid,
        status=status,
        recipient=as_str(raw.get("recipient_id")),
        timestamp=_timestamp(raw.get("timestamp"), wamid),
        errors=errors,
        business_phone_number_id=business_id,
        callback_data=as_str(raw.get("biz_opaque_callback_data")),
        raw=raw,
    )


def _list(value: Any, where: str) -> list[Any]:
    """A JSON array field: absent -> ``[]``; present but not an array -> :class:`PayloadError`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where} is not an array")
    return value


def _items(value: Any) -> list[Any]:
    """An optional inner array read leniently: anything but a JSON array (a string, a number, an object) -> ``[]``."""
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
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
    except (TypeError, ValueError, OverflowError):
        return None


def _timestamp(value: Any, wamid: str) -> datetime:
    """Meta's unix-seconds timestamp (a string) as an aware UTC datetime; now, logged, when unreadable."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        logger.warning("meta webhook: %s has no valid timestamp (%r); using the receive time", wamid, value)
        return datetime.now(UTC)
