"""Turn scheduling: a chat's burst of messages kept in Redis, and the one debounced ``run_turn`` job of each burst.

A Redis hash per chat keeps the time of the burst's first and last message and the id of the burst's job. The
first stored message of a burst enqueues a deferred ``run_turn`` job (unique id ``turn:<provider>:<chat>:<inbox
id>``); every later message of the burst moves that job's due time to ``min(last + DEBOUNCE_SECONDS, first +
DEBOUNCE_MAX_SECONDS)`` instead of enqueueing another job, all in one Lua call per batch
(:class:`server.ingest.IngestBatcher`). When the burst's job no longer exists (it ended, or arq gave up on it) the
next message enqueues a new one. The worker's turn runner (:mod:`server.worker.turns`) closes the burst when it
claims the chat's messages; a burst job that starts before the burst is due (its due time was moved while arq was
starting it) waits in the job until it is (:meth:`server.worker.turns.TurnRunner.run`).
"""

from __future__ import annotations

import time
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job

from core.config import Settings


def debounce_key(provider: str, chat_id: str) -> str:
    """Redis hash of a chat's open burst (``first``, ``last``: unix seconds; ``job``: the id of the burst's job)."""
    return f"procure:burst:{provider}:{chat_id}"


# One round trip for a whole batch of messages: for each message, extend its chat's burst; when the burst's job
# (hash field ``job``) still exists, move it to the burst's new due time (ZADD XX: only while it is in the queue);
# otherwise enqueue a job the way arq's enqueue_job does (job payload under arq:job:<id> with an expiry, id in the
# queue's sorted set scored by its due time) unless that job id already exists, and make it the burst's job.
# KEYS: 4 per message (burst hash, job key, result key, queue). ARGV: now (unix s), burst ttl (s), debounce (s),
# max debounce (s), job expiry past due (ms), arq's job key prefix, then 2 per message (arq job payload, job id).
# Returns the due times in ms, in message order.
_SCHEDULE = """
local now = tonumber(ARGV[1])
local now_ms = math.floor(now * 1000)
local debounce, longest, extra = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k, a = i * 4, 6 + i * 2
  redis.call('HSETNX', KEYS[k + 1], 'first', ARGV[1])
  redis.call('HSET', KEYS[k + 1], 'last', ARGV[1])
  redis.call('EXPIRE', KEYS[k + 1], ARGV[2])
  local first = tonumber(redis.call('HGET', KEYS[k + 1], 'first'))
  local due_ms = math.floor(math.min(now + debounce, first + longest) * 1000)
  local job = redis.call('HGET', KEYS[k + 1], 'job')
  if job and redis.call('EXISTS', ARGV[6] .. job) == 1 then
    redis.call('ZADD', KEYS[k + 4], 'XX', due_ms, job)
    redis.call('PEXPIRE', ARGV[6] .. job, due_ms - now_ms + extra)
  elseif redis.call('EXISTS', KEYS[k + 2], KEYS[k + 3]) == 0 then
    redis.call('PSETEX', KEYS[k + 2], due_ms - now_ms + extra, ARGV[a + 1])
    redis.call('ZADD', KEYS[k + 4], due_ms, ARGV[a + 2])
    redis.call('HSET', KEYS[k + 1], 'job', ARGV[a + 2])
  end
  out[i + 1] = due_ms
end
return out
"""


def schedule_script() -> str:
    """The Lua script that extends bursts and enqueues their turn jobs (run by :class:`server.ingest.IngestBatcher`)."""
    return _SCHEDULE


def schedule_args(settings: Settings, messages: list[tuple[str, str, int]], now: float) -> tuple[list[Any], list[Any]]:
    """KEYS and ARGV of :data:`_SCHEDULE` for a batch of stored messages.

    Args:
        settings: debounce windows, turn timeout and queue name.
        messages: ``(provider, chat id, inbox id)`` per message, in arrival order.
        now: unix time in seconds.

    Returns:
        ``(keys, args)``: 4 keys per message; 6 shared arguments then 2 per message.
    """
    ttl = int(settings.DEBOUNCE_MAX_SECONDS + settings.TURN_TIMEOUT_SECONDS + 60)
    enqueue_ms = int(now * 1000)
    keys: list[Any] = []
    # job payload kept a day past its due time, as arq's default expires_extra_ms
    args: list[Any] = [
        repr(now),
        ttl,
        repr(settings.DEBOUNCE_SECONDS),
        repr(settings.DEBOUNCE_MAX_SECONDS),
        86_400_000,
        job_key_prefix,
    ]
    payloads: dict[tuple[str, str], bytes] = {}  # the job payload depends only on the chat
    for provider, chat_id, inbox_id in messages:
        job_id = f"turn:{provider}:{chat_id}:{inbox_id}"
        payload = payloads.get((provider, chat_id))
        if payload is None:
            payload = payloads[provider, chat_id] = serialize_job("run_turn", (provider, chat_id), {}, None, enqueue_ms)
        keys += (
            debounce_key(provider, chat_id),
            job_key_prefix + job_id,
            result_key_prefix + job_id,
            settings.QUEUE_NAME,
        )
        args += (payload, job_id)
    return keys, args


async def due_in(redis: ArqRedis, settings: Settings, provider: str, chat_id: str) -> float:
    """Seconds until the chat's burst is due (0 when due or when there is no open burst)."""
    h = await redis.hgetall(debounce_key(provider, chat_id))  # type: ignore[misc]
    if not h:
        return 0.0
    first, last = float(h[b"first"]), float(h[b"last"])
    due = min(last + settings.DEBOUNCE_SECONDS, first + settings.DEBOUNCE_MAX_SECONDS)
    return max(0.0, due - time.time())
