"""The approval-thread runner the worker injects as ``Context.approvals`` (see :mod:`nodes.effects`).

It runs the approval graph, compiled with the worker's checkpointer, for the effect nodes of the procurement
graph. Each run is a top-level run of its own thread (``approval:PR-<id>:r<revision>``), not a subgraph of the
turn that asked for it: it runs in a fresh ``contextvars`` context, so neither LangGraph's parent config nor
the turn's trace is inherited, and it is traced as an ``approval`` run of its own (:func:`server.tracing.turn_config`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from langgraph.types import Command

from core.domain import ApprovalAnswer
from graphs.approval import approval_thread_id
from graphs.context import Context

T = TypeVar("T")
#: ``config_for(thread_id, request_id, ctx)``: the run config's tracing part (``run_name``, ``tags``, ``metadata``).
ConfigFor = Callable[[str, int, Context], Awaitable[dict[str, Any]]]


async def _isolated(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a fresh context: a graph run started inside a node must not become that node's subgraph."""
    return await asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


class ApprovalThreadRunner:
    """Starts and resumes approval threads (implements :class:`nodes.effects.ApprovalThreads`).

    Args:
        graph: the approval graph compiled with a checkpointer (``graphs.approval.builder.compile(...)``).
        config_for: tracing config of a run; ``None`` adds none.
    """

    def __init__(self, graph: Any, config_for: ConfigFor | None = None) -> None:
        self.graph = graph
        self.config_for = config_for

    async def _config(self, request_id: int, revision: int, ctx: Context) -> dict[str, Any]:
        thread = approval_thread_id(request_id, revision)
        trace = await self.config_for(thread, request_id, ctx) if self.config_for is not None else {}
        return {**trace, "configurable": {"thread_id": thread}}

    async def start(self, request_id: int, revision: int, ctx: Context) -> list[dict[str, Any]]:
        """Start the revision's thread unless it exists; return the approver's messages.

        A thread that exists returns the messages it recorded when it asked (also once it has been decided);
        one a crash left before it asked is continued from its checkpoint first.
        """
        cfg = await self._config(request_id, revision, ctx)
        snap = await self.graph.aget_state(cfg)
        if not snap.values:
            payload = {"request_id": request_id, "revision": revision}
            await _isolated(self.graph.ainvoke(payload, cfg, context=ctx))
        elif snap.next and not _waiting(snap) and not snap.values.get("decision"):
            await _isolated(self.graph.ainvoke(None, cfg, context=ctx))
        return await self._asked(cfg)

    async def _asked(self, cfg: dict[str, Any]) -> list[dict[str, Any]]:
        """The messages the thread recorded when it paused for the approver (its later steps replace them)."""
        async for snap in self.graph.aget_state_history(cfg):  # newest first
            if _waiting(snap):
                return list(snap.values.get("outbound") or [])
        return []

    async def resume(
        self, request_id: int, revision: int, answer: ApprovalAnswer, ctx: Context
    ) -> list[dict[str, Any]]:
        """Resume the waiting thread with ``answer`` as ``ctx.user`` (the decider); return its notices.

        A thread that was decided already returns the notices it recorded (and is first continued from its
        checkpoint when a crash left it mid-step, e.g. before its fulfilment was enqueued); a thread that never
        started returns ``[]``.
        """
        cfg = await self._config(request_id, revision, ctx)
        snap = await self.graph.aget_state(cfg)
        if snap.next and not _waiting(snap):  # a crash left it mid-step: finish that step first
            await _isolated(self.graph.ainvoke(None, cfg, context=ctx))
            snap = await self.graph.aget_state(cfg)
        if _waiting(snap):
            values = await _isolated(self.graph.ainvoke(Command(resume=answer), cfg, context=ctx))
        elif snap.values and snap.values.get("decision"):
            values = snap.values
        else:
            return []
        return list(values.get("outbound") or [])


def _waiting(snap: Any) -> bool:
    """Whether the thread is paused at its approval interrupt."""
    return any(task.interrupts for task in snap.tasks or ())
