"""Command nodes: help, status, my requests, cancel, pending, orders, and read-only catalogue questions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langgraph.runtime import Runtime

from core.domain import Effect, Role, State
from nodes.common import add_note, catalog_of, current, engine_of, record, user_of
from nodes.compose import fmt_date, render_lines, t
from nodes.routing import command_of
from tools import requests as R
from tools.extraction import answer_query
from tools.intake_tools import SEE_ALL, may_see_request

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

__all__ = ["SEE_ALL", "answer_catalog", "handle_command", "may_see_request", "render_request", "request_row"]


def render_request(req: R.RequestView) -> str:
    """WhatsApp text of one request: header, lines, site, date, total, approver, decision reason."""
    parts = [t("request_header", number=req.number, status=req.status.replace("_", " "))]
    parts += render_lines(req.lines)
    parts.append(t("site", site=req.site or "—"))
    parts.append(t("needed_by", needed_by=fmt_date(req.needed_by)))
    parts.append(t("total", total=str(req.total)))
    if req.approver:
        parts.append(t("request_approver", approver=req.approver.display_name))
    if req.decision_reason:
        parts.append(t("request_reason", reason=req.decision_reason))
    return "\n".join(parts)


async def handle_command(state: State, runtime: Runtime[Context]) -> State:
    """Run a command (help, status, my requests, cancel, pending, orders).

    Who may see what is checked here, server-side: requesters see their own requests, approvers also those
    they approve, buyers and admins everything.
    """
    ctx = runtime.context
    user = user_of(runtime)
    msg, pending = current(state)
    parsed = command_of(msg.get("text") or "")
    assert parsed is not None
    name, args = parsed
    out: State = {"pending": pending}

    def note(text: str) -> State:
        return {**out, "notes": add_note(state, text)}

    if name == "help":
        extras = [t("approver_help")] if user.role in (Role.APPROVER, Role.ADMIN) else []
        if user.role in SEE_ALL:
            extras.append(t("buyer_help"))
        extras.append(t("ticket_help"))
        # One bullet per line (TOML drops the newline that opens a multi-line string).
        return note(t("help", approver_help="".join("\n" + x.strip("\n") for x in extras)))

    if name == "cancel_draft":
        if not (state.get("draft") or {}).get("lines"):
            return note(t("no_draft"))
        await record(runtime, "draft.discarded", msg=msg)
        return {**out, "draft": None, "notes": add_note(state, t("draft_cancelled")), "show_summary": False}

    if name == "my_requests" or (name == "status" and "request_id" not in args):
        reqs = await R.list_requests(engine_of(ctx), requester_id=user.id, limit=10)
        if not reqs:
            return note(t("status_none"))
        if name == "status" and len(reqs) >= 1:
            text = render_request(reqs[0])
            if len(reqs) > 1:
                text += "\n\n" + t("my_requests_header") + "\n" + "\n".join(request_row(r) for r in reqs[1:5])
            return note(text)
        return note(t("my_requests_header") + "\n" + "\n".join(request_row(r) for r in reqs))

    if name in ("status", "orders"):
        req = await R.get_request(engine_of(ctx), args["request_id"])
        number = R.number_of(args["request_id"])
        if req is None or not may_see_request(user, req):
            # Same answer for "missing" and "not yours": no probing other people's request numbers.
            return note(t("not_found", number=number))
        if name == "orders":
            if user.role not in SEE_ALL:
                return note(t("not_allowed"))
            from tools.fulfilment_view import orders_text

            return note(await orders_text(engine_of(ctx), req))
        return note(render_request(req))

    if name == "cancel":
        number = R.number_of(args["request_id"])
        res = await R.cancel_request(engine_of(ctx), args["request_id"], actor=user)
        if res.outcome == "not_found" or res.outcome == "not_yours":
            return note(t("not_found", number=number))
        if res.outcome == "stale" and res.request:
            return note(t("cannot_cancel", number=number, status=res.request.status.replace("_", " ")))
        cancelled: Effect = {"type": "cancelled", "request_id": args["request_id"]}
        effects = [*(state.get("effects") or []), cancelled]
        upd: State = {**note(t("cancelled", number=number)), "effects": effects}
        if state.get("active_request_id") == args["request_id"]:
            upd["active_request_id"] = None
        return upd

    if name == "pending":
        if user.role not in (Role.APPROVER, Role.ADMIN):
            return note(t("not_allowed"))
        reqs = await R.pending_for(engine_of(ctx), user)
        if not reqs:
            return note(t("pending_none"))
        return note(t("pending_header") + "\n" + "\n".join(request_row(r, who=True) for r in reqs))

    if name == "approve_text":
        return note(t("use_buttons"))
    return note(t("not_understood"))


def request_row(r: R.RequestView, who: bool = False) -> str:
    """One-line summary of a request (with the requester's name when ``who``)."""
    row = t(
        "request_row",
        number=r.number,
        status=r.status.replace("_", " "),
        total=str(r.total),
        n_lines=len(r.lines),
        site=r.site or "—",
    )
    return row + (t("request_row_who", requester=r.requester.display_name) if who else "")


async def answer_catalog(state: State, runtime: Runtime[Context]) -> State:
    """Answer "do we stock A3 paper?" / "price of HP 26X?" read-only from the catalogue; no draft is started."""
    ctx = runtime.context
    msg, pending = current(state)
    items = answer_query(msg.get("text") or "", catalog_of(ctx))[:5]
    if not items:
        return {"pending": pending, "notes": add_note(state, t("catalog_none"))}
    rows = [t("catalog_row", name=i.name, sku=i.sku, price=str(i.unit_price), unit=i.unit) for i in items]
    return {"pending": pending, "notes": add_note(state, t("catalog_header") + "\n" + "\n".join(rows))}
