"""The turn runner against PostgreSQL and Redis: when a job starts a turn, one checkpoint per turn, crash re-runs.

Turns run through the real :class:`server.worker.turns.TurnRunner` (both graphs on one in-memory checkpointer, a
recording channel); messages are stored in the inbox as the webhook stores them and the chat's burst is opened in
Redis as the webhook's scheduler opens it (``server.ingest.schedule.debounce_key``).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from arq import Retry
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy import func, insert, select

from core.config import Settings
from core.db import inbox, purchase_requests, turns
from core.repo import load_catalog
from graphs import approval, procurement
from server.ingest.schedule import debounce_key
from server.worker.turns import DURABILITY, TurnRunner, lock_key, run_turn_with_retry_mapping
from tools.catalog import CatalogIndex

_ids = itertools.count(1)


class RecordingChannel:
    """A channel that records what it sends (``(kind, to, text)``)."""

    name = "meta"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def mark_read(self, message_id: str, *, typing: bool = False) -> None:
        return None

    async def send_text(self, to: str, text: str, **_: Any) -> list[str]:
        self.sent.append(("text", to, text))
        return [f"wamid.out{next(_ids)}"]

    async def send_buttons(self, to: str, text: str, buttons: Any, **_: Any) -> str:
        self.sent.append(("buttons", to, text))
        return f"wamid.out{next(_ids)}"

    async def send_list(self, to: str, text: str, button: str, rows: Any, section: str, **_: Any) -> str:
        self.sent.append(("list", to, text))
        return f"wamid.out{next(_ids)}"

    async def aclose(self) -> None:
        return None


class Killed(BaseException):
    """The worker process dies here (not an ``Exception``: nothing in the turn may handle it)."""


class MortalSaver(InMemorySaver):
    """An in-memory checkpointer that stops writing once its process is ``dead`` (a SIGKILL writes nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False
        self.puts = 0

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if self.dead:
            return config
        self.puts += 1
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        if not self.dead:
            await super().aput_writes(config, writes, task_id, task_path)


async def make_runner(engine: Any, redis: Any, saver: InMemorySaver) -> tuple[TurnRunner, RecordingChannel]:
    """A runner like the worker's (one checkpointer for both graphs), with a recording channel."""
    channel = RecordingChannel()
    catalog = CatalogIndex(await load_catalog(engine))

    async def get_catalog() -> CatalogIndex:
        return catalog

    services = SimpleNamespace(
        settings=Settings(_env_file=None, DEBOUNCE_SECONDS=2.0, DEBOUNCE_MAX_SECONDS=10.0),  # type: ignore[call-arg]
        engine=engine,
        redis=redis,
        channels={"meta": channel},
        chat_model=None,
        extras={},
        catalog=get_catalog,
    )
    runner = TurnRunner(
        services,
        procurement.builder.compile(checkpointer=saver, name="procurement"),
        approval.builder.compile(checkpointer=saver, name="approval"),
    )
    return runner, channel


@pytest.fixture
async def redis(redis_url: str) -> Any:
    from arq.connections import create_pool

    from server.services import redis_settings

    pool = await create_pool(redis_settings(redis_url), default_queue_name="procure:test-turns")
    yield pool
    await pool.aclose()


async def deliver(engine: Any, wa_id: str, **fields: Any) -> int:
    """Store one inbound message the way the webhook does; returns its inbox id."""
    now = datetime.now(UTC)
    mid = f"wamid.TURNS{next(_ids)}"
    message = {"provider": "meta", "provider_message_id": mid, "chat_id": wa_id, "sender": wa_id, **fields}
    message["timestamp"] = now.isoformat()
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    insert(inbox)
                    .values(
                        provider="meta",
                        provider_message_id=mid,
                        chat_id=wa_id,
                        sender=wa_id,
                        type=fields["kind"],
                        message=message,
                        raw_payload={},
                        sent_at=now,
                    )
                    .returning(inbox.c.id)
                )
            ).scalar_one()
        )


