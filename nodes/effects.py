"""Effect nodes: a turn's business side effects, run inside the graphs so Studio shows the whole flow.

Handlers only record what must happen in ``state["effects"]``; the nodes here carry it out with the identity and
clients of ``runtime.context`` (an approval-thread runner and a fulfilment queue the worker injects). Entries::

    {"type": "start_approval", "request_id": 12, "revision": 2}            nodes.intake (submit, amendment)
    {"type": "resume_approval", "request_id": 12, "revision": 2,
     "decision": "approve" | "reject", "by": 7, "reason": "..."}           nodes.decisions (button, reason)

(:class:`core.domain.Effect`; ``by`` is for the record only: the nodes act as ``runtime.context.user``.)
    {"type": "cancelled", "request_id": 12}                                nodes.commands (cancel PR-12)
    {"type": "retry_fulfilment", "fulfilment_id": 5, "by": 7}              nodes.decisions (Retry button)
    {"type": "fulfil", "request_id": 12}                                   nodes.approval (approved; approval graph)

Procurement graph, after ``respond``: ``start_approval`` -> ``supersede_approval`` -> ``resume_approval`` ->
``retry_fulfilment``, each only when the turn has effects of its kind (:func:`route_effects_after`). Approval
graph: ``apply_decision`` -> ``enqueue_fulfilment`` after an approval.

LangGraph re-runs a node from its first line after a crash or resume, so every node is idempotent: an approval
thread that exists is not started again (its recorded messages are returned), a decided one is not resumed
again, fulfilments are created once per supplier and their jobs enqueued under stable ids. Messages for other
chats (the approver's buttons, decision notices) are appended to ``outbound`` with an ``outbox_key`` (see
:func:`keyed`), so the worker sends each exactly once however often a node runs.

Without the clients (``Context.approvals``/``Context.fulfilment`` is ``None``: Studio, the graph tests' harness,
evaluations) the nodes do nothing and the effects stay in the State for the caller to apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from langgraph.runtime import Runtime

from core.domain import ApprovalAnswer, ApprovalState, Effect, EffectType, State
from nodes.approval import approval_thread_id
from nodes.common import engine_of, user_of
from nodes.compose import t, text_msg
from tools import requests as R

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

log = logging.getLogger(__name__)

#: Outbound message field naming the message's own idempotency key (the worker sends it once under that key).
OUTBOX_KEY = "outbox_key"
#: The procurement graph's effect nodes, in the order they run.
EFFECT_NODES = ("start_approval", "supersede_approval", "resume_approval", "retry_fulfilment")
EffectNode = Literal["start_approval", "supersede_approval", "resume_approval", "retry_fulfilment", "__end__"]


class ApprovalThreads(Protocol):
    """Runs request revisions' approval threads (the approval graph with the worker's checkpointer)."""

    async def start(self, request_id: int, revision: int, ctx: Context) -> list[dict[str, Any]]:
        """Start the revision's thread unless it exists; return the approver's messages (recorded ones if it did)."""
        ...

    async def resume(self, request_id: int, revision: int, answer: ApprovalAnswer, ctx: Context) -> list[dict[str, Any]]:
        """Resume a waiting thread with ``answer`` as ``ctx.user`` (the decider); return its notices.

        A thread that was already decided returns its recorded notices; one never started returns ``[]``.
        """
        ...


class FulfilmentQueue(Protocol):
    """Creates fulfilments and enqueues their jobs (idempotent: stable job ids)."""

    async def request(self, request_id: int, *, provider: str) -> int:
        """Fulfil an approved request: one fulfilment per supplier, each job enqueued; returns jobs enqueued now."""
        ...

    async def retry(self, fulfilment_id: int, by: int, *, provider: str, token: str) -> str:
        """A Retry press by user ``by`` (role re-checked); ``token`` identifies the press; returns the outcome."""
        ...


def keyed(messages: list[dict[str, Any]], key_prefix: str) -> list[dict[str, Any]]:
    """``messages`` tagged with their outbox keys ``<key_prefix>:<index>`` (sent once per key)."""
    return [{**m, OUTBOX_KEY: f"{key_prefix}:{i}"} for i, m in enumerate(messages)]


def _of(state: State, kind: EffectType) -> list[tuple[int, Effect]]:
    return [(i, e) for i, e in enumerate(state.get("effects") or []) if e.get("type") == kind]


def _needed(state: State, node: str) -> bool:
    if node == "start_approval":
        return bool(_of(state, "start_approval"))
    if node == "supersede_approval":
        return bool(_of(state, "cancelled")) or any(e.get("revision", 1) > 1 for _, e in _of(state, "start_approval"))
    if node == "resume_approval":
        return bool(_of(state, "resume_approval"))
    return bool(_of(state, "retry_fulfilment"))


def effects_after(node: str) -> tuple[str, ...]:
    """The effect nodes that may follow ``node`` (``respond`` or an effect node), in order."""
    return EFFECT_NODES[EFFECT_NODES.index(node) + 1 :] if node in EFFECT_NODES else EFFECT_NODES


def route_effects_after(node: str) -> Callable[[State], EffectNode]:
    """Router factory: after ``node`` (``respond`` or an effect node), the next effect node the turn needs, or END."""
    later = effects_after(node)

    def route_effects(state: State) -> EffectNode:
        for name in later:
            if _needed(state, name):
                return cast(EffectNode, name)
        return "__end__"

    route_effects.__name__ = f"route_effects_after_{node}"
    return route_effects


def _with_outbound(state: State, extra: list[dict[str, Any]]) -> State:
    return {"outbound": [*(state.get("outbound") or []), *extra]} if extra else {}


async def start_approval(state: State, runtime: Runtime[Context]) -> State:
    """Start each submitted revision's approval thread; the approver's Approve/Reject message goes out once."""
    ctx = runtime.context
    if ctx.approvals is None:
        return {}
    out: list[dict[str, Any]] = []
    for _, eff in _of(state, "start_approval"):
        rid, rev = int(eff["request_id"]), int(eff["revision"])
        out += keyed(await ctx.approvals.start(rid, rev, ctx), f"{approval_thread_id(rid, rev)}:ask")
    return _with_outbound(state, out)


async def supersede_approval(state: State, runtime: Runtime[Context]) -> State:
    """Close approval threads nobody needs to answer any more (the superseded revision, a cancelled request).

    The previous revision of an amended request is superseded; so is the current revision of a cancelled
    request, whose approver is told once.
    """
    ctx = runtime.context
    if ctx.approvals is None:
        return {}
    superseded: ApprovalAnswer = {"decision": "superseded"}
    out: list[dict[str, Any]] = []
    for _, eff in _of(state, "start_approval"):
        rid, rev = int(eff["request_id"]), int(eff["revision"])
        if rev > 1:
            prev = approval_thread_id(rid, rev - 1)
            out += keyed(await ctx.approvals.resume(rid, rev - 1, superseded, ctx), f"{prev}:decided")
    for i, eff in _of(state, "cancelled"):
        req = await R.get_request(engine_of(ctx), int(eff["request_id"]))
        if req is None:
            continue
        thread = approval_thread_id(req.id, req.revision)
        out += keyed(await ctx.approvals.resume(req.id, req.revision, superseded, ctx), f"{thread}:decided")
        if req.approver is not None:
            body = t("cancelled_approver", number=req.number, requester=req.requester.display_name)
            out += keyed([text_msg(req.approver.wa_id, body)], f"turn:{ctx.turn_id}:effect:{i}:notify")
    return _with_outbound(state, out)


async def resume_approval(state: State, runtime: Runtime[Context]) -> State:
    """Resume approval threads with the decisions of this turn (re-checked in the thread against the database)."""
    ctx = runtime.context
    if ctx.approvals is None:
        return {}
    out: list[dict[str, Any]] = []
    for _, eff in _of(state, "resume_approval"):
        rid, rev = int(eff["request_id"]), int(eff["revision"])
        answer: ApprovalAnswer = {"decision": eff["decision"], "reason": eff.get("reason")}
        out += keyed(await ctx.approvals.resume(rid, rev, answer, ctx), f"{approval_thread_id(rid, rev)}:decided")
    return _with_outbound(state, out)


async def retry_fulfilment(state: State, runtime: Runtime[Context]) -> State:
    """Start a new round of each failed fulfilment whose Retry button was pressed (by the sender of the turn)."""
    ctx = runtime.context
    retries = _of(state, "retry_fulfilment")
    if ctx.fulfilment is None:
        if retries:
            log.info("no fulfilment queue in this process; Retry left for the fulfilment worker")
        return {}
    if not retries:
        return {}
    by = user_of(runtime).id  # the sender of the turn; the effect's own "by" is for the record only
    for _, eff in retries:
        await ctx.fulfilment.retry(
            int(eff["fulfilment_id"]), by, provider=ctx.provider, token=f"turn{ctx.turn_id or 0}"
        )
    return {}


def route_after_decision(state: ApprovalState) -> Literal["enqueue_fulfilment", "__end__"]:
    """Router of the approval graph: fulfilment after an approval, else the thread ends."""
    wants = any(e.get("type") == "fulfil" for e in state.get("effects") or [])
    return "enqueue_fulfilment" if wants else "__end__"


async def enqueue_fulfilment(state: ApprovalState, runtime: Runtime[Context]) -> ApprovalState:
    """Approval graph: turn the approved request into fulfilments and enqueue their jobs (idempotent)."""
    ctx = runtime.context
    if ctx.fulfilment is None:
        log.info("no fulfilment queue in this process; PR-%s left for the fulfilment worker", state.get("request_id"))
        return {}
    for eff in state.get("effects") or []:
        if eff.get("type") == "fulfil":
            await ctx.fulfilment.request(int(eff["request_id"]), provider=ctx.provider or "meta")
    return {}
