"""Purchase requests as read by people and the API: numbers (``PR-12``), the request view, lists, history.

Reads only; changes (submit, amend, decide, cancel) are in :mod:`tools.requests.changes`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import audit_log, purchase_request_lines, purchase_requests, users
from core.domain import Line, Money, RequestStatus, Role
from core.repo import User

NUMBER_RE = re.compile(r"\bPR[-\s]?(\d{1,9})\b", re.IGNORECASE)
#: Statuses a requester may still amend. An approved request is being ordered (fulfilment starts on approval),
#: so changing it must go through the buyer, not re-open approval behind orders already placed.
OPEN_STATUSES = (RequestStatus.PENDING_APPROVAL.value,)


def number_of(request_id: int) -> str:
    """Display number of a request (``PR-12``)."""
    return f"PR-{request_id}"


def parse_number(text: str) -> int | None:
    """Request id from text naming ``PR-12`` (also ``pr12``, ``PR 12``), or ``None``."""
    m = NUMBER_RE.search(text)
    return int(m.group(1)) if m else None


@dataclass
class RequestView:
    """A purchase request as shown to people and the API.

    Attributes:
        id: database id; ``number`` is ``PR-<id>``.
        lines: lines in order; amounts Decimal.
        total: sum of priced lines in ``currency``.
    """

    id: int
    status: str
    requester: User
    approver: User | None
    site: str | None
    needed_by: date | None
    currency: str
    total: Money
    revision: int
    lines: list[Line]
    chat_id: str
    provider: str
    decision_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    suppliers: dict[int, str] = field(default_factory=dict)
    attachments: list[str] = field(default_factory=list)

    @property
    def number(self) -> str:
        """``PR-<id>``."""
        return number_of(self.id)

    def to_api(self) -> dict[str, Any]:
        """JSON form for ``GET /api/purchase-requests``."""
        return {
            "id": self.id,
            "number": self.number,
            "status": self.status,
            "revision": self.revision,
            "site": self.site,
            "needed_by": self.needed_by.isoformat() if self.needed_by else None,
            "total": str(self.total.amount),
            "currency": self.currency,
            "requester": {"id": self.requester.id, "name": self.requester.display_name, "phone": self.requester.phone},
            "approver": (
                {"id": self.approver.id, "name": self.approver.display_name, "phone": self.approver.phone}
                if self.approver
                else None
            ),
            "decision_reason": self.decision_reason,
            "attachments": list(self.attachments),
            "lines": [dict(ln.to_dict(), supplier=self.suppliers.get(i)) for i, ln in enumerate(self.lines)],
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


async def get_request(engine: AsyncEngine | AsyncConnection, request_id: int) -> RequestView | None:
    """One request with its lines, requester and approver, or ``None``."""
    if isinstance(engine, AsyncEngine):
        async with engine.connect() as conn:
            return await get_request(conn, request_id)
    conn = engine
    row = (await conn.execute(select(purchase_requests).where(purchase_requests.c.id == request_id))).first()
    if row is None:
        return None
    views = await _views(conn, [row])
    return views[0]


async def _views(conn: AsyncConnection, rows: Sequence[Any]) -> list[RequestView]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    user_ids = {r.requester_id for r in rows} | {r.approver_id for r in rows if r.approver_id}
    people = {r.id: User.from_row(r) for r in (await conn.execute(select(users).where(users.c.id.in_(user_ids)))).all()}
    line_rows = (
        await conn.execute(
            select(purchase_request_lines)
            .where(purchase_request_lines.c.request_id.in_(ids))
            .order_by(purchase_request_lines.c.request_id, purchase_request_lines.c.position)
        )
    ).all()
    by_req: dict[int, list[Any]] = {}
    for lr in line_rows:
        by_req.setdefault(lr.request_id, []).append(lr)
    out = []
    for r in rows:
        lines = []
        suppliers: dict[int, str] = {}
        for i, lr in enumerate(by_req.get(r.id, [])):
            price = Money(Decimal(lr.unit_price), lr.currency) if lr.unit_price is not None else None
            lines.append(Line(lr.description, Decimal(lr.quantity).normalize(), lr.unit, lr.sku, price))
            if lr.supplier:
                suppliers[i] = lr.supplier
        out.append(
            RequestView(
                id=r.id,
                status=r.status,
                requester=people[r.requester_id],
                approver=people.get(r.approver_id) if r.approver_id else None,
                site=r.site,
                needed_by=r.needed_by,
                currency=r.currency,
                total=Money(Decimal(r.total), r.currency).quantize(),
                revision=r.revision,
                lines=lines,
                chat_id=r.chat_id,
                provider=r.provider,
                decision_reason=r.decision_reason,
                created_at=r.created_at,
                updated_at=r.updated_at,
                suppliers=suppliers,
                attachments=list(r.attachments or []),
            )
        )
    return out


async def list_requests(
    engine: AsyncEngine,
    *,
    requester_id: int | None = None,
    approver_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RequestView]:
    """Requests, newest first, filtered by requester, approver and status."""
    q = select(purchase_requests).order_by(purchase_requests.c.id.desc()).limit(limit).offset(offset)
    if requester_id is not None:
        q = q.where(purchase_requests.c.requester_id == requester_id)
    if approver_id is not None:
        q = q.where(purchase_requests.c.approver_id == approver_id)
    if status is not None:
        q = q.where(purchase_requests.c.status == status)
    async with engine.connect() as conn:
        return await _views(conn, (await conn.execute(q)).all())


async def pending_for(engine: AsyncEngine, user: User) -> list[RequestView]:
    """Requests waiting for this user's decision (admins: all pending ones not their own)."""
    q = select(purchase_requests).where(purchase_requests.c.status == RequestStatus.PENDING_APPROVAL.value)
    if user.role == Role.ADMIN:
        q = q.where(purchase_requests.c.requester_id != user.id)
    else:
        q = q.where(purchase_requests.c.approver_id == user.id)
    async with engine.connect() as conn:
        return await _views(conn, (await conn.execute(q.order_by(purchase_requests.c.id))).all())


async def history(engine: AsyncEngine, request_id: int) -> list[dict[str, Any]]:
    """Audit-log entries of a request, oldest first (``at``, ``action``, ``actor_id``, ``details``)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(audit_log).where(audit_log.c.request_id == request_id).order_by(audit_log.c.id))
        ).all()
    return [
        {
            "at": r.at.isoformat(),
            "action": r.action,
            "actor_id": r.actor_id,
            "inbox_id": r.inbox_id,
            "details": r.details,
        }
        for r in rows
    ]


async def latest_open_request(engine: AsyncEngine, requester_id: int) -> RequestView | None:
    """The requester's newest request still pending approval, if any."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(purchase_requests)
                .where(
                    purchase_requests.c.requester_id == requester_id,
                    purchase_requests.c.status == RequestStatus.PENDING_APPROVAL.value,
                )
                .order_by(purchase_requests.c.id.desc())
                .limit(1)
            )
        ).first()
        return (await _views(conn, [row]))[0] if row else None
