"""Helpers shared by the conversation nodes: the current message, clocks, identity checks, audit."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from langgraph.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain import Inbound, State
from core.repo import User, audit
from tools.catalog import CatalogIndex

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context


def current(state: State) -> tuple[Inbound, list[int]]:
    """The next pending message of the turn and the pending list without it."""
    pending = list(state.get("pending") or [])
    idx = pending.pop(0)
    return state["inbound"][idx], pending


def message_time(msg: Inbound, ctx: Context) -> datetime:
    """The message's own time in the company's time zone (dates like "Friday" are read against it)."""
    tz = ZoneInfo(ctx.timezone)
    if ctx.now is not None:
        return ctx.now.astimezone(tz)
    ts = msg.get("timestamp")
    if ts:
        return datetime.fromisoformat(ts).astimezone(tz)
    return datetime.now(tz)


def user_of(runtime: Runtime[Context]) -> User:
    """The sender's user row (identity comes from the database via the Context, never from the model).

    Raises:
        PermissionError: the run has no identity.
    """
    user = runtime.context.user if runtime.context else None
    if user is None:
        raise PermissionError("no identity in the run context")
    return user


def engine_of(ctx: Context) -> AsyncEngine:
    """The run's database engine.

    Raises:
        RuntimeError: the run has no database (a Context built without one, e.g. for drawing the graph).
    """
    if ctx.engine is None:
        raise RuntimeError("no database engine in the run context")
    return ctx.engine


def catalog_of(ctx: Context) -> CatalogIndex:
    """The run's catalogue index.

    Raises:
        RuntimeError: the run has no catalogue loaded.
    """
    if ctx.catalog is None:
        raise RuntimeError("no catalogue in the run context")
    return ctx.catalog


async def record(
    runtime: Runtime[Context],
    action: str,
    *,
    request_id: int | None = None,
    msg: Inbound | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write an audit-log entry for the sender (no-op without a database, e.g. in Studio)."""
    ctx = runtime.context
    if ctx is None or ctx.engine is None:
        return
    async with ctx.engine.begin() as conn:
        await audit(
            conn,
            action,
            actor_id=ctx.user.id if ctx.user else None,
            request_id=request_id,
            inbox_id=(msg or {}).get("inbox_id"),
            details=details or {},
        )


def add_note(state: State, text: str) -> list[str]:
    """The turn's notes with ``text`` appended."""
    return [*(state.get("notes") or []), text]
