"""Durable inbox: a chat's stored messages claimed as a turn, turns finished, unscheduled chats found.

Messages are stored exactly once (unique provider message id) by the web process
(:class:`server.ingest.IngestBatcher`), which answers the webhook only after the insert committed; a duplicate
delivery inserts nothing. The worker claims them here (:func:`claim_turn`) and marks them processed
(:func:`finish_turn`); the sweeper finds the ones never scheduled (:func:`pending_chats`).

A turn takes at most ``TURN_MAX_MESSAGES`` messages and ``TURN_MAX_CHARS`` characters of text (always at least
one message), oldest first: one chat flooding us cannot hold a worker for long while others wait. The rest stays
unclaimed, in order, and the turn runner schedules it as the chat's next turn at once
(:func:`schedule_rest`). Messages of unknown senders keep only their ids and type (:func:`minimise`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import inbox

# One statement (one round trip) per claim. The chat's running turn, if any, is locked and its attempts counted,
# and its messages are the turn's; otherwise the unclaimed messages within the caps (the first one always) get a
# new turn. Data-modifying CTEs all run once, on the statement's snapshot: a message stored meanwhile stays
# unclaimed for the next turn, and no turn row is written when no message waits (the chat lock makes us the only
# claimer of the chat). Rows: ``turn_id, id, message, resumed, left`` in arrival order (``left``: unclaimed messages
# the caps left, for a new turn); a running turn without messages gives one row with ``id`` NULL; no row: nothing
# to do.
_CLAIM = text(
    """
    WITH running AS (
      SELECT id FROM turns
      WHERE provider = :provider AND chat_id = :chat_id AND status = 'running'
      ORDER BY id LIMIT 1 FOR UPDATE
    ), bumped AS (
      UPDATE turns SET attempts = attempts + 1 WHERE id = (SELECT id FROM running) RETURNING id
    ), waiting AS (
      SELECT id,
             row_number() OVER w AS n,
             sum(coalesce(length(message->>'text'), 0)) OVER w AS chars
      FROM inbox
      WHERE provider = :provider AND chat_id = :chat_id AND turn_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM running)
      WINDOW w AS (ORDER BY sent_at, id)
    ), picked AS (
      SELECT id FROM waiting WHERE n = 1 OR (n <= :max_messages AND chars <= :max_chars)
    ), new_turn AS (
      INSERT INTO turns (provider, chat_id, thread_id)
      SELECT :provider, :chat_id, :thread_id WHERE EXISTS (SELECT 1 FROM picked)
      RETURNING id
    ), claimed AS (
      UPDATE inbox SET turn_id = (SELECT id FROM new_turn) FROM picked
      WHERE inbox.id = picked.id
      RETURNING inbox.turn_id, inbox.id, inbox.message, inbox.sent_at
    )
    SELECT turn_id, id, message, resumed,
           (SELECT count(*) FROM waiting) - (SELECT count(*) FROM picked) AS left
    FROM (
      SELECT b.id AS turn_id, i.id, i.message, i.sent_at, true AS resumed
      FROM bumped b LEFT JOIN inbox i ON i.turn_id = b.id
      UNION ALL
      SELECT turn_id, id, message, sent_at, false FROM claimed
    ) t
    ORDER BY sent_at, id
    """
)


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


@dataclass(frozen=True)
class Claim:
    """A claimed turn (:func:`claim`).

    Attributes:
        turn_id: ``turns.id``.
        messages: the turn's messages in arrival order, each with ``inbox_id``.
        resumed: the chat's unfinished turn was resumed (its checkpoint may hold part of the turn); False for a
            new turn, whose thread holds no checkpoint of it.
        left: unclaimed messages of the chat the per-turn caps left for the next turn (``None`` when resumed).
    """

    turn_id: int
    messages: list[dict[str, Any]]
    resumed: bool
    left: int | None


async def claim(
    engine: AsyncEngine,
    provider: str,
    chat_id: str,
    *,
    max_messages: int | None = None,
    max_chars: int | None = None,
) -> Claim | None:
    """Resume the chat's unfinished turn, or claim its unclaimed messages (oldest first, within the caps) as a new turn.

    Args:
        engine: the database.
        provider: channel name.
        chat_id: the chat.
        max_messages: at most this many messages (``TURN_MAX_MESSAGES``); ``None``: no cap.
        max_chars: at most this many characters of text in all (``TURN_MAX_CHARS``); the first message is
            taken whatever its length; ``None``: no cap.

    Returns:
        The :class:`Claim`, or ``None`` when there is nothing to do. Messages beyond the caps stay unclaimed (see
        :func:`schedule_rest`).
    """
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                _CLAIM,
                {
                    "provider": provider,
                    "chat_id": chat_id,
                    "thread_id": f"{provider}:{chat_id}",
                    "max_messages": max_messages if max_messages is not None else 2**62,
                    "max_chars": max_chars if max_chars is not None else 2**62,
                },
            )
        ).all()
    if not rows:
        return None
    first = rows[0]
    return Claim(
        turn_id=first.turn_id,
        messages=[dict(r.message, inbox_id=r.id) for r in rows if r.id is not None],
        resumed=bool(first.resumed),
        left=None if first.resumed else int(first.left),
    )


async def claim_turn(
    engine: AsyncEngine,
    provider: str,
    chat_id: str,
    *,
    max_messages: int | None = None,
    max_chars: int | None = None,
) -> tuple[int, list[dict[str, Any]]] | None:
    """:func:`claim` as ``(turn id, messages in arrival order with inbox_id)``, or ``None`` when there is nothing to do."""
    claimed = await claim(engine, provider, chat_id, max_messages=max_messages, max_chars=max_chars)
    return None if claimed is None else (claimed.turn_id, claimed.messages)


# Finish a turn in one statement: the turn's status and its messages processed.
_FINISH = text(
    """
    WITH finished AS (
      UPDATE turns SET status = :status, finished_at = now(), error = :error, graph_ms = :graph_ms
      WHERE id = :turn_id RETURNING id
    )
    UPDATE inbox SET processed_at = now() WHERE turn_id = :turn_id
    """
)


async def finish_turn(
    engine: AsyncEngine, turn_id: int, *, status: str = "done", error: str | None = None, graph_ms: int | None = None
) -> None:
    """Mark a turn finished and its messages processed."""
    async with engine.begin() as conn:
        await conn.execute(_FINISH, {"turn_id": turn_id, "status": status, "error": error, "graph_ms": graph_ms})


async def has_pending(engine: AsyncEngine, provider: str, chat_id: str) -> bool:
    """Whether the chat has unclaimed messages (those a capped turn left for the next one, or newer ones)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(inbox.c.id)
                .where(inbox.c.provider == provider, inbox.c.chat_id == chat_id, inbox.c.turn_id.is_(None))
                .limit(1)
            )
        ).first()
    return row is not None


