"""Support tickets (``T-<id>``): complaint detection, the ticket store, who may see a ticket, whom to notify.

A complaint is recognised from the message's structure, not from example sentences: a *problem* (wrong,
damaged, torn, missing, late, "hasn't arrived", Swahili "vibaya", "imeharibika", "haijafika"...) about something
*delivered or ordered* (a past-tense delivery verb, "delivery"/"order"/"mzigo", or a ``PR-<n>`` reference). A
problem word alone ("wrong quantity, make it 30") or a delivery word alone ("has PR-12 been delivered?") is not
a complaint. Authorisation is checked here, server-side: a ticket is visible to its requester, buyers and admins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import desc, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import purchase_requests, tickets, users
from core.domain import RequestStatus, Role
from core.repo import User

TicketKind = Literal["wrong_item", "not_delivered", "damaged", "other"]
#: Request statuses a delivery complaint without a number can refer to (approved requests are being ordered).
DELIVERED_STATUSES = (RequestStatus.ORDERED.value, RequestStatus.APPROVED.value)
#: Roles that see every ticket (and are notified of new ones).
STAFF_ROLES = (Role.BUYER, Role.ADMIN)

TICKET_RE = re.compile(r"\bT[-\s]?(\d{1,9})\b", re.IGNORECASE)
_PR_RE = re.compile(r"\bPR[-\s]?(\d{1,9})\b", re.IGNORECASE)
_NEG = r"(?:hasn'?t|has\s+not|haven'?t|have\s+not|hadn'?t|didn'?t|did\s+not|never|not\s+yet|still\s+not|not|isn'?t|wasn'?t|weren'?t|aren'?t)"  # noqa: E501
_ARRIVE = r"(?:arrived?|come|came|delivered|received|reached|got\s+here|shown\s+up|turned\s+up|been\s+delivered|been\s+received|get|got)"  # noqa: E501
# "not arrived" is both the problem and the delivery: it says an order did not come.
_NOT_ARRIVED = re.compile(rf"\b{_NEG}\s+(?:[\w'-]+\s+){{0,3}}?{_ARRIVE}\b")
# Swahili negative perfect of "arrive"/"receive": haijafika, hazijafika, havijafika, hatujapokea, sijapokea...
_SW_NOT_ARRIVED = re.compile(
    r"\b(?:ha(?:i|zi|vi|li|ya|u|ki)(?:ja|ku)(?:fika|letwa)|(?:hatu|si|ham|hu)(?:ja|ku)(?:pokea|pata|letewa))\b"
)
_PROBLEMS: dict[TicketKind, re.Pattern[str]] = {
    "wrong_item": re.compile(
        r"\b(?:wrong|incorrect|not\s+what\s+(?:i|we)\s+(?:ordered|asked\s+for|requested)|mistaken|"
        r"(?:doesn'?t|does\s+not|don'?t|do\s+not)\s+fit|not\s+compatible|"
        r"(?:got|received|sent|brought|delivered)\b[\w\s'-]{0,40}?\binstead\s+of|"
        r"(?:si|sio|siyo)\s+sahihi|makosa|kosa|tofauti)\b"
    ),
    "damaged": re.compile(
        r"\b(?:damaged|broken|torn|ripped|cracked|leak(?:ing|ed|s)?|dented|crushed|defective|faulty|expired|"
        r"spoilt|spoiled|rotten|not\s+working|doesn'?t\s+work|don'?t\s+work|mbovu|vibovu|zimeoza|"
        r"ha(?:i|zi|vi|li|ya)fanyi\s+kazi|"
        r"(?:i|zi|vi|li|ya|u|ki)me(?:haribika|vunjika|chanika|pasuka|oza|vuja|kwisha\s+muda))\b"
    ),
    "not_delivered": re.compile(
        r"\b(?:missing|late|overdue|delayed|incomplete|short\s+by|short[-\s]delivered|less\s+than\s+(?:i|we)\s+ordered|"
        r"(?:i|zi|vi|li|ya|u|ki)me(?:chelewa|potea)|pungufu|hazitoshi|havitoshi)\b"
    ),
    "other": re.compile(r"\b(?:vibaya|mbaya|problem|issue|complaint|tatizo|shida|malalamiko)\b"),
}
# Something was delivered/ordered: past-tense delivery verbs, delivery nouns, Swahili perfect/past forms.
_DELIVERY = re.compile(
    r"\b(?:delivered|delivery|deliveries|received|arrived|came|brought|supplied|shipped|dispatched|"
    r"shipment|consignment|parcel|package|(?:the|my|our|your|last|that)\s+order|ordered|you\s+sent|were\s+sent|"
    r"was\s+sent|"
    r"(?:tume|nime|ume|mme)(?:pokea|letewa|agiza)|(?:tu|ni|u|m|wa)li(?:yo|vyo|zo|cho|lo|o)?(?:pokea|letewa|agiza)|"
    r"(?:mme|mli|ume|uli)(?:leta|tuma)|(?:i|zi|vi|li|ya|u|ki)(?:me|li)(?:fika|letwa|kuja)|"
    r"(?:vilivyo|zilizo|iliyo|lililo|yaliyo|ulio|kilicho)(?:letwa|fika|pokelewa|kuja)|mzigo|oda|agizo)\b"
)
# "We got" / "tulipata" say something came, but also "we got a problem": enough only with a specific problem.
_GOT = re.compile(r"\b(?:we\s+got|i\s+got|(?:tume|nime)pata|(?:tu|ni)li(?:yo|vyo|zo|cho|lo|o)?pata)\b")
# Lateness is about a delivery by itself: "the toner is late", "PR-3 was delayed".
_LATE = re.compile(
    r"\b(?:is|are|was|were|has\s+been|have\s+been|running)\s+(?:very\s+|so\s+)?(?:late|delayed|overdue)\b"
)
# A request saying where or when to deliver ("need 10 pencils delivered to Nairobi") is no delivery that happened.
_FUTURE_DELIVERY = re.compile(r"\b(?:deliver(?:ed|y)?)\s+(?:to|by|at|on|before|in|next|this|tomorrow)\b")
# Words that make a message an edit of the open draft ("wrong quantity, make it 30"), never a complaint.
_EDIT = re.compile(
    r"\b(?:make\s+(?:it|that|them|the)|change|instead|replace\s+with|should\s+be|i\s+meant|i\s+mean|not\s+\d+|"
    r"badala|weka|fanya\s+iwe|ongeza|punguza)\b"
)


@dataclass(frozen=True, slots=True)
class Complaint:
    """A message read as a complaint about something delivered or ordered.

    Attributes:
        kind: ``wrong_item``, ``not_delivered``, ``damaged`` or ``other``.
        request_id: the ``PR-<n>`` the message names, or ``None``.
    """

    kind: TicketKind
    request_id: int | None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()


def complaint_of(text: str, *, draft_open: bool = False) -> Complaint | None:
    """Read ``text`` as a complaint about a delivery or order, or ``None``.

    Args:
        text: the person's message.
        draft_open: the person has a draft in progress; an edit-shaped message ("make it 30", "instead") is then
            a correction of that draft, never a complaint.

    Returns:
        The complaint (kind, named request) when the message states a problem about something delivered or
        ordered; ``None`` for requests, questions and corrections.
    """
    s = _norm(text)
    if not s:
        return None
    pr = _PR_RE.search(s)
    not_arrived = _NOT_ARRIVED.search(s) or _SW_NOT_ARRIVED.search(s)
    kind: TicketKind | None = None
    for k, rx in _PROBLEMS.items():
        if rx.search(s):
            kind = k
            break
    if not_arrived and kind in (None, "other"):
        kind = "not_delivered"
    if kind is None:
        return None
    about_delivery = bool(
        not_arrived
        or pr
        or _LATE.search(s)
        or _DELIVERY.search(_FUTURE_DELIVERY.sub(" ", s))
        or (kind != "other" and _GOT.search(s))
    )
    if not about_delivery:
        return None
    if draft_open and not pr and _EDIT.search(s):
        return None
    if s.endswith("?") and not not_arrived and kind == "other":
        return None  # "any problem with the delivery?" is a question, not a complaint
    return Complaint(kind, int(pr.group(1)) if pr else None)


def ticket_number(ticket_id: int) -> str:
    """Display number of a ticket (``T-3``)."""
    return f"T-{ticket_id}"


def parse_ticket_number(text: str) -> int | None:
    """Ticket id from text naming ``T-3`` (also ``t3``, ``T 3``), or ``None``."""
    m = TICKET_RE.search(text)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class Ticket:
    """A support ticket as shown to people and the API.

    Attributes:
        id: database id; ``number`` is ``T-<id>``.
        requester: the person who opened it.
        request_id: the linked purchase request, or ``None``.
        kind: ``wrong_item``, ``not_delivered``, ``damaged`` or ``other``.
        text: the person's words.
        status: ``open`` (the only state the agent sets; buyers close tickets outside the chat).
        assignee: the buyer (or admin) notified, or ``None`` when nobody could be.
    """

    id: int
    requester: User
    request_id: int | None
    kind: str
    text: str
    status: str
    assignee: User | None
    chat_id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def number(self) -> str:
        """``T-<id>``."""
        return ticket_number(self.id)

    def to_api(self) -> dict[str, Any]:
        """JSON form for ``GET /api/tickets``."""

        def person(u: User | None) -> dict[str, Any] | None:
            return {"id": u.id, "name": u.display_name, "phone": u.phone} if u else None

        return {
            "id": self.id,
            "number": self.number,
            "status": self.status,
            "kind": self.kind,
            "text": self.text,
            "request_id": self.request_id,
            "request_number": f"PR-{self.request_id}" if self.request_id else None,
            "requester": person(self.requester),
            "assignee": person(self.assignee),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


async def _views(conn: AsyncConnection, rows: Sequence[Any]) -> list[Ticket]:
    ids = {r.requester_id for r in rows} | {r.assignee_id for r in rows if r.assignee_id}
    people = {}
    if ids:
        people = {u.id: User.from_row(u) for u in (await conn.execute(select(users).where(users.c.id.in_(ids)))).all()}
    return [
        Ticket(
            id=r.id,
            requester=people[r.requester_id],
            request_id=r.request_id,
            kind=r.kind,
            text=r.text,
            status=r.status,
            assignee=people.get(r.assignee_id) if r.assignee_id else None,
            chat_id=r.chat_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


async def open_ticket(
    engine: AsyncEngine,
    *,
    requester: User,
    kind: str,
    text: str,
    chat_id: str,
    provider: str,
    request_id: int | None,
    assignee_id: int | None,
    source_message_id: str | None,
) -> tuple[Ticket, bool]:
    """Insert a ticket once per source message.

    Args:
        source_message_id: the provider message id that opened it; a re-run of the same turn returns the
            ticket it already opened instead of a second one. ``None`` never deduplicates.
        text: the person's words (cut to 2,000 characters).

    Returns:
        ``(ticket, created)``; ``created`` is ``False`` when this message had already opened it.
    """
    values = {
        "requester_id": requester.id,
        "request_id": request_id,
        "kind": kind,
        "text": text[:2000],
        "assignee_id": assignee_id,
        "chat_id": chat_id,
        "provider": provider,
        "source_message_id": source_message_id,
    }
    async with engine.begin() as conn:
        stmt = pg_insert(tickets).values(**values).on_conflict_do_nothing(index_elements=[tickets.c.source_message_id])
        row = (await conn.execute(stmt.returning(tickets))).first()
        created = row is not None
        if row is None:
            row = (await conn.execute(select(tickets).where(tickets.c.source_message_id == source_message_id))).one()
        return (await _views(conn, [row]))[0], created


async def get_ticket(engine: AsyncEngine, ticket_id: int) -> Ticket | None:
    """One ticket, or ``None`` (no authorisation: for the API and :func:`ticket_for`)."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
        return (await _views(conn, [row]))[0] if row else None


