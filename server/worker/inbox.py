"""Durable inbox: a chat's stored messages claimed as a turn, turns finished, unscheduled chats found.

Messages are stored exactly once (unique provider message id) by the web process
(:class:`server.ingest.IngestBatcher`), which answers the webhook only after the insert committed; a duplicate
delivery inserts nothing. The worker claims them here (:func:`claim_turn`) and marks them processed
(:func:`finish_turn`); the sweeper finds the ones never scheduled (:func:`pending_chats`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import inbox, turns


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


async def claim_turn(engine: AsyncEngine, provider: str, chat_id: str) -> tuple[int, list[dict[str, Any]]] | None:
    """Resume the chat's unfinished turn, or claim all its unclaimed messages as a new turn.

    Returns:
        ``(turn id, messages in arrival order with inbox_id)`` or ``None`` when there is nothing to do.
    """
    async with engine.begin() as conn:
        running = (
            await conn.execute(
                select(turns.c.id)
                .where(turns.c.provider == provider, turns.c.chat_id == chat_id, turns.c.status == "running")
                .order_by(turns.c.id)
                .limit(1)
                .with_for_update()
            )
        ).first()
        if running is not None:
            turn_id = running.id
            await conn.execute(update(turns).where(turns.c.id == turn_id).values(attempts=turns.c.attempts + 1))
        else:
            # The chat lock makes us the only claimer of this chat; check first so no empty turn is written.
            waiting = (
                await conn.execute(
                    select(inbox.c.id)
                    .where(and_(inbox.c.provider == provider, inbox.c.chat_id == chat_id, inbox.c.turn_id.is_(None)))
                    .limit(1)
                )
            ).first()
            if waiting is None:
                return None
            turn_id = (
                await conn.execute(
                    insert(turns)
                    .values(provider=provider, chat_id=chat_id, thread_id=f"{provider}:{chat_id}")
                    .returning(turns.c.id)
                )
            ).scalar_one()
            await conn.execute(
                update(inbox)
                .where(and_(inbox.c.provider == provider, inbox.c.chat_id == chat_id, inbox.c.turn_id.is_(None)))
                .values(turn_id=turn_id)
            )
        rows = (
            await conn.execute(
                select(inbox.c.id, inbox.c.message)
                .where(inbox.c.turn_id == turn_id)
                .order_by(inbox.c.sent_at, inbox.c.id)
            )
        ).all()
    return turn_id, [dict(r.message, inbox_id=r.id) for r in rows]


async def finish_turn(
    engine: AsyncEngine, turn_id: int, *, status: str = "done", error: str | None = None, graph_ms: int | None = None
) -> None:
    """Mark a turn finished and its messages processed."""
    async with engine.begin() as conn:
        await conn.execute(
            update(turns)
            .where(turns.c.id == turn_id)
            .values(status=status, finished_at=func.now(), error=error, graph_ms=graph_ms)
        )
        await conn.execute(update(inbox).where(inbox.c.turn_id == turn_id).values(processed_at=func.now()))
