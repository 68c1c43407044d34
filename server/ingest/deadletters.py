"""Dead letters: inbound messages that could not be stored, kept with the raw request body to be replayed later.

A message lands here when validation refuses it (:mod:`server.ingest.validate`) or the database refuses its row
(:class:`server.ingest.batcher.IngestBatcher`); the webhook still answers 200, so the provider stops redelivering
it. ``procure deadletters list|replay`` (:mod:`server.cli.deadletters`) shows them and replays them: the raw body
is parsed again with the current code and the messages go through the same checks and the same batched insert as
a webhook, so the stored ones are scheduled like any other. A replay that fails again keeps the letter pending
with the new reason. Table: ``dead_letters`` in ``core/db.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.types.json import Jsonb

from server.channels.errors import PayloadError
from server.channels.protocol import Channel
from server.channels.records import InboundMessage
from server.ingest.batcher import IngestBatcher
from server.ingest.validate import ID_LIMITS, MessageRefused, bound_raw, normalise_message

__all__ = ["DeadLetter", "get_letters", "list_letters", "record", "replay"]

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO dead_letters (provider, reason, raw_body, message, provider_message_id)
VALUES (%s, %s, %s, %s, %s)
"""
_COLUMNS = "id, provider, reason, raw_body, message, provider_message_id, received_at, replayed_at, replay_result"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One ``dead_letters`` row.

    Attributes:
        id: row id (what ``procure deadletters replay ID`` takes).
        provider: the channel name, e.g. ``"meta"``.
        reason: why the message was not stored (the latest reason after a failed replay).
        raw_body: the webhook request body exactly as received.
        message: the parsed message (``InboundMessage.to_dict()``), when parsing got that far.
        provider_message_id: the message's id, when it had a storable one.
        received_at: when the letter was written (UTC).
        replayed_at: when a replay stored it; ``None`` while pending.
        replay_result: what the last replay did (success or the failure), ``None`` before any.
    """

    id: int
    provider: str
    reason: str
    raw_body: bytes
    message: dict[str, Any] | None
    provider_message_id: str | None
    received_at: datetime
    replayed_at: datetime | None
    replay_result: str | None

    def preview(self, width: int = 80) -> str:
        """The first ``width`` characters of the raw body on one line (control characters escaped)."""
        text = self.raw_body[: width * 4].decode("utf-8", errors="replace")
        flat = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
        return flat[:width]


def _text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "")[:limit]
    return value or None


async def record(
    pool: Any, provider: str, raw_body: bytes, refused: Sequence[tuple[InboundMessage | None, str]]
) -> None:
    """Write one dead letter per refused message, with the request's raw body.

    Every value is made storable first (NULs removed, the id cut to its column, the message's nesting bounded),
    so writing a dead letter cannot itself be refused.

    Args:
        pool: psycopg ``AsyncConnectionPool`` (autocommit connections).
        provider: the channel name.
        raw_body: the request body exactly as received.
        refused: ``(message or None, reason)`` pairs.

    Raises:
        psycopg.Error / psycopg_pool.PoolTimeout / OSError: the database is unavailable (answer 503).
    """
    if not refused:
        return
    params = []
    for message, reason in refused:
        parsed = None
        pmid = None
        if message is not None:
            parsed, _ = bound_raw(message.to_dict())
            pmid = _text(message.provider_message_id, ID_LIMITS["provider_message_id"])
        params.append(
            (
                _text(provider, 20) or "unknown",
                _text(reason, 2000) or "refused",
                raw_body,
                Jsonb(parsed, dumps=_dumps) if parsed is not None else None,
                pmid,
            )
        )
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(_INSERT, params)
    for message, reason in refused:
        log.warning(
            "%s message %s dead-lettered: %s",
            provider,
            message.provider_message_id[:80] if message else "<unparsed>",
            reason,
        )


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _letter(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        id=row[0],
        provider=row[1],
        reason=row[2],
        raw_body=bytes(row[3]),
        message=row[4],
        provider_message_id=row[5],
        received_at=row[6],
        replayed_at=row[7],
        replay_result=row[8],
    )


async def list_letters(pool: Any, *, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
    """Dead letters, oldest first: the pending ones (never replayed successfully), or all with ``include_replayed``.

    Args:
        pool: psycopg ``AsyncConnectionPool``.
        include_replayed: also list the letters a replay has stored.
        limit: at most this many rows.
    """
    where = "" if include_replayed else "WHERE replayed_at IS NULL"
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM dead_letters {where} ORDER BY id LIMIT %s", (limit,))
        return [_letter(r) for r in await cur.fetchall()]


async def get_letters(pool: Any, ids: Sequence[int]) -> list[DeadLetter]:
    """The dead letters with these ids, by id (missing ids are simply absent)."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ANY(%s) ORDER BY id", (list(ids),))
        return [_letter(r) for r in await cur.fetchall()]


async def replay(
    pool: Any, channels: Mapping[str, Channel], ingest: IngestBatcher, letter: DeadLetter, max_text_chars: int
) -> tuple[bool, str]:
    """Parse a dead letter's raw body again with the current code and store what can now be stored.

    The body's messages go through :func:`~server.ingest.validate.normalise_message` and
    :meth:`IngestBatcher.store_checked` like a webhook's, so stored messages are scheduled the same way; messages
    of the body that were stored before are duplicates and left alone. The letter counts as replayed when its
    own message (its ``provider_message_id``; every message of the body when it has none) is now in the inbox:
    then ``replayed_at`` and ``replay_result`` are set. Otherwise it stays pending with the new reason and the
    attempt in ``replay_result``.

    Returns:
        ``(replayed, what happened)``.

    Raises:
        psycopg.Error / OSError: the database is unavailable (the letter is unchanged).
    """
    now = datetime.now(UTC)
    channel = channels.get(letter.provider)
    reasons: list[str] = []
    messages: list[InboundMessage] = []
    if channel is None:
        reasons.append(f"channel {letter.provider!r} is not configured")
    else:
        try:
            messages, _ = channel.parse(letter.raw_body, "application/json")
        except PayloadError as exc:
            reasons.append(f"payload refused: {exc}")
    mine = [m for m in messages if letter.provider_message_id in (None, m.provider_message_id)]
    if channel is not None and not reasons and not mine:
        reasons.append("the body no longer yields this message")
    good = []
    for m in mine:
        try:
            good.append(normalise_message(m, max_text_chars, now))
        except MessageRefused as exc:
            reasons.append(str(exc))
    result = await ingest.store_checked(good)
    reasons += [reason for _, reason in result.refused]
    if reasons:
        reason = "; ".join(reasons)
        outcome = f"replay failed at {now.isoformat(timespec='seconds')}: {reason}"
        await _update(
            pool,
            "UPDATE dead_letters SET reason = %s, replay_result = %s WHERE id = %s",
            (_text(reason, 2000), _text(outcome, 2000), letter.id),
        )
        return False, outcome
    stored, duplicates = len(result.new), len(good) - len(result.new)
    outcome = f"stored {stored} message(s), {duplicates} already in the inbox"
    await _update(
        pool, "UPDATE dead_letters SET replayed_at = now(), replay_result = %s WHERE id = %s", (outcome, letter.id)
    )
    return True, outcome


async def _update(pool: Any, sql: str, params: tuple[Any, ...]) -> None:
    async with pool.connection() as conn:
        await conn.execute(sql, params)
