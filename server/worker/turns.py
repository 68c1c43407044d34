"""Turns: a chat's burst of messages merged into one graph run, its outbox sent (the ``run_turn`` job's body).

Scheduling happens in the web process (:mod:`server.ingest.schedule`: the debounced ``run_turn`` job per burst).
Running (worker): a Redis lock per chat gives one turn per chat at a time across workers; the turn claims
every unclaimed inbox row of the chat in PostgreSQL (:func:`server.worker.inbox.claim`), runs the procurement
graph with the Postgres checkpointer (``thread_id`` = ``<provider>:<chat id>``), sends the replies through the
idempotent outbox (:mod:`server.worker.outbox`). The turn's business side effects (approval threads, fulfilment)
are nodes of the graphs (:mod:`nodes.effects`), run with the approval-thread runner and fulfilment queue this
module puts into the Context. Messages that arrive during a turn form the next turn.

Checkpoint durability (LangGraph's ``durability``) is ``"exit"`` (:data:`DURABILITY`): a turn writes one
checkpoint, when its graph run ends, instead of one per step (six or more per turn, ~20 KB and a dozen database
round trips). When the run ends with an exception, LangGraph still writes the checkpoint of the failing step
with the finished steps' writes, and the job's retry resumes from it. A worker killed during a turn leaves no
checkpoint of that turn: the next job (or the sweeper) finds the turn ``running`` with its claimed messages,
sees that the thread's latest checkpoint is the previous turn's, and runs the turn again from there with the same
messages. Nothing was sent yet (the outbox goes out after the graph), and what the turn's nodes did is
idempotent per message: approval threads and fulfilments by their keys, submissions and amendments by the
message's inbox id (:mod:`tools.requests.changes`). A kill after the graph finished leaves its checkpoint: the
next run only sends what the outbox has not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

import psycopg
from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.db import turns
from core.repo import get_user
from graphs.context import Context
from nodes.compose import t, text_msg
from server import tracing
from server.channels.errors import ChannelSendError
from server.ingest.schedule import debounce_key
from server.worker import outbox
from server.worker.approvals import ApprovalThreadRunner
from server.worker.heartbeat import lock_token
from server.worker.inbox import claim, finish_turn, schedule_rest
from server.worker.unknown import answer_unknown_sender
from tools.storage import ObjectStorage, media_key

log = logging.getLogger(__name__)

#: LangGraph checkpoint durability of a turn: one checkpoint when the run ends (see the module docstring).
DURABILITY: Literal["exit", "async", "sync"] = "exit"
#: Durability in the fault-injection mode (``TEST_STEP_DELAY_SECONDS``): a checkpoint after every step, so a
#: kill between steps exercises resuming from a mid-turn checkpoint (the path a retry takes after a failing step).
STEPWISE_DURABILITY: Literal["exit", "async", "sync"] = "sync"

# Release the chat lock only if we still own it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
"""

# Start a turn in one round trip. KEYS: the chat's burst hash (server.ingest.schedule.debounce_key), its turn lock.
# ARGV: now (unix s), debounce (s), max debounce (s), lock token, lock ttl (ms), 1 when a missing burst means the
# job's message was already claimed (see TurnRunner.run). Returns {"skip"} | {"wait", seconds} | {"busy"} | {"ok"};
# "ok" holds the lock and has closed the burst (later messages open the next one).
_BEGIN = """
local first = redis.call('HGET', KEYS[1], 'first')
local last = redis.call('HGET', KEYS[1], 'last')
if not first or not last then
  if ARGV[6] == '1' then return {'skip'} end
else
  local due = math.min(tonumber(last) + tonumber(ARGV[2]), tonumber(first) + tonumber(ARGV[3]))
  local wait = due - tonumber(ARGV[1])
  if wait > 0.05 then return {'wait', tostring(wait)} end
end
if not redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[5]) then return {'busy'} end
redis.call('DEL', KEYS[1])
return {'ok'}
"""

#: Prefix of the ids of the ``run_turn`` jobs the webhook schedules, one per burst, named after the burst's first
#: stored message (``turn:<provider>:<chat id>:<inbox id>``, :func:`server.ingest.schedule.schedule_args`).
SCHEDULED_JOB_PREFIX = "turn:"


