"""Webhook hot path with natural batching ("group commit").

Concurrent requests share one INSERT and one Redis round trip, and each request still answers only after its
own rows are committed.

A single consumer takes whatever requests are waiting when it becomes free (no timer, so an idle system adds no
latency); under load the batches grow by themselves, which cuts PostgreSQL commits and Redis round trips per
message. Failures are delivered to every request of the batch (the webhook answers 503, Meta retries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from core.config import Settings
from server.channels.base import InboundMessage

log = logging.getLogger(__name__)

# All rows travel as ONE JSON document (serialised by the C json encoder) and are unpacked by PostgreSQL:
# much cheaper per row than binding eight arrays, which psycopg would quote element by element.
_INSERT = """
INSERT INTO inbox (provider, provider_message_id, chat_id, sender, type, message, raw_payload, sent_at)
SELECT r.provider, r.provider_message_id, r.chat_id, r.sender, r.type, r.message, r.raw_payload, r.sent_at
FROM jsonb_to_recordset(%s::jsonb) AS r(provider text, provider_message_id text, chat_id text, sender text,
                                        type text, message jsonb, raw_payload jsonb, sent_at timestamptz)
ON CONFLICT (provider_message_id) DO NOTHING
RETURNING id, provider_message_id
"""
MAX_BATCH = 256


class IngestBatcher:
    """Store inbound messages durably and schedule their turns, batching concurrent callers.

    Args:
        pool: psycopg ``AsyncConnectionPool`` with autocommit connections.
        redis: arq's Redis client.
        settings: for the debounce windows and the queue name.
    """

    def __init__(self, pool: Any, redis: Any, settings: Settings) -> None:
        self.pool, self.redis, self.settings = pool, redis, settings
        self._queue: asyncio.Queue[
            tuple[Sequence[InboundMessage], asyncio.Future[list[tuple[int, InboundMessage]]]]
        ] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._script: Any = None

    async def store(self, messages: Sequence[InboundMessage]) -> list[tuple[int, InboundMessage]]:
        """Insert ``messages`` (duplicates skipped) and schedule the new ones' turns.

        Returns:
            ``(inbox id, message)`` for the messages that were new.

        Raises:
            psycopg.Error / psycopg_pool.PoolTimeout: the database failed; nothing of this batch is acknowledged.
        """
        if not messages:
            return []
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        fut: asyncio.Future[list[tuple[int, InboundMessage]]] = asyncio.get_running_loop().create_future()
        await self._queue.put((messages, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                results = await self._insert(batch)
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            try:
                await self._schedule([pair for r in results for pair in r])
            except Exception as exc:  # stored already: the worker's sweeper schedules these when Redis is back
                log.error("could not schedule turns: %s", type(exc).__name__)
            for (_, fut), r in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(r)

    async def _insert(
        self, batch: list[tuple[Sequence[InboundMessage], Any]]
    ) -> list[list[tuple[int, InboundMessage]]]:
        import json

        rows_in = [
            {
                "provider": m.provider,
                "provider_message_id": m.provider_message_id,
                "chat_id": m.chat_id,
                "sender": m.sender,
                "type": str(m.kind),
                "message": m.to_dict(),
                "raw_payload": m.raw or {},
                "sent_at": m.timestamp.isoformat(),
            }
            for msgs, _ in batch
            for m in msgs
        ]
        async with self.pool.connection() as conn:
            cur = await conn.execute(_INSERT, (json.dumps(rows_in, separators=(",", ":")),))
            rows = await cur.fetchall()
        ids = {pmid: rid for rid, pmid in rows}
        out: list[list[tuple[int, InboundMessage]]] = []
        for msgs, _ in batch:
            mine = []
            for m in msgs:
                rid = ids.pop(m.provider_message_id, None)  # pop: a duplicate later in the batch is not new
                if rid is not None:
                    mine.append((rid, m))
            out.append(mine)
        return out

    async def _schedule(self, new: list[tuple[int, InboundMessage]]) -> None:
        if not new:
            return
        from server.turns import schedule_args, schedule_script

        now = time.time()
        if self._script is None:
            # EVALSHA: Redis keeps the compiled script; each call sends only its hash and arguments.
            self._script = self.redis.register_script(schedule_script())
        async with self.redis.pipeline(transaction=False) as pipe:
            for inbox_id, m in new:
                keys_and_args = schedule_args(self.settings, m.provider, m.chat_id, inbox_id, now)
                await self._script(keys=keys_and_args[:4], args=keys_and_args[4:], client=pipe)
            await pipe.execute()

    async def aclose(self) -> None:
        """Stop the consumer task."""
        if self._task is not None:
            self._task.cancel()
