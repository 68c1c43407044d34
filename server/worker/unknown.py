"""Unknown senders: one reply per chat per ``UNKNOWN_SENDER_REPLY_HOURS``, and their messages kept minimal.

A number that is not a user gets the ``unknown_user`` reply once; further bursts from that chat within the window
are counted (``unknown_sender_replies.suppressed``) and left unanswered, so a stranger (or a script) sending many
bursts costs one message, not one per burst. Their inbox rows keep only ids and type
(:func:`server.worker.inbox.minimise`): we keep nothing a stranger wrote.

The decision is made by the turn runner before any graph runs (identity comes from the database, and an unknown
sender never reaches the graphs), so this is worker code, not a graph node. The claim on
``unknown_sender_replies`` and the reply's outbox row are written in one transaction: a turn re-run after a crash
finds its reply recorded and finishes sending it through the idempotent outbox, never a second one.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import outbound_messages
from nodes.compose import t, text_msg
from server.worker import outbox
from server.worker.inbox import minimise

log = logging.getLogger(__name__)

# Claim the chat's reply when none was sent within the window; else count the burst as suppressed.
# now() is the transaction's start time, so "replied_at = now()" afterwards means this transaction claimed it.
_CLAIM = """
INSERT INTO unknown_sender_replies AS r (provider, chat_id, replied_at, suppressed)
VALUES (:provider, :chat_id, now(), 0)
ON CONFLICT (provider, chat_id) DO UPDATE SET
  replied_at = CASE WHEN r.replied_at <= now() - make_interval(secs => :window) THEN now() ELSE r.replied_at END,
  suppressed = CASE WHEN r.replied_at <= now() - make_interval(secs => :window) THEN 0 ELSE r.suppressed + 1 END
RETURNING r.replied_at = now() AS claimed, r.suppressed
"""


async def answer_unknown_sender(
    engine: AsyncEngine,
    channels: dict[str, Any],
    provider: str,
    chat_id: str,
    turn_id: int,
    *,
    window_hours: float,
) -> bool:
    """Reply to a turn of an unknown sender if the chat had no reply within the window; minimise its messages.

    Args:
        engine: the database.
        channels: the process's channels by name.
        provider: the chat's channel.
        chat_id: the chat (the sender's wa_id for one-to-one chats).
        turn_id: the turn being answered; the reply's key is ``turn:<id>:0``.
        window_hours: ``UNKNOWN_SENDER_REPLY_HOURS``; 0 answers every burst.

    Returns:
        True when the turn's reply was sent (now or by an earlier run of the same turn), False when suppressed.

    Raises:
        ChannelSendError: a retryable send failure (the turn is retried; the reply is still claimed).
    """
    await minimise(engine, turn_id)
    key = f"turn:{turn_id}:0"
    msg = text_msg(chat_id, t("unknown_user"))
    async with engine.begin() as conn:
        mine = (
            await conn.execute(select(outbound_messages.c.id).where(outbound_messages.c.idempotency_key == key))
        ).first()
        if mine is None:
            claim = (
                await conn.execute(
                    text(_CLAIM), {"provider": provider, "chat_id": chat_id, "window": window_hours * 3600.0}
                )
            ).one()
            if not claim.claimed:
                log.info(
                    "unknown sender %s:%s: reply suppressed (%d burst(s) since the last one)",
                    provider,
                    chat_id,
                    claim.suppressed,
                )
                return False
            await conn.execute(
                pg_insert(outbound_messages)
                .values(
                    idempotency_key=key,
                    provider=provider,
                    to=msg["to"],
                    kind="text",
                    body={"text": msg["text"]},
                    turn_id=turn_id,
                )
                .on_conflict_do_nothing(index_elements=[outbound_messages.c.idempotency_key])
            )
    await outbox.send_all(engine, channels, provider, f"turn:{turn_id}", [msg], turn_id=turn_id)
    return True
