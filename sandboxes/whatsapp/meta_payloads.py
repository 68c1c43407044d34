"""Signed Meta Cloud API webhook payloads built the way Meta sends them (tests, the demo, benchmarks)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

_seq = itertools.count(1)


def envelope(
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    phone_number_id: str = "000000000000000",
) -> dict[str, Any]:
    """A Cloud API webhook body with these messages and statuses."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
    }
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}],
    }


def wamid() -> str:
    """A fresh, unique test wamid."""
    return f"wamid.TEST{next(_seq):06d}{int(time.time() * 1000) % 100000}"


def text_message(sender: str, body: str, *, mid: str | None = None, ts: float | None = None) -> dict[str, Any]:
    """A text message from ``sender`` (wa_id)."""
    return {
        "from": sender,
        "id": mid or wamid(),
        "timestamp": str(int(ts or time.time())),
        "type": "text",
        "text": {"body": body},
    }


def button_reply(sender: str, reply_id: str, title: str = "", *, mid: str | None = None) -> dict[str, Any]:
    """An interactive reply-button answer."""
    return {
        "from": sender,
        "id": mid or wamid(),
        "timestamp": str(int(time.time())),
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title or reply_id[:20]}},
    }


def list_reply(sender: str, reply_id: str, title: str = "", *, mid: str | None = None) -> dict[str, Any]:
    """An interactive list-row answer."""
    return {
        "from": sender,
        "id": mid or wamid(),
        "timestamp": str(int(time.time())),
        "type": "interactive",
        "interactive": {
            "type": "list_reply",
            "list_reply": {"id": reply_id, "title": title or reply_id[:24], "description": ""},
        },
    }


def status(
    provider_message_id: str,
    recipient: str,
    state: str,
    *,
    code: int | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """A delivery status for an outbound message.

    ``code`` adds an error; ``callback_data`` is Meta's ``biz_opaque_callback_data``, the tag the send carried.
    """
    s: dict[str, Any] = {
        "id": provider_message_id,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if callback_data is not None:
        s["biz_opaque_callback_data"] = callback_data
    if code is not None:
        s["errors"] = [{"code": code, "title": "Message failed", "message": "failed", "error_data": {"details": "x"}}]
    return s


def contact(wa_id: str, name: str = "Tester") -> dict[str, Any]:
    """A ``contacts[]`` entry (older shape, without ``user_id``)."""
    return {"profile": {"name": name}, "wa_id": wa_id}


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(payload: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """``(raw body, headers)`` for a payload signed with the app secret."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
