"""Idempotent sending: every outbound message is recorded under an idempotency key, and its attempt before the call.

Keys are ``turn:<turn id>:<index>`` for a turn's replies and ``approval:PR-<id>:r<rev>:<phase>:<index>`` for
approval notices; long texts are split at paragraph boundaries and each part gets ``:<part>``. One key is one
provider message. Sending a key (:func:`send_one`):

1. the row is created (or found) and, in its own committed transaction, the attempt is recorded: status
   ``sending``, ``attempted_at = now()``, ``attempts + 1``; only then is the provider called, with the key as
   the message's callback tag (Meta ``biz_opaque_callback_data``, echoed in its status webhooks);
2. the provider's answer is recorded: its message id and ``sent``; a refusal (4xx) as ``rejected``; a retryable
   failure that certainly sent nothing (429, 5xx, connect error) clears the attempt, and the job retries.

A key already answered (a provider id, a forward status, ``rejected``) is skipped, so a retried job never
messages a person twice for one reply. A key with an attempt but no answer (the worker died during the call,
the job was cancelled, or the answer was lost on the way) is not resent at once: the message may well have gone
out. Its status webhook, matched by our key (:func:`apply_statuses`), confirms it and fills in the provider id.
Until then :func:`send_one` raises a retryable :class:`ChannelSendError` ("awaiting confirmation"), so the job
checks again later through the queue's retry backoff (no busy wait). Only when no status came within
``SEND_CONFIRM_SECONDS`` of the attempt is the key sent again, logged as a warning with the key.

The window that remains: a provider that accepted the message but never reports a status for it (or whose
status webhooks are not delivered to us, e.g. the app is not subscribed to ``messages`` statuses) makes that
message go out twice, ``SEND_CONFIRM_SECONDS`` after the first attempt. A channel that echoes no tag in its
statuses always falls into it after a lost answer. Raising the setting narrows this at the price of a reply
that waits that long when its first attempt really was lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config import get_settings
from core.db import outbound_messages
from nodes.effects import OUTBOX_KEY
from server.channels import Channel, ChannelSendError, split_text
from server.channels.records import StatusUpdate

log = logging.getLogger(__name__)
DONE = ("sent", "delivered", "read", "played")
#: Statuses after which a key is never sent again (``failed`` comes from a status webhook).
FINAL = (*DONE, "rejected", "failed")


#: Provider answers (message ids) of keys sent by this process whose recording failed (database down), by key;
#: the job's retry records them instead of sending again (a worker that dies forgets them: then the delivery
#: status or ``SEND_CONFIRM_SECONDS`` decides, as for any unanswered attempt).
_answered: dict[str, list[str]] = {}


def _window(confirm_seconds: float | None) -> float:
    """Seconds an unanswered attempt waits for a status before it is resent (default ``SEND_CONFIRM_SECONDS``)."""
    return get_settings().SEND_CONFIRM_SECONDS if confirm_seconds is None else confirm_seconds


# Claim a key in one statement (one round trip, committed before the provider call). A new key is inserted with
# its attempt; an existing one gets a new attempt only when it needs one: no provider id, not final, not a pre-attempt
# "unknown", and no attempt younger than :confirm seconds (ON CONFLICT ... WHERE locks the row either way). ``old``
# is the row as it was before (the statement's snapshot): why an unclaimed key was refused, and whether a claimed
# one is a resend. Row: ``claimed`` and the old ``status, provider_message_id, attempted_at, attempts`` (NULLs for
# a new key), ``now``.
_CLAIM = text(
    f"""
    WITH old AS (
      SELECT status, provider_message_id, attempted_at, attempts FROM outbound_messages
      WHERE idempotency_key = :key
    ), up AS (
      INSERT INTO outbound_messages AS o (idempotency_key, provider, "to", kind, body, turn_id,
                                          status, attempted_at, attempts)
      VALUES (:key, :provider, :to, :kind, CAST(:body AS jsonb), :turn_id, 'sending', now(), 1)
      ON CONFLICT (idempotency_key) DO UPDATE SET status = 'sending', attempted_at = now(), attempts = o.attempts + 1
      WHERE o.provider_message_id IS NULL AND o.status NOT IN ({", ".join(f"'{s}'" for s in FINAL)})
        AND NOT (o.attempted_at IS NULL AND o.status = 'unknown')
        AND (o.attempted_at IS NULL OR o.attempted_at <= now() - make_interval(secs => :confirm))
      RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM up) AS claimed, old.status, old.provider_message_id, old.attempted_at,
           old.attempts, now() AS now
    FROM (SELECT 1) AS one LEFT JOIN old ON true
    """
)


async def _claim(
    engine: AsyncEngine,
    key: str,
    provider: str,
    to: str,
    kind: str,
    body: dict[str, Any],
    turn_id: int | None,
    confirm_seconds: float,
) -> bool:
    """Record an attempt for the key (committed before the provider is called); False when it needs no sending.

    Raises:
        ChannelSendError: retryable; an earlier attempt is unanswered and younger than ``confirm_seconds``.
    """
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                _CLAIM,
                {
                    "key": key,
                    "provider": provider,
                    "to": to,
                    "kind": kind,
                    "body": json.dumps(body),
                    "turn_id": turn_id,
                    "confirm": float(confirm_seconds),
                },
            )
        ).one()
    if row.claimed:
        if row.attempted_at is not None:
            log.warning(
                "send %s: no answer and no delivery status %.0f s after attempt %d at %s; sending it again",
                key,
                (row.now - row.attempted_at).total_seconds(),
                row.attempts,
                _iso(row.attempted_at),
            )
        return True
    if row.status is None:  # inserted by a concurrent sender after this statement's snapshot: its attempt runs
        raise ChannelSendError(f"send {key}: another attempt is starting; awaiting its answer", retryable=True)
    if row.provider_message_id or row.status in FINAL:
        return False
    if row.attempted_at is None and row.status == "unknown":
        return False  # recorded before attempts were (a timed-out send): never repeated
    raise ChannelSendError(
        f"send {key}: attempt {row.attempts} at {_iso(row.attempted_at) if row.attempted_at else '?'} is "
        f"unanswered; awaiting its delivery status (resent after {confirm_seconds:g} s without one)",
        retryable=True,
    )


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


async def _mark(engine: AsyncEngine, key: str, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(outbound_messages).where(outbound_messages.c.idempotency_key == key).values(**values))


async def send_one(
    engine: AsyncEngine,
    channel: Channel,
    key: str,
    msg: dict[str, Any],
    *,
    turn_id: int | None = None,
    confirm_seconds: float | None = None,
) -> list[str]:
    """Send one composed outbound message (``{"to", "type", "text", ...}``) at most once per key.

    Args:
        engine: the database.
        channel: the chat's channel.
        key: the idempotency key (also the message's callback tag at the provider).
        msg: ``type`` ``text`` (``text``), ``buttons`` (``text``, ``buttons`` of ``[id, title]``) or ``list``
            (``text``, ``rows`` of ``[id, title, description]``, ``button``).
        turn_id: the turn the message answers, recorded with it.
        confirm_seconds: how long an unanswered attempt waits for its delivery status before it is sent again;
            ``SEND_CONFIRM_SECONDS`` by default.

    Returns:
        Provider message ids sent now (empty when everything was already sent).

    Raises:
        ChannelSendError: retryable: the provider failed transiently (nothing was sent; the job retries and
            parts already sent are not repeated), or an earlier attempt of a part awaits its delivery status.
            Permanent failures are recorded as ``rejected`` and not raised.
        ValueError: an unknown ``type``.
    """
    window = _window(confirm_seconds)
    to, kind = msg["to"], msg["type"]
    sent: list[str] = []
    if kind == "text":
        parts = split_text(msg["text"])
        for i, part in enumerate(parts):
            k = key if len(parts) == 1 else f"{key}:{i}"
            body = {"text": part}
            late = await _recorded_late(engine, k)
            if late is not None:
                sent += late
                continue
            if not await _claim(engine, k, channel.name, to, "text", body, turn_id, window):
                continue
            sent += await _deliver(engine, k, lambda p=part, k=k: channel.send_text(to, p, callback_data=k))
        return sent
    if kind not in ("buttons", "list"):
        raise ValueError(f"unknown outbound type {kind!r}")
    body = {k: v for k, v in msg.items() if k != "to"}
    late = await _recorded_late(engine, key)
    if late is not None:
        return late
    if not await _claim(engine, key, channel.name, to, kind, body, turn_id, window):
        return []
    if kind == "buttons":
        buttons = [(b[0], b[1]) for b in msg["buttons"]]
        return await _deliver(
            engine, key, lambda: _one(channel.send_buttons(to, msg["text"], buttons, callback_data=key))
        )
    rows = [(r[0], r[1], r[2]) for r in msg["rows"]]
    return await _deliver(
        engine,
        key,
        lambda: _one(
            channel.send_list(to, msg["text"], msg.get("button") or "Choose", rows, "Options", callback_data=key)
        ),
    )


async def _one(coro: Any) -> list[str]:
    return [await coro]


async def _deliver(engine: AsyncEngine, key: str, call: Any) -> list[str]:
    """Call the provider for a key whose attempt is recorded; record its answer."""
    try:
        ids = await call()
    except ChannelSendError as exc:
        if exc.delivery_unknown:
            # The request may have gone out (a timeout after it left): keep the attempt, wait for a status.
            await _mark(engine, key, status="unknown", error=str(exc)[:500])
            log.warning("send %s: delivery unknown (%s); awaiting its delivery status", key, exc)
            raise ChannelSendError(
                f"send {key}: delivery unknown, awaiting its delivery status", retryable=True
            ) from exc
        if exc.retryable:
            # Nothing went out (429, 5xx, connect error): the attempt is void, the retry sends at once.
            await _mark(engine, key, status="pending", attempted_at=None, error=str(exc)[:500])
            raise
        await _mark(engine, key, status="rejected", error=str(exc)[:500])
        log.error("send %s failed permanently: %s", key, exc)
        return []
    except ValueError as exc:  # refused before any request (a limit that cannot be fixed by shortening)
        await _mark(engine, key, status="rejected", error=str(exc)[:500])
        log.error("send %s refused: %s", key, exc)
        return []
    try:
        await _record(engine, key, list(ids))
    except Exception:
        # The message went out but the database did not take its answer (an outage): keep the answer in this
        # process and record it on the job's retry instead of resending after SEND_CONFIRM_SECONDS.
        _answered[key] = list(ids)
        raise
    return list(ids)


async def _record(engine: AsyncEngine, key: str, ids: list[str]) -> None:
    """Record the provider's answer (message ids) of a sent key."""
    pmid = ids[0] if ids else None
    async with engine.begin() as conn:
        # A status webhook may have come first (matched by our key): keep its forward status.
        await conn.execute(
            text(
                """
                UPDATE outbound_messages SET provider_message_id = COALESCE(:pmid, provider_message_id),
                  status = CASE WHEN status IN ('pending', 'sending', 'unknown') THEN 'sent' ELSE status END,
                  sent_at = COALESCE(sent_at, now())
                WHERE idempotency_key = :key
                """
            ),
            {"pmid": pmid, "key": key},
        )


async def _recorded_late(engine: AsyncEngine, key: str) -> list[str] | None:
    """The answer of a key sent earlier in this process that could not be recorded, recorded now; else None."""
    if key not in _answered:
        return None
    ids = _answered[key]
    await _record(engine, key, ids)  # raises while the database is still down: the job retries again
    del _answered[key]
    return ids


async def send_all(
    engine: AsyncEngine,
    channels: dict[str, Channel],
    provider: str,
    key_prefix: str,
    messages: list[dict[str, Any]],
    *,
    turn_id: int | None = None,
    confirm_seconds: float | None = None,
) -> list[str]:
    """Send a list of outbound messages in order under ``<key_prefix>:<index>`` keys (see :func:`send_one`)."""
    ids: list[str] = []
    channel = channels[provider]
    for i, msg in enumerate(messages):
        ids += await send_one(
            engine, channel, f"{key_prefix}:{i}", msg, turn_id=turn_id, confirm_seconds=confirm_seconds
        )
    return ids


async def send_outbox(
    engine: AsyncEngine,
    channels: dict[str, Any],
    provider: str,
    turn_id: int,
    messages: list[dict[str, Any]],
    *,
    confirm_seconds: float | None = None,
) -> None:
    """Send a turn's outbound messages in order, each at most once (see :func:`send_one`).

    Replies to the chat are keyed ``turn:<id>:<index>``; a message an effect node keyed itself (``outbox_key``:
    the approver's buttons under their approval thread's key, see :func:`nodes.effects.keyed`) is sent under that
    key, so a re-run node or a second turn touching the same thread never sends it twice.
    """
    channel = channels[provider]
    index = 0
    for msg in messages:
        key = msg.get(OUTBOX_KEY)
        if key is None:
            await send_one(
                engine, channel, f"turn:{turn_id}:{index}", msg, turn_id=turn_id, confirm_seconds=confirm_seconds
            )
            index += 1
        else:
            body = {k: v for k, v in msg.items() if k != OUTBOX_KEY}
            await send_one(engine, channel, key, body, confirm_seconds=confirm_seconds)


#: Forward order of delivery statuses; a late "delivered" never overwrites "read" (statuses arrive out of order).
STATUS_RANK = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "played": 3, "failed": 4}


async def apply_statuses(engine: AsyncEngine, statuses: Sequence[StatusUpdate]) -> int:
    """Append each status to its outbound message's delivery history; the current status only moves forward.

    A status is matched by the provider message id, or, for a message whose send was never answered, by the
    tag it carried (:attr:`StatusUpdate.callback_data`, our idempotency key): then the provider id is filled
    in and the attempt counts as answered (see the module docstring).

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
                      error = CASE WHEN :status = 'failed' THEN :error ELSE error END,
                      provider_message_id = COALESCE(provider_message_id, :pmid),
                      sent_at = COALESCE(sent_at, now())
                    WHERE provider_message_id = :pmid
                       OR (provider_message_id IS NULL AND idempotency_key = CAST(:key AS text))
                    """
                ),
                {
                    "entry": json.dumps([entry]),
                    "rank": rank,
                    "status": str(s.status),
                    "error": "; ".join(f"{e.code}: {e.title or e.message}" for e in s.errors) or None,
                    "pmid": s.provider_message_id,
                    "key": s.callback_data,
                },
            )
            n += res.rowcount or 0
    return n
