"""Drive the procurement and approval graphs directly (no HTTP, no worker) with an in-memory checkpointer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from core.repo import User, load_catalog
from graphs import approval, procurement
from graphs.context import Context
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


class Company:
    """Runs turns for several people against one database, applying effects like the worker does."""

    def __init__(self, engine: Any, chat_model: Any = None) -> None:
        self.engine = engine
        self.saver = InMemorySaver()
        self.proc = procurement.builder.compile(checkpointer=self.saver)
        self.appr = approval.builder.compile(checkpointer=self.saver)
        self.chat_model = chat_model
        self.catalog: CatalogIndex | None = None
        self.sent: list[dict[str, Any]] = []
        self.last_state: dict[str, Any] = {}

    async def ctx(self, user: User) -> Context:
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
        )

    async def turn(self, user: User, *messages: dict[str, Any] | str) -> list[dict[str, Any]]:
        msgs = [text(m, user.wa_id) if isinstance(m, str) else m for m in messages]
        ctx = await self.ctx(user)
        cfg = {"configurable": {"thread_id": f"meta:{user.wa_id}"}, "recursion_limit": procurement.RECURSION_LIMIT}
        state = await self.proc.ainvoke({"inbound": msgs}, cfg, context=ctx)
        self.last_state = state
        out = list(state.get("outbound") or [])
        for eff in state.get("effects") or []:
            out += await self.apply(eff, ctx)
        self.sent += out
        return out

    async def apply(self, eff: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
        if eff["type"] == "start_approval":
            cfg = {"configurable": {"thread_id": approval.approval_thread_id(eff["request_id"], eff["revision"])}}
            st = await self.appr.ainvoke(
                {"request_id": eff["request_id"], "revision": eff["revision"]}, cfg, context=ctx
            )
            return list(st.get("outbound") or [])
        if eff["type"] == "resume_approval":
            cfg = {"configurable": {"thread_id": approval.approval_thread_id(eff["request_id"], eff["revision"])}}
            st = await self.appr.ainvoke(Command(resume=eff), cfg, context=ctx)
            return list(st.get("outbound") or [])
        return []
