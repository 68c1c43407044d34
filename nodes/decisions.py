"""Button and list replies: confirm or cancel a draft, pick a candidate, approve or reject, retry an order.

Approval decisions are validated here (so a stale or foreign button gets a clear answer at once) and recorded
as effects: the ``resume_approval`` effect node (:mod:`nodes.effects`) resumes the request's approval thread
(``Command(resume=...)``), which re-checks them in the database.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from langgraph.runtime import Runtime

from core.domain import Awaiting, Effect, Role, State
from core.policy import may_decide
from nodes import draft as D
from nodes.common import add_note, current, engine_of, record, user_of
from nodes.compose import t
from nodes.intake import _complete, _today, learn_choice, resolve_stale, submit_draft
from tools import requests as R
from tools.extraction.units import convert

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

DECISION_RE = re.compile(r"^(approve|reject):(\d+):(\d+)$")
PICK_RE = re.compile(r"^pick:(\d+):(.+)$")
RETRY_RE = re.compile(r"^retry:(\d+)$")


async def check_decision(runtime: Runtime[Context], request_id: int, revision: int) -> str | None:
    """Why this user may not decide this request revision now (a reply text), or ``None`` when they may."""
    ctx = runtime.context
    user = user_of(runtime)
    req = await R.get_request(engine_of(ctx), request_id)
    number = R.number_of(request_id)
    if req is None:
        return t("not_found", number=number)
    why = may_decide(
        user_id=user.id,
        role=user.role,
        requester_id=req.requester.id,
        approver_id=req.approver.id if req.approver else None,
    )
    if why == "own_request":
        await record(runtime, "decision.refused", request_id=request_id, details={"why": why})
        return t("own_request", number=number)
    if why is not None:
        await record(runtime, "decision.refused", request_id=request_id, details={"why": why})
        return t("foreign_decision", number=number)
    if req.status != "pending_approval":
        return t("stale_decision", number=number, status=req.status.replace("_", " "))
    if req.revision != revision:
        return t("outdated_decision", number=number)
    return None


async def handle_button(state: State, runtime: Runtime[Context]) -> State:
    """Act on a reply-button or list-row id (ids are ours: ``confirm``, ``pick:1:SKU``, ``approve:12:1``...)."""
    ctx = runtime.context
    user = user_of(runtime)
    msg, pending = current(state)
    rid = msg.get("reply_id") or ""
    base: State = {"pending": pending}
    draft = state.get("draft")

    if rid == "confirm":
        if not D.lines_of(draft):
            return {**base, "notes": add_note(state, t("no_draft"))}
        if not _complete(draft, _today(msg, ctx)):
            return {**base, "show_summary": True}
        return {**base, **(await submit_draft({**state, "pending": pending}, runtime, msg))}

    if rid == "cancel_draft":
        if not D.lines_of(draft):
            return {**base, "notes": add_note(state, t("no_draft"))}
        await record(runtime, "draft.discarded", msg=msg)
        return {**base, "draft": None, "notes": add_note(state, t("draft_cancelled")), "show_summary": False}

    if rid in ("stale:add", "stale:new"):
        if not (draft or {}).get("previous"):
            return {**base, "notes": add_note(state, t("stale_closed"))}
        return {**base, **resolve_stale(state, rid.split(":", 1)[1])}

    if m := PICK_RE.match(rid):
        idx, sku = int(m.group(1)), m.group(2)
        lines = D.lines_of(draft)
        item = ctx.catalog.get(sku) if ctx.catalog else None
        if item is None or not (0 <= idx < len(lines)) or sku not in (lines[idx].candidates or [lines[idx].sku or ""]):
            return {**base, "notes": add_note(state, t("choice_closed")), "show_summary": True}
        ln = lines[idx]
        if ln.sku is None:
            await learn_choice(runtime, ln.description, item.sku, msg)
        conv = convert(ln.quantity, None if ln.unit == "unit" else ln.unit, item)
        ln.sku, ln.candidates, ln.description = item.sku, [], item.name
        ln.quantity, ln.unit = conv.quantity, conv.unit
        ln.unit_price = item.unit_price if conv.unit == item.unit else None
        ln.confidence = 1.0 if conv.unit == item.unit else 0.45
        await record(runtime, "draft.edited", msg=msg, details={"changes": [{"op": "pick", "sku": sku, "line": idx}]})
        return {**base, "draft": D.with_lines(draft, lines), "show_summary": True}

    if m := DECISION_RE.match(rid):
        action, request_id, revision = m.group(1), int(m.group(2)), int(m.group(3))
        problem = await check_decision(runtime, request_id, revision)
        if problem:
            return {**base, "notes": add_note(state, problem)}
        if action == "reject":
            awaiting: Awaiting = {"kind": "reject_reason", "request_id": request_id, "revision": revision}
            return {
                **base,
                "awaiting": awaiting,
                "notes": add_note(state, t("ask_reject_reason", number=R.number_of(request_id))),
            }
        effect: Effect = {
            "type": "resume_approval",
            "request_id": request_id,
            "revision": revision,
            "decision": "approve",
            "by": user.id,
        }
        return {**base, "effects": [*(state.get("effects") or []), effect]}

    if m := RETRY_RE.match(rid):
        if user.role not in (Role.BUYER, Role.ADMIN):
            return {**base, "notes": add_note(state, t("not_allowed"))}
        retry: Effect = {"type": "retry_fulfilment", "fulfilment_id": int(m.group(1)), "by": user.id}
        return {
            **base,
            "effects": [*(state.get("effects") or []), retry],
            "notes": add_note(state, t("fulfil_retrying")),
        }

    return {**base, "notes": add_note(state, t("button_inactive"))}


async def handle_reason(state: State, runtime: Runtime[Context]) -> State:
    """The approver's rejection reason: re-check, then resume the approval thread with ``reject``."""
    user = user_of(runtime)
    msg, pending = current(state)
    awaiting = state.get("awaiting")
    if awaiting is None:
        raise ValueError("handle_reason runs only while a reject reason is awaited")
    base: State = {"pending": pending, "awaiting": None}
    problem = await check_decision(runtime, awaiting["request_id"], awaiting["revision"])
    if problem:
        return {**base, "notes": add_note(state, problem)}
    effect: Effect = {
        "type": "resume_approval",
        "request_id": awaiting["request_id"],
        "revision": awaiting["revision"],
        "decision": "reject",
        "by": user.id,
        "reason": (msg.get("text") or "").strip()[:500],
    }
    return {**base, "effects": [*(state.get("effects") or []), effect]}