def lock_key(provider: str, chat_id: str) -> str:
    """Redis key of a chat's turn lock."""
    return f"procure:turnlock:{provider}:{chat_id}"


class TurnRunner:
    """Runs turns: claims a chat's inbox rows, runs the procurement graph, hands its outbox to the sender.

    One per worker process. Side effects are graph nodes; the runner only gives them their clients through the
    Context: :attr:`approvals` (the approval graph on the same checkpointer) and ``services.extras["fulfilment"]``
    (the fulfilment queue, when :func:`server.worker.jobs.install` ran).

    Args:
        services: the process services (engine, redis, channels, settings, model).
        procurement: the procurement graph compiled with the Postgres checkpointer.
        approval: the approval graph compiled with the same checkpointer.
    """

    def __init__(self, services: Any, procurement: Any, approval: Any) -> None:
        self.s = services
        self.procurement = procurement
        self.approval = approval
        self.approvals = ApprovalThreadRunner(approval, self._approval_trace)

    async def _approval_trace(self, thread_id: str, request_id: int, ctx: Context) -> dict[str, Any]:
        return await tracing.turn_config("approval", ctx, thread_id=thread_id, request_id=request_id)

    async def context_for(self, provider: str, chat_id: str, user: Any, turn_id: int | None) -> Context:
        """The per-turn Context: identity from the database, clients from the process."""
        st = self.s.settings
        return Context(
            user=user,
            chat_id=chat_id,
            provider=provider,
            engine=self.s.engine,
            catalog=await self.s.catalog(),
            sites=tuple(st.site_list),
            currency=st.DEFAULT_CURRENCY,
            timezone=st.TIMEZONE,
            chat_model=self.s.chat_model,
            model_name=st.LLM_MODEL or "none",
            context_window=st.CONTEXT_WINDOW_MESSAGES,
            turn_id=turn_id,
            draft_ttl_hours=st.DRAFT_TTL_HOURS,
            approvals=self.approvals,
            fulfilment=self.s.extras.get("fulfilment"),
        )

    async def run(
        self, provider: str, chat_id: str, *, claimed_if_no_burst: bool = False, burst_job: bool = False
    ) -> str:
        """The ``run_turn`` job body: lock the chat, claim, run the graph, send its outbox.

        Args:
            provider: channel name.
            chat_id: the chat.
            claimed_if_no_burst: the job was scheduled by the webhook for a burst and runs for the first time
                (see :func:`run_turn_with_retry_mapping`). Its message was stored before its burst was opened in
                Redis, and a turn closes the burst before it claims, so when no burst is open that turn has
                claimed the message: the job ends without touching the database. Sweeper, catch-up and retried
                jobs pass ``False`` (a turn that failed after closing the burst is retried by its job).
            burst_job: the job is a burst's own (webhook-scheduled) job, the only one the burst has: when it
                starts before the burst is due (a later message moved its due time while arq was starting it),
                it waits here until the burst is due instead of ending. Other jobs end with ``"not due"``: the
                burst's job covers the burst.

        Returns:
            ``"skip"`` (no open burst, see above), ``"not due"``, ``"nothing"`` or ``"turn <id>"``.

        Raises:
            arq.Retry: the chat is busy with another turn, or a retryable send failure (sent parts are kept).
        """
        s = self.s
        token = lock_token()  # names this worker: a dead worker's lock is reclaimed (heartbeat)
        lock_ttl_ms = int((s.settings.TURN_TIMEOUT_SECONDS + 5) * 1000)
        while True:
            begun = await s.redis.eval(
                _BEGIN,
                2,
                debounce_key(provider, chat_id),
                lock_key(provider, chat_id),
                repr(time.time()),
                repr(s.settings.DEBOUNCE_SECONDS),
                repr(s.settings.DEBOUNCE_MAX_SECONDS),
                token,
                lock_ttl_ms,
                "1" if claimed_if_no_burst else "0",
            )
            outcome = begun[0].decode() if isinstance(begun[0], bytes) else str(begun[0])
            if outcome != "wait" or not burst_job:
                break
            await asyncio.sleep(float(begun[1]))  # bounded: a burst is due DEBOUNCE_MAX_SECONDS after it opened
        if outcome == "skip":
            return "skip"
        if outcome == "wait":
            return "not due"
        if outcome == "busy":
            raise Retry(defer=1)
        try:
            st = s.settings
            claimed = await claim(
                s.engine, provider, chat_id, max_messages=st.TURN_MAX_MESSAGES, max_chars=st.TURN_MAX_CHARS
            )
            if claimed is None:
                return "nothing"
            turn_id = claimed.turn_id
            await self._run_claimed(provider, chat_id, turn_id, claimed.messages, resumed=claimed.resumed)
        finally:
            await s.redis.eval(_UNLOCK, 1, lock_key(provider, chat_id), token)
        # What the per-turn caps left is the chat's next turn at once (its messages' own jobs find no burst).
        left = None if claimed.left is None else claimed.left > 0
        await schedule_rest(s.redis, s.engine, provider, chat_id, turn_id, pending=left)
        return f"turn {turn_id}"

    async def fail_running(self, provider: str, chat_id: str, error: str) -> None:
        """Mark the chat's running turn failed and apologise once (idempotent key per turn)."""
        async with self.s.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(turns.c.id).where(
                        turns.c.provider == provider, turns.c.chat_id == chat_id, turns.c.status == "running"
                    )
                )
            ).first()
        if row is None:
            return
        await finish_turn(self.s.engine, row.id, status="failed", error=error)
        msg = text_msg(chat_id, t("turn_failed"))
        try:
            await outbox.send_all(
                self.s.engine, self.s.channels, provider, f"turn:{row.id}:failed", [msg], turn_id=row.id
            )
        except Exception as exc:  # the failure is recorded; the apology is best effort
            log.warning("could not send failure notice: %s", exc)

    async def _run_claimed(
        self, provider: str, chat_id: str, turn_id: int, messages: list[dict[str, Any]], *, resumed: bool = True
    ) -> None:
        s = self.s
        channel = s.channels[provider]
        # The read receipt (and typing indicator) goes out while the turn runs; it has completed before any reply
        # is sent, so the order the person sees is unchanged, but its provider round trip no longer delays the reply.
        read = asyncio.create_task(self._mark_read(channel, messages))
        try:
            await self._answer(provider, chat_id, turn_id, messages, read, resumed=resumed)
        finally:
            await read  # never raises (best effort)

    @staticmethod
    async def _mark_read(channel: Any, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        try:
            await channel.mark_read(messages[-1]["provider_message_id"], typing=True)
        except Exception as exc:  # best effort: a missing read receipt must not stop the reply
            log.info("mark_read failed: %s", exc)

    async def _answer(
        self,
        provider: str,
        chat_id: str,
        turn_id: int,
        messages: list[dict[str, Any]],
        read: asyncio.Task[None],
        *,
        resumed: bool = True,
    ) -> None:
        s = self.s
        user = await get_user(s.engine, wa_id=messages[0].get("sender") or chat_id)
        if user is None:  # one reply per chat per window; the messages keep only ids and type
            await read
            await answer_unknown_sender(
                s.engine, s.channels, provider, chat_id, turn_id, window_hours=s.settings.UNKNOWN_SENDER_REPLY_HOURS
            )
            await finish_turn(s.engine, turn_id, status="done", error="unknown sender")
            return
        await self._store_media(provider, messages)
        ctx = await self.context_for(provider, chat_id, user, turn_id)
        trace = await tracing.turn_config("procurement", ctx, thread_id=f"{provider}:{chat_id}", settings=s.settings)
        config = {**trace, "configurable": {"thread_id": f"{provider}:{chat_id}"}, "recursion_limit": 200}
        started = time.perf_counter()
        # Only a resumed turn can have a checkpoint of its own (a new turn's id is new): a new one skips the look.
        snapshot = await self.procurement.aget_state(config) if resumed else None
        values = (snapshot.values or {}) if snapshot is not None else {}
        if snapshot is not None and values.get("turn_id") == turn_id and not snapshot.next:
            result = values  # the graph finished before a crash; only sending was left
        elif snapshot is not None and values.get("turn_id") == turn_id and snapshot.next:
            result = await self._invoke(None, config, ctx)  # resume from the last checkpoint
        else:
            result = await self._invoke({"inbound": messages, "turn_id": turn_id}, config, ctx)
        graph_ms = int((time.perf_counter() - started) * 1000)
        await read
        await outbox.send_outbox(s.engine, s.channels, provider, turn_id, list(result.get("outbound") or []))
        await finish_turn(s.engine, turn_id, graph_ms=graph_ms)

    async def _store_media(self, provider: str, messages: list[dict[str, Any]]) -> None:
        """Download each message's media at once (provider links expire) into object storage.

        Only the storage key goes into the message (and so into graph state); the bytes never do. A download
        that fails leaves the message without a key: the person is told the file could not be kept.
        """
        pending = [m for m in messages if m.get("media_id") and not m.get("storage_key")]
        if not pending:
            return
        storage = self.s.extras.get("storage")
        if storage is None:
            storage = self.s.extras["storage"] = ObjectStorage.from_settings(self.s.settings)
        channel = self.s.channels[provider]
        for m in pending:
            key = media_key(provider, m["provider_message_id"])
            try:
                data, mime = await channel.download_media(m["media_id"])
                await storage.aput(key, data, mime or m.get("mime_type") or "application/octet-stream")
                m["storage_key"] = key
            except Exception as exc:  # an expired or missing media id must not stop the turn
                log.warning("media %s could not be stored: %s", m["provider_message_id"], type(exc).__name__)

    async def _invoke(self, payload: Any, config: dict[str, Any], ctx: Context) -> dict[str, Any]:
        delay = self.s.settings.TEST_STEP_DELAY_SECONDS
        if delay <= 0:
            return dict(await self.procurement.ainvoke(payload, config, context=ctx, durability=DURABILITY))
        # Fault-injection mode for crash tests: pause between checkpointed graph steps so a kill lands mid-turn.
        async for _ in self.procurement.astream(
            payload, config, context=ctx, stream_mode="updates", durability=STEPWISE_DURABILITY
        ):
            await asyncio.sleep(delay)
        return dict((await self.procurement.aget_state(config)).values)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is worth retrying: lost database or Redis connections, timeouts, retryable sends."""
    if isinstance(exc, ChannelSendError):
        return exc.retryable
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
    if isinstance(exc, psycopg.OperationalError):
        return True
    return isinstance(exc, (PoolTimeout, RedisConnectionError, RedisTimeout, ConnectionError, TimeoutError, OSError))


async def run_turn_with_retry_mapping(
    runner: TurnRunner, provider: str, chat_id: str, job_try: int = 1, job_id: str | None = None
) -> str:
    """Run a turn, mapping failures to arq's semantics.

    ``job_id`` and ``job_try`` come from arq: a webhook-scheduled job (id starting with :data:`SCHEDULED_JOB_PREFIX`)
    waits for its burst to be due, and on its first try ends at once when its chat has no open burst (see
    :meth:`TurnRunner.run`).

    Transient failures (database or Redis gone, rate limits) raise ``arq.Retry`` with exponential backoff: the
    turn stays ``running`` and is resumed from its checkpoint; parts already sent are not repeated. Any other
    failure is a bug or bad data: the turn is marked ``failed`` with the error, the person is told, and the
    job ends (its messages stay in the inbox for inspection).
    """
    try:
        burst_job = (job_id or "").startswith(SCHEDULED_JOB_PREFIX)
        return await runner.run(provider, chat_id, claimed_if_no_burst=burst_job and job_try == 1, burst_job=burst_job)
    except Retry:
        raise
    except Exception as exc:
        if is_transient(exc):
            log.warning("turn for %s:%s hit a transient failure (%s); retrying", provider, chat_id, type(exc).__name__)
            raise Retry(defer=min(2 ** min(job_try, 5), 30)) from exc
        log.exception("turn for %s:%s failed", provider, chat_id)
        await runner.fail_running(provider, chat_id, f"{type(exc).__name__}: {exc}"[:1000])
        return "failed"
