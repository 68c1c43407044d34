"""Idempotent sending: every outbound message is recorded under an idempotency key before it is sent.

Keys are ``turn:<turn id>:<index>`` for a turn's replies and ``approval:PR-<id>:r<rev>:<phase>:<index>`` for
approval notices; long texts are split at paragraph boundaries and each part gets ``:<part>``. A retried job
finds the key already sent and skips it, so a person is never messaged twice for one reply.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import outbound_messages
from server.channels import Channel, ChannelSendError, split_text

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
