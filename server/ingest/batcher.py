"""Webhook hot path with natural batching ("group commit"), in two stages.

Insert stage: concurrent webhook requests share one INSERT; each request is answered as soon as its own rows are
committed (the architecture's rule: 200 only after the insert is durable). ``INSERTERS`` tasks each take
whatever requests are waiting when they become free (no timer, so an idle system adds no latency); under load
the batches grow by themselves, which cuts PostgreSQL commits per message.

Schedule stage: one task takes the stored messages of every batch finished meanwhile and schedules their turns
in one Redis call. The stages overlap, so a request's latency is one PostgreSQL commit, not a commit plus a Redis
round trip. The queue between them is bounded (``SCHEDULE_BACKLOG`` batches): a slow Redis slows intake instead
of piling up work in memory. A process that dies between the stages leaves stored, unscheduled rows, which the
worker's sweeper schedules (``server.worker.sweeper.sweep_turns``).

Failures: an insert error is delivered to every request of the batch (the webhook answers 503 and the provider
redelivers); a scheduling error is logged (the rows are stored; the sweeper schedules them when Redis is back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from core.config import Settings
from server.channels.records import InboundMessage
from server.ingest.schedule import schedule_args, schedule_script

log = logging.getLogger(__name__)

# All rows travel as ONE JSON document (serialised by orjson) and are unpacked by PostgreSQL:
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
#: insert batches in flight at once (each holds one pooled connection while it inserts). Measured with
#: ``bench/bench_ingest.py``: 1 gives the largest batches and the most requests/s; more only add commits.
INSERTERS = 1
#: stored batches waiting for the schedule stage before the insert stage waits for it.
SCHEDULE_BACKLOG = 64


class StaleConnection(psycopg.OperationalError):
    """The pooled connection was dead (its server restarted or dropped it); another one may work."""


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
        self._to_schedule: asyncio.Queue[list[tuple[int, InboundMessage]]] = asyncio.Queue(SCHEDULE_BACKLOG)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set with the tasks
        self._script: Any = None

    async def store(self, messages: Sequence[InboundMessage]) -> list[tuple[int, InboundMessage]]:
        """Insert ``messages`` durably (duplicates skipped); their turns are scheduled right after.

        Returns once the rows are committed; the schedule stage then enqueues the new messages' turns.

        Returns:
            ``(inbox id, message)`` for the messages that were new.

        Raises:
            psycopg.Error / psycopg_pool.PoolTimeout: the database failed; nothing of this batch is acknowledged.
        """
        if not messages:
            return []
        if len(self._tasks) < INSERTERS + 1:
            self._start_tasks()
        # The loop is cached: asyncio.get_running_loop() costs a getpid() system call per request.
        fut: asyncio.Future[list[tuple[int, InboundMessage]]] = self._loop.create_future()
        self._queue.put_nowait((messages, fut))
        return await fut

    def _start_tasks(self) -> None:
        """(Re)start the inserters and the scheduler (after a crash, or in a new event loop)."""
        self._loop = asyncio.get_running_loop()
        running = {t.get_name() for t in self._tasks}
        for name, factory in [(f"ingest-insert-{i}", self._insert_stage) for i in range(INSERTERS)] + [
            ("ingest-schedule", self._schedule_stage)
        ]:
            if name not in running:
                task = self._loop.create_task(factory(), name=name)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _insert_stage(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Let the requests that are already runnable reach the queue too: larger batches, same latency.
            await asyncio.sleep(0)
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                results = await self._insert(batch)
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), r in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(r)
            new = [pair for r in results for pair in r]
            if new:
                await self._to_schedule.put(new)  # waits only when the schedule stage is far behind

    async def _schedule_stage(self) -> None:
        while True:
            new = await self._to_schedule.get()
            while not self._to_schedule.empty():
                new += self._to_schedule.get_nowait()
            try:
                await self._schedule(new)
            except Exception as exc:  # stored already: the worker's sweeper schedules these when Redis is back
                log.error("could not schedule %d turn(s): %s", len(new), type(exc).__name__)

    async def _insert(
        self, batch: list[tuple[Sequence[InboundMessage], Any]]
    ) -> list[list[tuple[int, InboundMessage]]]:
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
        document = orjson.dumps(rows_in).decode()
        try:
            rows = await self._execute(document)
        except StaleConnection:
            # Connections idle in the pool died with their server (a restart): drop them all, try once more.
            # Not checking each connection on checkout keeps a round trip off every batch.
            await self.pool.check()
            rows = await self._execute(document)
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

    async def _execute(self, document: str) -> list[tuple[int, str]]:
        conn = None
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(_INSERT, (document,))
                return await cur.fetchall()
        except psycopg.OperationalError as exc:
            if conn is not None and (conn.broken or conn.closed):
                raise StaleConnection(str(exc)) from exc
            raise

    async def _schedule(self, new: list[tuple[int, InboundMessage]]) -> None:
        if not new:
            return
        if self._script is None:
            # EVALSHA: Redis keeps the compiled script; each call sends only its hash and arguments.
            self._script = self.redis.register_script(schedule_script())
        keys, args = schedule_args(self.settings, [(m.provider, m.chat_id, i) for i, m in new], time.time())
        await self._script(keys=keys, args=args)

    async def aclose(self) -> None:
        """Stop the stages; stored messages still waiting for the schedule stage are scheduled first (best effort).

        Whatever is left (Redis down, the process killed) is scheduled later by the worker's sweeper.
        """
        for t in list(self._tasks):
            t.cancel()
        self._tasks.clear()
        new: list[tuple[int, InboundMessage]] = []
        while not self._to_schedule.empty():
            new += self._to_schedule.get_nowait()
        if new:
            try:
                await asyncio.wait_for(self._schedule(new), 5)
            except Exception as exc:
                log.warning("left %d turn(s) to the sweeper: %s", len(new), type(exc).__name__)