async def schedule_rest(
    redis: ArqRedis, engine: AsyncEngine, provider: str, chat_id: str, after_turn: int, *, pending: bool | None = None
) -> bool:
    """Enqueue the chat's next turn at once when messages wait (call after the turn's lock is released).

    ``pending`` is whether messages wait, when the caller knows (a new turn's :attr:`Claim.left`: what the caps left;
    messages stored later belong to a burst with its own job); ``None``: look in the inbox. The job id ``rest:<provider>:<chat>:<turn>`` makes a re-run of the same turn enqueue nothing twice. Messages
    of a burst still open (newer than the turn) are left to that burst's own debounced job, which the turn job
    defers to (it finds the burst not yet due).

    Returns:
        True when a job was enqueued.
    """
    if not (await has_pending(engine, provider, chat_id) if pending is None else pending):
        return False
    job = await redis.enqueue_job("run_turn", provider, chat_id, _job_id=f"rest:{provider}:{chat_id}:{after_turn}")
    return job is not None


#: What a message of an unknown sender keeps (``message`` keys); its raw payload keeps ``id`` and ``type``.
MINIMAL_KEYS = ("provider", "provider_message_id", "chat_id", "sender", "kind", "timestamp")


async def minimise(engine: AsyncEngine, turn_id: int) -> int:
    """Drop the content of a turn's messages (unknown senders): keep ids and type, in ``message`` and ``raw_payload``.

    Returns:
        How many inbox rows were minimised.
    """
    async with engine.begin() as conn:
        res = await conn.execute(
            text(
                """
                UPDATE inbox SET
                  raw_payload = jsonb_build_object('id', provider_message_id, 'type', type, 'minimal', true),
                  message = (SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb)
                             FROM jsonb_each(message) WHERE key = ANY(CAST(:keep AS text[])))
                WHERE turn_id = :turn_id
                """
            ),
            {"turn_id": turn_id, "keep": list(MINIMAL_KEYS)},
        )
    return res.rowcount or 0
