"""Durable inbox: inbound messages stored exactly once (unique provider message id), statuses applied.

The webhook answers 200 only after the insert (``server.ingest.IngestBatcher``) committed; a duplicate
delivery inserts nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import inbox
from server.channels.records import StatusUpdate

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


async def pending_chats(engine: AsyncEngine, older_than_seconds: float) -> list[tuple[str, str]]:
    """``(provider, chat_id)`` of chats with unclaimed messages older than the given age (for the sweeper)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(inbox.c.provider, inbox.c.chat_id)
                .where(
                    inbox.c.turn_id.is_(None),
                    inbox.c.received_at < text(f"now() - interval '{float(older_than_seconds)} seconds'"),
                )
                .distinct()
            )
        ).all()
    return [(r.provider, r.chat_id) for r in rows]
