"""Inbound messages and statuses checked and normalised before they are batched, so one cannot fail the others.

Every channel's parser yields :class:`~server.channels.records.InboundMessage` records; this module makes each one
storable by the ``inbox`` INSERT (``core/db.py``) and safe for the worker, or refuses it with a reason
(:class:`MessageRefused`), in which case the webhook writes it to ``dead_letters`` and still answers 200 (the
provider would otherwise redeliver it for days). What is done, and why:

- ids (message id, chat, sender, reply, context, media, user and business number ids) must fit their columns
  (``provider_message_id`` and other ids 200 characters, ``chat_id``/``sender`` 100, reply ids 256 as WhatsApp
  allows) and hold no NUL character (PostgreSQL text cannot store one): otherwise the message is refused, since
  a cut or altered id would deduplicate or answer wrongly;
- texts (body, profile name, file name, MIME type): NUL characters are removed; a body over ``MAX_TEXT_CHARS``
  (WhatsApp's own limit is 4,096 characters) is cut and ends with the ``text_cut`` note of
  ``prompts/replies.toml``; names are clipped to 256 characters;
- the raw provider object is kept for audit with NULs removed from keys and strings and nesting bounded to
  :data:`MAX_RAW_DEPTH` levels (deeper values become a marker string): orjson, which serialises the batch,
  stops at 255 levels, and real payloads are about 6 deep;
- the timestamp must lie between :data:`EARLIEST` and a day after the receive time, else the receive time is used;
- coordinates must be finite, latitude within ±90 and longitude within ±180, else both are dropped (the location's
  name and address stay in the text).

Statuses (:func:`normalise_statuses`) are about messages we sent, whose ids are always valid: one whose id cannot
be ours is dropped with a warning; NULs are removed from its texts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from prompts import PROMPTS_DIR
from server.channels.records import InboundMessage, StatusError, StatusUpdate

__all__ = [
    "EARLIEST",
    "ID_LIMITS",
    "MAX_RAW_DEPTH",
    "NAME_MAX",
    "MessageRefused",
    "bound_raw",
    "cut_text",
    "normalise_message",
    "normalise_statuses",
]

log = logging.getLogger(__name__)

#: Longest id per field, in characters: the ``inbox`` columns (``provider_message_id`` 200, ``chat_id`` and
#: ``sender`` 100), WhatsApp's reply-button id limit (256) and the wamid-sized column for the other ids.
ID_LIMITS: dict[str, int] = {
    "provider_message_id": 200,
    "sender": 100,
    "chat_id": 100,
    "sender_user_id": 200,
    "reply_id": 256,
    "media_id": 200,
    "context_id": 200,
    "business_phone_number_id": 100,
}
#: Longest profile name, file name or MIME type kept, in characters (longer ones are clipped).
NAME_MAX = 256
#: Deepest nesting of the raw provider object kept (levels of objects and arrays).
MAX_RAW_DEPTH = 32
#: Earliest believable message time (WhatsApp did not exist before); earlier or far-future times are replaced.
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
#: How far past the receive time a provider clock may run ahead before its timestamp is replaced.
CLOCK_SKEW = timedelta(days=1)
_TOO_DEEP = "[nested deeper than the stored limit]"


class MessageRefused(ValueError):
    """A message that cannot be stored as it is; the reason goes to ``dead_letters.reason``."""


@lru_cache(maxsize=1)
def _cut_note() -> str:
    with (PROMPTS_DIR / "replies.toml").open("rb") as fh:
        return str(tomllib.load(fh)["text"]["text_cut"])


def cut_text(text: str, limit: int) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its first ``limit`` and the cut note.

    The note (``text_cut`` in ``prompts/replies.toml``) says how many characters were kept of how many, so both
    the person's request and the model see that the end is missing.
    """
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + _cut_note().format(kept=limit, total=len(text))