async def open_burst(redis: Any, wa_id: str, first: float, last: float) -> None:
    """Open (or extend) the chat's burst as the webhook's scheduler does."""
    await redis.hset(debounce_key("meta", wa_id), mapping={"first": repr(first), "last": repr(last)})


async def unclaimed(engine: Any, wa_id: str) -> int:
    async with engine.connect() as conn:
        q = select(func.count()).select_from(inbox).where(inbox.c.chat_id == wa_id, inbox.c.turn_id.is_(None))
        return int((await conn.execute(q)).scalar_one())


async def test_first_try_of_a_scheduled_job_without_an_open_burst_touches_nothing(
    engine: Any, redis: Any, seeded: dict[str, Any]
) -> None:
    amina = seeded["amina"].wa_id
    runner, channel = await make_runner(engine, redis, InMemorySaver())
    inbox_id = await deliver(engine, amina, kind="text", text="need 20 boxes a4 paper for nairobi by friday")
    # No open burst: a turn has closed it, so that turn claimed the message (here: nobody did, to show the skip).
    scheduled = f"turn:meta:{amina}:{inbox_id}"
    assert await run_turn_with_retry_mapping(runner, "meta", amina, 1, scheduled) == "skip"
    assert await unclaimed(engine, amina) == 1 and channel.sent == []
    # A retried job, a sweeper's or a catch-up job takes the full path and finds the message.
    assert (await run_turn_with_retry_mapping(runner, "meta", amina, 2, scheduled)).startswith("turn ")
    assert await unclaimed(engine, amina) == 0 and len(channel.sent) == 1
    await deliver(engine, amina, kind="text", text="help")
    assert (await run_turn_with_retry_mapping(runner, "meta", amina, 1, f"sweep:meta:{amina}:7")).startswith("turn ")
    assert await unclaimed(engine, amina) == 0 and len(channel.sent) == 2


async def test_open_burst_waits_until_due_then_closes_it_and_runs_the_turn(
    engine: Any, redis: Any, seeded: dict[str, Any]
) -> None:
    amina = seeded["amina"].wa_id
    runner, channel = await make_runner(engine, redis, InMemorySaver())
    inbox_id = await deliver(engine, amina, kind="text", text="need 20 boxes a4 paper for nairobi by friday")
    now = time.time()
    await open_burst(redis, amina, now, now)  # the last message just came: due in DEBOUNCE_SECONDS
    # a sweeper's or catch-up job leaves a burst that is not due to the burst's own job
    assert await run_turn_with_retry_mapping(runner, "meta", amina, 1, f"sweep:meta:{amina}:1") == "not due"
    assert await unclaimed(engine, amina) == 1
    # the burst's own job (its only job) started early, its due time moved meanwhile: it waits until due
    due_soon = time.time() - runner.s.settings.DEBOUNCE_SECONDS + 0.3
    await open_burst(redis, amina, due_soon, due_soon)
    scheduled = f"turn:meta:{amina}:{inbox_id}"
    assert (await run_turn_with_retry_mapping(runner, "meta", amina, 1, scheduled)).startswith("turn ")
    assert not await redis.exists(debounce_key("meta", amina))  # closed: later messages open the next burst
    assert not await redis.exists(lock_key("meta", amina))  # released
    assert len(channel.sent) == 1


