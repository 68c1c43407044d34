"""Approval thread nodes: one thread per request revision pauses at ``interrupt()`` for the approver's answer.

``prepare_approval`` only reads, so LangGraph's re-run of a node from its first line on resume is harmless;
the decision is applied in ``apply_decision`` with a conditional UPDATE that re-checks who decides and whether
the request is still pending at that revision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from core.domain import ApprovalAnswer, ApprovalState, Effect
from nodes.common import engine_of
from nodes.compose import button_title, buttons_msg, fmt_date, render_lines, t, text_msg
from tools import requests as R

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context


def approval_thread_id(request_id: int, revision: int) -> str:
    """Thread id of a request revision's approval: ``approval:PR-12:r2``."""
    return f"approval:PR-{request_id}:r{revision}"


class ApprovalInterrupt(TypedDict):
    """Payload of the approval interrupt (what Studio and the worker see while the thread waits).

    Fields:
        request_id: purchase request id; ``number`` its ``PR-<id>``.
        revision: the revision to approve.
        approver_id: the assigned approver (admins may also answer).
        allowed: the answers the thread accepts.
    """

    request_id: int
    number: str
    revision: int
    approver_id: int | None
    allowed: list[Literal["approve", "reject"]]


async def prepare_approval(state: ApprovalState, runtime: Runtime[Context]) -> ApprovalState:
    """Compose the approver's message with Approve / Reject buttons (read-only; safe to repeat)."""
    ctx = runtime.context
    req = await R.get_request(engine_of(ctx), state["request_id"])
    if req is None or req.approver is None:
        return {"outbound": [], "outcome": "not_found"}
    tpl = "approval_request" if req.revision == 1 else "approval_request_revised"
    body = t(
        tpl,
        number=req.number,
        requester=req.requester.display_name,
        site=req.site or "—",
        lines="\n".join(render_lines(req.lines)),
        needed_by=fmt_date(req.needed_by),
        total=str(req.total),
        revision=req.revision,
    )
    buttons = [
        (f"approve:{req.id}:{req.revision}", button_title("approve")),
        (f"reject:{req.id}:{req.revision}", button_title("reject")),
    ]
    to = req.approver.wa_id
    if len(body) > 1024:
        return {
            "approver_id": req.approver.id,
            "outbound": [text_msg(to, body), buttons_msg(to, t("approve_short", number=req.number), buttons)],
        }
    return {"approver_id": req.approver.id, "outbound": [buttons_msg(to, body, buttons)]}


def await_decision(state: ApprovalState) -> ApprovalState:
    """Pause until the approver answers; resumed with ``Command(resume={"decision", "reason"})`` (an ApprovalAnswer).

    Who answers is the resuming run's ``runtime.context.user``, never a field of the answer.

    Raises:
        ValueError: the answer is not a dict with ``decision`` one of approve, reject, superseded.
    """
    payload: ApprovalInterrupt = {
        "request_id": state["request_id"],
        "number": R.number_of(state["request_id"]),
        "revision": state.get("revision", 1),
        "approver_id": state.get("approver_id"),
        "allowed": ["approve", "reject"],
    }
    answer = interrupt(payload)
    if not isinstance(answer, dict) or answer.get("decision") not in ("approve", "reject", "superseded"):
        raise ValueError(f"invalid approval answer: {answer!r}")
    decision: ApprovalAnswer = {"decision": answer["decision"], "reason": answer.get("reason")}
    return {"decision": decision}


async def apply_decision(state: ApprovalState, runtime: Runtime[Context]) -> ApprovalState:
    """Apply the answer in the database as the run's user and tell the requester and the approver.

    The decider is ``runtime.context.user`` (the approver whose turn resumed the thread), never a field of the
    resume payload; :func:`tools.requests.decide` re-checks that they may decide this revision now.
    """
    ctx = runtime.context
    decision = state.get("decision")
    if decision is None:
        raise ValueError("apply_decision runs only after await_decision")
    if decision["decision"] == "superseded":
        return {"outcome": "superseded", "outbound": [], "effects": []}
    actor = ctx.user
    if actor is None:
        return {"outcome": "unknown_actor", "outbound": [], "effects": []}
    res = await R.decide(
        engine_of(ctx),
        state["request_id"],
        revision=state.get("revision", 1),
        decision=decision["decision"],
        actor=actor,
        reason=decision.get("reason"),
    )
    number = R.number_of(state["request_id"])
    if res.outcome != "ok" or res.request is None:
        status = res.request.status.replace("_", " ") if res.request else "unknown"
        return {
            "outcome": res.outcome,
            "outbound": [text_msg(actor.wa_id, t("stale_decision", number=number, status=status))],
        }
    req = res.request
    effects: list[Effect] = []
    if decision["decision"] == "approve":
        outbound = [
            text_msg(req.requester.wa_id, t("approved_requester", number=number, approver=actor.display_name)),
            text_msg(actor.wa_id, t("approved_approver", number=number, requester=req.requester.display_name)),
        ]
        effects.append({"type": "fulfil", "request_id": req.id})
    else:
        outbound = [
            text_msg(
                req.requester.wa_id,
                t(
                    "rejected_requester",
                    number=number,
                    approver=actor.display_name,
                    reason=decision.get("reason") or "—",
                ),
            ),
            text_msg(actor.wa_id, t("rejected_approver", number=number, requester=req.requester.display_name)),
        ]
    return {"outcome": "ok", "outbound": outbound, "effects": effects}
