"""Idempotent sending: every outbound message is recorded under an idempotency key before it is sent.

Keys are ``turn:<turn id>:<index>`` for a turn's replies and ``approval:PR-<id>:r<rev>:<phase>:<index>`` for
approval notices; long texts are split at paragraph boundaries and each part gets ``:<part>``. A retried job
finds the key already sent and skips it, so a person is never messaged twice for one reply. Delivery statuses
the provider reports later (sent, delivered, read, failed) are applied by :func:`apply_statuses`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import outbound_messages
from nodes.effects import OUTBOX_KEY
from server.channels import Channel, ChannelSendError, split_text
from server.channels.records import StatusUpdate

log = logging.getLogger(__name__)
DONE = ("sent", "delivered", "read", "played")


async def _claim(
    engine: AsyncEngine, key: str, provider: str, to: str, kind: str, body: dict[str, Any], turn_id: int | None
) -> bool:
    """Record the key; False when it was already sent (or permanently failed)."""
    async with engine.begin() as conn:
        await conn.execute(
            pg_insert(outbound_messages)
            .values(idempotency_key=key, provider=provider, to=to, kind=kind, body=body, turn_id=turn_id)
            .on_conflict_do_nothing(index_elements=[outbound_messages.c.idempotency_key])
        )
        row = (
            await conn.execute(
                select(outbound_messages.c.status, outbound_messages.c.provider_message_id).where(
                    outbound_messages.c.idempotency_key == key
                )
            )
        ).one()
    return not (row.provider_message_id or row.status in DONE or row.status == "rejected")


async def _mark(engine: AsyncEngine, key: str, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(outbound_messages).where(outbound_messages.c.idempotency_key == key).values(**values))


async def send_one(
    engine: AsyncEngine, channel: Channel, key: str, msg: dict[str, Any], *, turn_id: int | None = None
) -> list[str]:
    """Send one composed outbound message (``{"to", "type", "text", ...}``) exactly once per key.

    Returns:
        Provider message ids sent now (empty when everything was already sent).

    Raises:
        ChannelSendError: a retryable failure (the job retries; sent parts are not repeated). Permanent
            failures are recorded as ``rejected`` and not raised.
    """
    to, kind = msg["to"], msg["type"]
    sent: list[str] = []
    if kind == "text":
        parts = split_text(msg["text"])
        for i, part in enumerate(parts):
            k = key if len(parts) == 1 else f"{key}:{i}"
            body = {"text": part}
            if not await _claim(engine, k, channel.name, to, "text", body, turn_id):
                continue
            sent += await _deliver(engine, k, lambda p=part: channel.send_text(to, p))
        return sent
    if not await _claim(engine, key, channel.name, to, kind, {k: v for k, v in msg.items() if k != "to"}, turn_id):
        return []
    if kind == "buttons":
        buttons = [(b[0], b[1]) for b in msg["buttons"]]
        return await _deliver(engine, key, lambda: _one(channel.send_buttons(to, msg["text"], buttons)))
    if kind == "list":
        rows = [(r[0], r[1], r[2]) for r in msg["rows"]]
        return await _deliver(
            engine,
            key,
            lambda: _one(channel.send_list(to, msg["text"], msg.get("button") or "Choose", rows, "Options")),
        )
    raise ValueError(f"unknown outbound type {kind!r}")


async def _one(coro: Any) -> list[str]:
    return [await coro]


async def _deliver(engine: AsyncEngine, key: str, call: Any) -> list[str]:
    try:
        ids = await call()
    except ChannelSendError as exc:
        if exc.retryable and not getattr(exc, "delivery_unknown", False):
            await _mark(engine, key, error=str(exc)[:500])
            raise
        status = "unknown" if getattr(exc, "delivery_unknown", False) else "rejected"
        # Delivery unknown (a timeout after the request left): do not resend, a duplicate is worse than a gap.
        await _mark(engine, key, status=status, error=str(exc)[:500])
        log.error("send %s failed permanently: %s", key, exc)
        return []
    await _mark(engine, key, provider_message_id=ids[0] if ids else None, status="sent", sent_at=func.now())
    return list(ids)


async def send_all(
    engine: AsyncEngine,
    channels: dict[str, Channel],
    provider: str,
    key_prefix: str,
    messages: list[dict[str, Any]],
    *,
    turn_id: int | None = None,
) -> list[str]:
    """Send a list of outbound messages in order under ``<key_prefix>:<index>`` keys."""
    ids: list[str] = []
    channel = channels[provider]
    for i, msg in enumerate(messages):
        ids += await send_one(engine, channel, f"{key_prefix}:{i}", msg, turn_id=turn_id)
    return ids


async def send_outbox(
    engine: AsyncEngine, channels: dict[str, Any], provider: str, turn_id: int, messages: list[dict[str, Any]]
) -> None:
    """Send a turn's outbound messages in order, each exactly once.

    Replies to the chat are keyed ``turn:<id>:<index>``; a message an effect node keyed itself (``outbox_key``:
    the approver's buttons under their approval thread's key, see :func:`nodes.effects.keyed`) is sent under that
    key, so a re-run node or a second turn touching the same thread never sends it twice.
    """
    channel = channels[provider]
    index = 0
    for msg in messages:
        key = msg.get(OUTBOX_KEY)
        if key is None:
            await send_one(engine, channel, f"turn:{turn_id}:{index}", msg, turn_id=turn_id)
            index += 1
        else:
            await send_one(engine, channel, key, {k: v for k, v in msg.items() if k != OUTBOX_KEY})


#: Forward order of delivery statuses; a late "delivered" never overwrites "read" (statuses arrive out of order).
STATUS_RANK = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "played": 3, "failed": 4}


async def apply_statuses(engine: AsyncEngine, statuses: Sequence[StatusUpdate]) -> int:
    """Append each status to its outbound message's delivery history; the current status only moves forward.

    Returns:
        How many outbound messages were found and updated (statuses for unknown ids are ignored).
    """
    n = 0
    if not statuses:
        return 0
    async with engine.begin() as conn:
        for s in statuses:
            entry = {
                "status": str(s.status),
                "at": s.timestamp.isoformat(),
                "errors": [e.to_dict() for e in s.errors],
            }
            rank = STATUS_RANK.get(str(s.status), 0)
            res = await conn.execute(
                text(
                    """
                    UPDATE outbound_messages SET
                      status_history = status_history || CAST(:entry AS jsonb),
                      status = CASE WHEN (CASE status WHEN 'pending' THEN 0 WHEN 'sent' THEN 1
                                   WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'played' THEN 3
                                   WHEN 'failed' THEN 4 ELSE 0 END) < :rank THEN :status ELSE status END,
                      error = CASE WHEN :status = 'failed' THEN :error ELSE error END
                    WHERE provider_message_id = :pmid
                    """
                ),
                {
                    "entry": json.dumps([entry]),
                    "rank": rank,
                    "status": str(s.status),
                    "error": "; ".join(f"{e.code}: {e.title or e.message}" for e in s.errors) or None,
                    "pmid": s.provider_message_id,
                },
            )
            n += res.rowcount or 0
    return n
