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

Failures: when the batched INSERT fails for a data reason (:func:`is_data_error`: PostgreSQL refused a value, or
a row could not be serialised), the batch is retried row by row: the good rows are stored and answered, each bad
row is handed back to its request as refused (the webhook writes it to ``dead_letters``), and no neighbour is
harmed. Any other insert error (the database unreachable) is delivered to every request of the batch (the webhook
answers 503 and the provider redelivers). A scheduling error is logged (the rows are stored; the sweeper schedules
them when Redis is back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

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


#: SQLSTATE classes that blame the data, not the server: 22 data exception (NUL character, value too long, out
#: of range), 23 integrity constraint violation, 54 program limit exceeded (nesting too deep for the server).
#: https://www.postgresql.org/docs/16/errcodes-appendix.html
DATA_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})


def is_data_error(exc: BaseException) -> bool:
    """Whether an insert failed because of what was inserted (retry row by row) rather than an outage.

    True for serialisation errors (``TypeError``/``ValueError``, e.g. orjson's nesting limit) and PostgreSQL
    errors of the SQLSTATE classes in :data:`DATA_SQLSTATE_CLASSES` on a live connection; false for everything
    else (connection failures, pool timeouts, ``OSError``).
    """
    if isinstance(exc, TypeError | ValueError):
        return True
    if isinstance(exc, psycopg.Error) and not isinstance(exc, StaleConnection):
        return (exc.sqlstate or "")[:2] in DATA_SQLSTATE_CLASSES
    return False


class StoreResult(NamedTuple):
    """What became of one request's messages.

    Attributes:
        new: ``(inbox id, message)`` for the messages stored now (duplicates of earlier deliveries are absent).
        refused: ``(message, reason)`` for the messages the database would not take; nothing of them is stored.
    """

    new: list[tuple[int, InboundMessage]]
    refused: list[tuple[InboundMessage, str]]


def _row(m: InboundMessage) -> dict[str, Any]:
    """One ``inbox`` row of the INSERT's JSON document."""
    return {
        "provider": m.provider,
        "provider_message_id": m.provider_message_id,
        "chat_id": m.chat_id,
        "sender": m.sender,
        "type": str(m.kind),
        "message": m.to_dict(),
        "raw_payload": m.raw or {},
        "sent_at": m.timestamp.isoformat(),
    }


