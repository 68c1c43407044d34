"""Drive the procurement and approval graphs directly (no HTTP, no worker) with an in-memory checkpointer.

The effect nodes (:mod:`nodes.effects`) run inside the graphs, as in the worker; see :class:`Company`.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from langgraph.checkpoint.memory import InMemorySaver

from core.repo import User, load_catalog
from graphs import approval, procurement
from graphs.context import Context
from server.worker.approvals import ApprovalThreadRunner
from tools.catalog import CatalogIndex

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=ZoneInfo("Africa/Nairobi"))
SITES = ("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret")
_ids = itertools.count(1)


def text(body: str, sender: str) -> dict[str, Any]:
    return {
        "kind": "text",
        "text": body,
        "sender": sender,
        "chat_id": sender,
        "timestamp": NOW.astimezone(UTC).isoformat(),
        "provider_message_id": f"wamid.t{next(_ids)}",
        "inbox_id": None,
    }


def button(reply_id: str, sender: str, title: str = "") -> dict[str, Any]:
    return {
        "kind": "button",
        "text": title,
        "reply_id": reply_id,
        "sender": sender,
        "chat_id": sender,
        "timestamp": NOW.astimezone(UTC).isoformat(),
        "provider_message_id": f"wamid.t{next(_ids)}",
    }


class RecordingQueue:
    """Stands in for the worker's fulfilment queue (``server.worker.jobs.FulfilmentJobs``): records the calls.

    Attributes:
        requests: ``(request_id, provider)`` per ``request`` call (the approval graph's ``enqueue_fulfilment``).
        retries: ``(fulfilment_id, by, provider, token)`` per ``retry`` call (the ``retry_fulfilment`` node).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[int, str]] = []
        self.retries: list[tuple[int, int, str, str]] = []

    async def request(self, request_id: int, *, provider: str) -> int:
        """Record an approved request's fulfilment; one job "enqueued"."""
        self.requests.append((request_id, provider))
        return 1

    async def retry(self, fulfilment_id: int, by: int, *, provider: str, token: str) -> str:
        """Record a Retry press."""
        self.retries.append((fulfilment_id, by, provider, token))
        return "queued"


class Company:
    """Runs turns for several people against one database the way the worker does.

    The effect nodes run inside the graphs with the worker's clients in the Context: approval threads are started,
    superseded and resumed by :class:`server.worker.approvals.ApprovalThreadRunner` on the same in-memory
    checkpointer, and fulfilment goes to a :class:`RecordingQueue`. Nothing is applied outside the graph; a turn
    returns the State's ``outbound`` (the approver's buttons and decision notices carry an ``outbox_key``).

    Args:
        engine: SQLAlchemy async engine of the test database.
        chat_model: a chat model for the LLM intake node, or ``None`` (deterministic only).
        effects: ``False`` gives the graphs no effect clients (as in Studio and evaluations): effects stay in
            the State and nothing is started.
    """

    def __init__(self, engine: Any, chat_model: Any = None, *, effects: bool = True) -> None:
        self.engine = engine
        self.saver = InMemorySaver()
        self.proc = procurement.builder.compile(checkpointer=self.saver)
        self.appr = approval.builder.compile(checkpointer=self.saver)
        self.approvals = ApprovalThreadRunner(self.appr) if effects else None
        self.queue = RecordingQueue()
        self.effects = effects
        self.chat_model = chat_model
        self.catalog: CatalogIndex | None = None
        self.sent: list[dict[str, Any]] = []
        self.last_state: dict[str, Any] = {}
        self.turns = 0

    async def ctx(self, user: User) -> Context:
        """The Context of ``user``'s next turn (``turn_id`` is the number of turns run so far)."""
        if self.catalog is None:
            self.catalog = CatalogIndex(await load_catalog(self.engine))
        return Context(
            user=user,
            chat_id=user.wa_id,
            engine=self.engine,
            catalog=self.catalog,
            sites=SITES,
            chat_model=self.chat_model,
            model_name="fake" if self.chat_model else "none",
            now=NOW,
            turn_id=self.turns,
            approvals=self.approvals,
            fulfilment=self.queue if self.effects else None,
        )

    async def run(self, user: User, *messages: dict[str, Any] | str) -> dict[str, Any]:
        """Run one turn of ``user`` (strings become text messages); return the final State."""
        msgs = [text(m, user.wa_id) if isinstance(m, str) else m for m in messages]
        self.turns += 1
        ctx = await self.ctx(user)
        cfg = {"configurable": {"thread_id": f"meta:{user.wa_id}"}, "recursion_limit": procurement.RECURSION_LIMIT}
        state = dict(await self.proc.ainvoke({"inbound": msgs}, cfg, context=ctx))
        self.last_state = state
        self.sent += list(state.get("outbound") or [])
        return state

    async def turn(self, user: User, *messages: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Run one turn of ``user``; return every message it sends (to the sender and to others)."""
        return list((await self.run(user, *messages)).get("outbound") or [])