async def test_busy_chat_retries_unless_its_burst_is_already_claimed(
    engine: Any, redis: Any, seeded: dict[str, Any]
) -> None:
    amina = seeded["amina"].wa_id
    runner, channel = await make_runner(engine, redis, InMemorySaver())
    inbox_id = await deliver(engine, amina, kind="text", text="help")
    await redis.set(lock_key("meta", amina), "another-worker")
    await open_burst(redis, amina, time.time() - 5, time.time() - 5)
    scheduled = f"turn:meta:{amina}:{inbox_id}"
    with pytest.raises(Retry):  # a due burst while another turn runs: try again later
        await run_turn_with_retry_mapping(runner, "meta", amina, 1, scheduled)
    assert await redis.exists(debounce_key("meta", amina))  # still open for whoever runs it
    await redis.delete(debounce_key("meta", amina))  # the running turn closed it: it claims this message
    assert await run_turn_with_retry_mapping(runner, "meta", amina, 1, scheduled) == "skip"
    assert channel.sent == []


async def test_a_turn_writes_one_checkpoint(engine: Any, redis: Any, seeded: dict[str, Any]) -> None:
    assert DURABILITY == "exit"
    amina = seeded["amina"].wa_id
    saver = MortalSaver()
    runner, channel = await make_runner(engine, redis, saver)
    for text in ("need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday"):
        await deliver(engine, amina, kind="text", text=text)
    assert (await runner.run("meta", amina)).startswith("turn ")
    assert saver.puts == 1
    assert len(channel.sent) == 1


async def test_worker_killed_after_a_submission_reruns_the_turn_once(
    engine: Any, redis: Any, seeded: dict[str, Any]
) -> None:
    """A kill after the turn submitted PR-1 and started its approval, before the turn's checkpoint.

    With checkpoints written only when a turn ends, the next run repeats the whole turn from the previous turn's
    checkpoint: it must find the request and the approval thread the dead run made, and send each reply once.
    """
    amina, brian = seeded["amina"].wa_id, seeded["brian"].wa_id
    saver = MortalSaver()
    first, first_channel = await make_runner(engine, redis, saver)
    await deliver(engine, amina, kind="text", text="need 2 staplers for nairobi by friday")
    assert (await first.run("meta", amina)).startswith("turn ")
    assert len(first_channel.sent) == 1  # the draft, with Confirm

    real_start = first.approvals.start

    async def start_then_die(request_id: int, revision: int, ctx: Any) -> list[dict[str, Any]]:
        await real_start(request_id, revision, ctx)
        saver.dead = True  # from here on this process writes nothing
        raise Killed

    first.approvals.start = start_then_die  # type: ignore[method-assign]
    await deliver(engine, amina, kind="button", reply_id="confirm", text="Confirm")
    with pytest.raises(Killed):
        await first.run("meta", amina)
    assert len(first_channel.sent) == 1  # nothing was sent by the dead run
    async with engine.connect() as conn:
        assert (await conn.execute(select(turns.c.status).order_by(turns.c.id.desc()))).first().status == "running"
        assert (await conn.execute(select(func.count()).select_from(purchase_requests))).scalar_one() == 1

    saver.dead = False  # a new worker process on the same database
    second, channel = await make_runner(engine, redis, saver)
    await redis.delete(lock_key("meta", amina))  # the dead worker's lock expired
    assert (await run_turn_with_retry_mapping(second, "meta", amina, 2, "recover:2:0")).startswith("turn ")
    async with engine.connect() as conn:
        requests = (await conn.execute(select(purchase_requests.c.id, purchase_requests.c.revision))).all()
        turn = (await conn.execute(select(turns).order_by(turns.c.id.desc()))).first()
    assert [(r.id, r.revision) for r in requests] == [(1, 1)]
    assert turn.status == "done" and turn.attempts >= 1
    to_amina = [m for m in channel.sent if m[1] == amina]
    to_brian = [m for m in channel.sent if m[1] == brian]
    assert len(to_amina) == 1 and "PR-1" in to_amina[0][2]
    assert len(to_brian) == 1 and to_brian[0][0] == "buttons" and "PR-1" in to_brian[0][2]
    # The re-run turn is recorded in the checkpoint: running it again only finds it done.
    assert await run_turn_with_retry_mapping(second, "meta", amina, 1, "sweep:meta:x:1") == "nothing"
    assert len(channel.sent) == 2