def refusal(exc: BaseException) -> str:
    """A dead letter's reason for a row the database (or the serialiser) refused: the error's class and text."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"database refused the row: {type(exc).__name__}: {first}"[:500].replace("\x00", "")


class IngestBatcher:
    """Store inbound messages durably and schedule their turns, batching concurrent callers.

    Args:
        pool: psycopg ``AsyncConnectionPool`` with autocommit connections.
        redis: arq's Redis client.
        settings: for the debounce windows and the queue name.
    """

    def __init__(self, pool: Any, redis: Any, settings: Settings) -> None:
        self.pool, self.redis, self.settings = pool, redis, settings
        self._queue: asyncio.Queue[tuple[Sequence[InboundMessage], asyncio.Future[StoreResult]]] = asyncio.Queue()
        self._to_schedule: asyncio.Queue[list[tuple[int, InboundMessage]]] = asyncio.Queue(SCHEDULE_BACKLOG)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set with the tasks
        self._script: Any = None

    async def store(self, messages: Sequence[InboundMessage]) -> list[tuple[int, InboundMessage]]:
        """Insert ``messages`` durably (duplicates skipped); their turns are scheduled right after.

        Returns once the rows are committed; the schedule stage then enqueues the new messages' turns. Messages
        the database refuses are logged and left out: callers that keep them (the webhook writes them to
        ``dead_letters``) use :meth:`store_checked`.

        Returns:
            ``(inbox id, message)`` for the messages that were new.

        Raises:
            psycopg.Error / psycopg_pool.PoolTimeout: the database failed; nothing of this batch is acknowledged.
        """
        result = await self.store_checked(messages)
        for m, reason in result.refused:
            log.error("%s message %s not stored: %s", m.provider, m.provider_message_id, reason)
        return result.new

    async def store_checked(self, messages: Sequence[InboundMessage]) -> StoreResult:
        """Insert ``messages`` durably, reporting the ones the database refused instead of failing them all.

        Returns:
            the new messages and the refused ones with their reasons (see :class:`StoreResult`).

        Raises:
            psycopg.Error / psycopg_pool.PoolTimeout / OSError: the database is unavailable; nothing of this
                request is acknowledged (some rows may be stored; a redelivery finds them as duplicates and the
                worker's sweeper schedules them).
        """
        if not messages:
            return StoreResult([], [])
        if len(self._tasks) < INSERTERS + 1:
            self._start_tasks()
        # The loop is cached: asyncio.get_running_loop() costs a getpid() system call per request.
        fut: asyncio.Future[StoreResult] = self._loop.create_future()
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
                results: list[StoreResult | BaseException] = [StoreResult(r, []) for r in await self._insert(batch)]
            except Exception as exc:
                if not is_data_error(exc):
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                log.warning(
                    "batched insert of %d request(s) refused (%s); storing row by row", len(batch), type(exc).__name__
                )
                results = await self._insert_rows(batch)
            new: list[tuple[int, InboundMessage]] = []
            for (_, fut), r in zip(batch, results, strict=True):
                if isinstance(r, BaseException):
                    if not fut.done():
                        fut.set_exception(r)
                    continue
                new += r.new
                if not fut.done():
                    fut.set_result(r)
            if new:
                await self._to_schedule.put(new)  # waits only when the schedule stage is far behind

    async def _schedule_stage(self) -> None:
        while True:
            new = await self._to_schedule.get()
            taken = 1
            while not self._to_schedule.empty():
                new += self._to_schedule.get_nowait()
                taken += 1
            try:
                await self._schedule(new)
            except Exception as exc:  # stored already: the worker's sweeper schedules these when Redis is back
                log.error("could not schedule %d turn(s): %s", len(new), type(exc).__name__)
            finally:
                for _ in range(taken):
                    self._to_schedule.task_done()

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every stored message has been through the schedule stage (for short-lived callers).

        Returns:
            ``False`` when ``timeout`` seconds passed first (the sweeper schedules the rest).
        """
        try:
            await asyncio.wait_for(self._to_schedule.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def _insert(
        self, batch: list[tuple[Sequence[InboundMessage], Any]]
    ) -> list[list[tuple[int, InboundMessage]]]:
        document = orjson.dumps([_row(m) for msgs, _ in batch for m in msgs]).decode()
        rows = await self._run(document)
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

    async def _insert_rows(
        self, batch: list[tuple[Sequence[InboundMessage], Any]]
    ) -> list[StoreResult | BaseException]:
        """Each message of ``batch`` in its own INSERT: a refused row is reported, never fails its neighbours.

        An outage part-way fails the requests not finished yet (their stored rows are found as duplicates on
        redelivery and scheduled by the sweeper).
        """
        out: list[StoreResult | BaseException] = []
        for i, (msgs, _) in enumerate(batch):
            result = StoreResult([], [])
            try:
                for m in msgs:
                    try:
                        rows = await self._run(orjson.dumps([_row(m)]).decode())
                    except Exception as exc:
                        if not is_data_error(exc):
                            raise
                        result.refused.append((m, refusal(exc)))
                        continue
                    if rows:  # empty: a duplicate (ON CONFLICT DO NOTHING)
                        result.new.append((rows[0][0], m))
            except Exception as exc:
                out += [exc] * (len(batch) - i)
                break
            out.append(result)
        return out

    async def _run(self, document: str) -> list[tuple[int, str]]:
        try:
            return await self._execute(document)
        except StaleConnection:
            # Connections idle in the pool died with their server (a restart): drop them all, try once more.
            # Not checking each connection on checkout keeps a round trip off every batch.
            await self.pool.check()
            return await self._execute(document)

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
