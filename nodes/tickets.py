"""Support-ticket nodes: open a ticket from a complaint about a delivery, answer ``status T-3``.

Neither node touches the draft. Opening a ticket is a side effect of the graph: the row is inserted once per
inbound message (a re-run turn finds it again), the buyers are notified through the turn's ``outbound``, and
an audit-log entry records who opened what about which request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langgraph.runtime import Runtime

from core.domain import Inbound, State
from nodes.commands import may_see_request
from nodes.common import add_note, current, engine_of, record, user_of
from nodes.compose import fmt_date, t, text_msg
from nodes.routing import ticket_query_of
from tools import requests as R
from tools import tickets as TK

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

#: The person's words as quoted to buyers and in ``status T-3`` (characters).
QUOTE_CHARS = 300


def kind_text(kind: str) -> str:
    """The reply text for a ticket kind (``wrong_item`` -> "wrong item")."""
    return t(f"ticket_kind_{kind}") if kind in ("wrong_item", "not_delivered", "damaged") else t("ticket_kind_other")


def _source_key(msg: Inbound, ctx: Context) -> str | None:
    # The provider's message id is unique per inbound message; inbox ids are unique per stored row.
    if msg.get("provider_message_id"):
        return f"{ctx.provider}:{msg['provider_message_id']}"
    if msg.get("inbox_id") is not None:
        return f"inbox:{msg['inbox_id']}"
    return None


async def open_ticket(state: State, runtime: Runtime[Context]) -> State:
    """Open a support ticket for a complaint about something delivered or ordered, and notify a buyer.

    The ticket is linked to the ``PR-<n>`` the message names (only if the sender may see that request; otherwise
    the answer is the same "not found" as for a missing one and nothing is opened), else to the sender's latest
    ordered or approved request (the reply says which), else to none. Notified: the buyers of the request's
    site, else every buyer, else the admins; the first of them is the ticket's assignee.
    """
    ctx = runtime.context
    user = user_of(runtime)
    msg, pending = current(state)
    text = (msg.get("text") or "").strip()
    out: State = {"pending": pending}
    draft_open = bool((state.get("draft") or {}).get("lines"))
    complaint = TK.complaint_of(text, draft_open=draft_open) or TK.Complaint("other", None)

    req: R.RequestView | None = None
    linked = "none"
    if complaint.request_id is not None:
        req = await R.get_request(engine_of(ctx), complaint.request_id)
        if req is None or not may_see_request(user, req):
            await record(runtime, "ticket.refused", msg=msg, details={"request": R.number_of(complaint.request_id)})
            return {**out, "notes": add_note(state, t("not_found", number=R.number_of(complaint.request_id)))}
        linked = "named"
    else:
        rid = await TK.latest_delivered_request(engine_of(ctx), user.id)
        if rid is not None:
            req = await R.get_request(engine_of(ctx), rid)
            linked = "latest"

    staff = await TK.staff_to_notify(engine_of(ctx), req.site if req else user.site, exclude=user.id)
    ticket, created = await TK.open_ticket(
        engine_of(ctx),
        requester=user,
        kind=complaint.kind,
        text=text,
        chat_id=ctx.chat_id,
        provider=ctx.provider,
        request_id=req.id if req else None,
        assignee_id=staff[0].id if staff else None,
        source_message_id=_source_key(msg, ctx),
    )
    if created:
        await record(
            runtime,
            "ticket.opened",
            request_id=ticket.request_id,
            msg=msg,
            details={
                "ticket": ticket.number,
                "kind": ticket.kind,
                "linked": linked,
                "notified": [u.id for u in staff],
            },
        )

    if req is None:
        link = t("ticket_unlinked")
    elif linked == "named":
        link = t("ticket_linked", request=req.number)
    else:
        link = t("ticket_linked_latest", request=req.number, status=req.status.replace("_", " "))
    notified = t("ticket_notified", who=staff[0].display_name) if staff else t("ticket_nobody")
    reply = t("ticket_opened", number=ticket.number, link=link, notified=notified)
    about = t("ticket_about", request=req.number) if req else ""
    to_staff = [
        text_msg(
            u.wa_id,
            t(
                "ticket_for_staff",
                number=ticket.number,
                requester=user.display_name,
                about=about,
                kind=kind_text(ticket.kind),
                text=text[:QUOTE_CHARS],
            ),
        )
        for u in staff
    ]
    return {
        **out,
        "notes": add_note(state, reply),
        "outbound": [*(state.get("outbound") or []), *to_staff],
    }


async def answer_ticket(state: State, runtime: Runtime[Context]) -> State:
    """Answer ``status T-3``: only the ticket's requester, buyers and admins see it (checked server-side).

    Anyone else gets the same "not found" answer as for a ticket that does not exist.
    """
    ctx = runtime.context
    user = user_of(runtime)
    msg, pending = current(state)
    ticket_id = ticket_query_of(msg.get("text") or "")
    assert ticket_id is not None
    number = TK.ticket_number(ticket_id)
    ticket = await TK.ticket_for(engine_of(ctx), ticket_id, user)
    if ticket is None:
        if await TK.get_ticket(engine_of(ctx), ticket_id) is not None:
            await record(runtime, "ticket.view_refused", msg=msg, details={"ticket": number})
        return {"pending": pending, "notes": add_note(state, t("ticket_not_found", number=number))}
    body = t(
        "ticket_status",
        number=ticket.number,
        status=ticket.status,
        kind=kind_text(ticket.kind),
        about=t("ticket_about", request=R.number_of(ticket.request_id)) if ticket.request_id else "",
        requester=ticket.requester.display_name,
        created=fmt_date(ticket.created_at.date()) if ticket.created_at else "—",
        text=ticket.text[:QUOTE_CHARS],
        who=ticket.assignee.display_name if ticket.assignee else t("ticket_nobody_assigned"),
    )
    return {"pending": pending, "notes": add_note(state, body)}