def bound_raw(value: Any, max_depth: int = MAX_RAW_DEPTH) -> tuple[Any, bool]:
    """A JSON value with NUL characters removed from keys and strings and nesting cut at ``max_depth``.

    Returns:
        ``(value, changed)``; a container at depth ``max_depth`` is replaced by a marker string. Iterative, so
        any depth the JSON parser accepted is handled without recursion limits.
    """
    changed = False

    def clean_str(s: str) -> str:
        nonlocal changed
        if "\x00" in s:
            changed = True
            return s.replace("\x00", "")
        return s

    if not isinstance(value, dict | list):
        return (clean_str(value), changed) if isinstance(value, str) else (value, False)
    root: Any = {} if isinstance(value, dict) else []
    # (source container, target container, depth of the source)
    stack: list[tuple[Any, Any, int]] = [(value, root, 1)]
    while stack:
        src, dst, depth = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for key, item in items:
            if isinstance(item, dict | list):
                if depth >= max_depth:
                    out: Any = _TOO_DEEP
                    changed = True
                else:
                    out = {} if isinstance(item, dict) else []
                    stack.append((item, out, depth + 1))
            elif isinstance(item, str):
                out = clean_str(item)
            else:
                out = item
            if isinstance(dst, dict):
                dst[clean_str(str(key))] = out
            else:
                dst.append(out)
    return root, changed


def _clean(value: str | None, limit: int | None = None) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "")
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value or None


def normalise_message(message: InboundMessage, max_text_chars: int, now: datetime | None = None) -> InboundMessage:
    """``message`` made storable and safe (see the module docstring), or refused.

    Args:
        message: a parsed message.
        max_text_chars: longest text kept, in characters (``MAX_TEXT_CHARS``).
        now: the receive time (UTC); defaults to now.

    Returns:
        the message, or a copy with the normalised fields.

    Raises:
        MessageRefused: an id holds a NUL character or is longer than its column (:data:`ID_LIMITS`).
    """
    for name, limit in ID_LIMITS.items():
        value = getattr(message, name)
        if value is None:
            continue
        if "\x00" in value:
            raise MessageRefused(f"{name} contains a NUL character")
        if len(value) > limit:
            raise MessageRefused(f"{name} is {len(value)} characters long; at most {limit} are stored")
    if len(message.provider) > 20:
        raise MessageRefused("provider name longer than 20 characters")
    changes: dict[str, Any] = {}
    if message.text is not None:
        text = _clean(message.text)
        if text is not None:
            text = cut_text(text, max_text_chars)
        if text != message.text:
            changes["text"] = text
    for name in ("sender_name", "filename", "mime_type"):
        value = getattr(message, name)
        cleaned = _clean(value, NAME_MAX)
        if cleaned != value:
            changes[name] = cleaned
    now = now or datetime.now(UTC)
    if not EARLIEST <= message.timestamp <= now + CLOCK_SKEW:
        log.warning(
            "%s: timestamp %s out of range; using the receive time",
            message.provider_message_id,
            message.timestamp.isoformat(),
        )
        changes["timestamp"] = now
    lat, lon = message.latitude, message.longitude
    if (lat is not None or lon is not None) and not _valid_coordinates(lat, lon):
        log.warning("%s: coordinates %r, %r out of range; dropped", message.provider_message_id, lat, lon)
        changes["latitude"] = changes["longitude"] = None
    raw, raw_changed = bound_raw(message.raw)
    if raw_changed:
        changes["raw"] = raw
    return dataclasses.replace(message, **changes) if changes else message


def _valid_coordinates(lat: float | None, lon: float | None) -> bool:
    return (
        lat is not None
        and lon is not None
        and math.isfinite(lat)
        and math.isfinite(lon)
        and -90.0 <= lat <= 90.0
        and -180.0 <= lon <= 180.0
    )


def normalise_statuses(statuses: Sequence[StatusUpdate]) -> list[StatusUpdate]:
    """Statuses that can be applied: ids that could be ours, texts without NUL characters.

    A status whose message id holds a NUL character or is longer than 200 characters is about no message we
    sent; it is dropped with a warning.
    """
    out: list[StatusUpdate] = []
    for s in statuses:
        pmid = s.provider_message_id
        if "\x00" in pmid or len(pmid) > ID_LIMITS["provider_message_id"]:
            log.warning("%s status dropped: its message id cannot be one of ours", s.provider)
            continue
        errors = tuple(
            StatusError(
                code=e.code,
                title=_clean(e.title, 1000),
                message=_clean(e.message, 1000),
                details=_clean(e.details, 1000),
            )
            for e in s.errors
        )
        recipient = _clean(s.recipient, ID_LIMITS["chat_id"])
        raw, _ = bound_raw(s.raw)
        out.append(dataclasses.replace(s, errors=errors, recipient=recipient, raw=raw))
    return out