def may_see(user: User, ticket: Ticket) -> bool:
    """Whether ``user`` may see ``ticket``: its requester, buyers and admins."""
    return user.role in STAFF_ROLES or ticket.requester.id == user.id


async def ticket_for(engine: AsyncEngine, ticket_id: int, viewer: User) -> Ticket | None:
    """The ticket if ``viewer`` may see it, else ``None`` (the same answer as "no such ticket")."""
    ticket = await get_ticket(engine, ticket_id)
    return ticket if ticket is not None and may_see(viewer, ticket) else None


async def list_tickets(
    engine: AsyncEngine,
    *,
    status: str | None = None,
    request_id: int | None = None,
    requester_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Ticket]:
    """Tickets, newest first, filtered by status, linked request and requester."""
    q = select(tickets).order_by(desc(tickets.c.id)).limit(limit).offset(offset)
    if status is not None:
        q = q.where(tickets.c.status == status)
    if request_id is not None:
        q = q.where(tickets.c.request_id == request_id)
    if requester_id is not None:
        q = q.where(tickets.c.requester_id == requester_id)
    async with engine.connect() as conn:
        return await _views(conn, (await conn.execute(q)).all())


async def latest_delivered_request(engine: AsyncEngine, requester_id: int) -> int | None:
    """Id of the person's newest request that was ordered (or approved, i.e. being ordered), or ``None``."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                select(purchase_requests.c.id)
                .where(
                    purchase_requests.c.requester_id == requester_id,
                    purchase_requests.c.status.in_(DELIVERED_STATUSES),
                )
                .order_by(desc(purchase_requests.c.id))
                .limit(1)
            )
        ).scalar_one_or_none()


async def staff_to_notify(engine: AsyncEngine, site: str | None, *, exclude: int | None = None) -> list[User]:
    """Who hears of a new ticket: the buyers of ``site``, else every buyer, else the admins (active only).

    Args:
        site: the linked request's site (``None``: no site preference).
        exclude: a user id left out (the person who opened the ticket).

    Returns:
        The people of the first non-empty group, by id; empty when the company has no buyer and no admin.
    """
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(users)
                .where(users.c.active, users.c.role.in_([r.value for r in STAFF_ROLES]))
                .order_by(users.c.id)
            )
        ).all()
    people = [User.from_row(r) for r in rows if r.id != exclude]
    buyers = [u for u in people if u.role == Role.BUYER]
    site_buyers = [u for u in buyers if site and u.site and u.site.lower() == site.lower()]
    return site_buyers or buyers or [u for u in people if u.role == Role.ADMIN]
