"""Purchase-request persistence: submit, amend, decide, cancel, list. Authorisation is re-checked here.

Every state change is a conditional UPDATE (``WHERE status = ... AND revision = ...``) inside one transaction
with its audit-log entry, so a stale button, a double click or two workers can never decide twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import audit_log, purchase_request_lines, purchase_requests, users
from core.domain import Line, Money, RequestStatus, Role
from core.policy import Approver, choose_approver, may_decide, total_of
from core.repo import User, audit

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


async def _approvers(conn: AsyncConnection) -> list[Approver]:
    rows = (
        await conn.execute(
            select(users).where(users.c.active, users.c.role.in_([Role.APPROVER.value, Role.ADMIN.value]))
        )
    ).all()
    out = []
    for r in rows:
        u = User.from_row(r)
        out.append(Approver(u.id, u.role, u.site, u.approval_limit, u.display_name))
    return out


async def _write_lines(conn: AsyncConnection, request_id: int, lines: Sequence[Line]) -> None:
    from core.db import catalog_items

    skus = [ln.sku for ln in lines if ln.sku]
    supplier_of: dict[str, str] = {}
    if skus:
        rows = (
            await conn.execute(
                select(catalog_items.c.sku, catalog_items.c.supplier).where(catalog_items.c.sku.in_(skus))
            )
        ).all()
        supplier_of = {r.sku: r.supplier for r in rows}
    await conn.execute(delete(purchase_request_lines).where(purchase_request_lines.c.request_id == request_id))
    for i, ln in enumerate(lines):
        await conn.execute(
            insert(purchase_request_lines).values(
                request_id=request_id,
                position=i,
                sku=ln.sku,
                description=ln.description,
                quantity=ln.quantity,
                unit=ln.unit,
                unit_price=ln.unit_price.amount if ln.unit_price else None,
                currency=ln.unit_price.currency if ln.unit_price else None,
                supplier=supplier_of.get(ln.sku) if ln.sku else None,
            )
        )


@dataclass(frozen=True)
class Submitted:
    """Result of submitting or amending: the request id, its revision and the chosen approver."""

    request_id: int
    revision: int
    approver: Approver

    @property
    def number(self) -> str:
        """``PR-<id>``."""
        return number_of(self.request_id)


async def submit_request(
    engine: AsyncEngine,
    *,
    requester: User,
    lines: Sequence[Line],
    site: str,
    needed_by: date,
    currency: str,
    chat_id: str,
    provider: str,
    notes: str | None = None,
    attachments: Sequence[str] = (),
    inbox_id: int | None = None,
) -> Submitted:
    """Create a purchase request in ``pending_approval`` and route it to its approver.

    Raises:
        core.policy.NoApproverError: nobody but the requester could approve it (nothing is written).
    """
    total = total_of(lines, currency)
    async with engine.begin() as conn:
        approver = choose_approver(await _approvers(conn), requester_id=requester.id, site=site, total=total)
        request_id = (
            await conn.execute(
                insert(purchase_requests)
                .values(
                    requester_id=requester.id,
                    status=RequestStatus.PENDING_APPROVAL.value,
                    site=site,
                    needed_by=needed_by,
                    currency=currency,
                    total=total.amount,
                    approver_id=approver.id,
                    notes=notes,
                    attachments=list(attachments),
                    chat_id=chat_id,
                    provider=provider,
                )
                .returning(purchase_requests.c.id)
            )
        ).scalar_one()
        await _write_lines(conn, request_id, lines)
        await audit(
            conn,
            "request.submitted",
            actor_id=requester.id,
            request_id=request_id,
            inbox_id=inbox_id,
            details={
                "total": str(total.amount),
                "currency": currency,
                "lines": [ln.to_dict() for ln in lines],
                "site": site,
                "needed_by": needed_by.isoformat(),
                "policy": {"approver_id": approver.id, "rule": "lowest sufficient limit for site, else admin"},
            },
        )
    return Submitted(request_id, 1, approver)


async def amend_request(
    engine: AsyncEngine,
    request_id: int,
    *,
    actor: User,
    lines: Sequence[Line],
    site: str,
    needed_by: date,
    change: dict[str, Any],
    inbox_id: int | None = None,
) -> Submitted:
    """Apply an amendment to a submitted request and re-open approval (new revision, approver re-chosen).

    Raises:
        PermissionError: the actor is not the requester.
        LookupError: the request is not open for amendment.
        core.policy.NoApproverError: no approver available (nothing is written).
    """
    async with engine.begin() as conn:
        row = (
            await conn.execute(select(purchase_requests).where(purchase_requests.c.id == request_id).with_for_update())
        ).first()
        if row is None:
            raise LookupError("not_found")
        if row.requester_id != actor.id:
            raise PermissionError("not_yours")
        if row.status not in OPEN_STATUSES:
            raise LookupError(row.status)
        total = total_of(lines, row.currency)
        approver = choose_approver(await _approvers(conn), requester_id=actor.id, site=site, total=total)
        revision = row.revision + 1
        await conn.execute(
            update(purchase_requests)
            .where(purchase_requests.c.id == request_id)
            .values(
                status=RequestStatus.PENDING_APPROVAL.value,
                site=site,
                needed_by=needed_by,
                total=total.amount,
                approver_id=approver.id,
                revision=revision,
                decided_by=None,
                decided_at=None,
                decision_reason=None,
                updated_at=func.now(),
            )
        )
        await _write_lines(conn, request_id, lines)
        await audit(
            conn,
            "request.amended",
            actor_id=actor.id,
            request_id=request_id,
            inbox_id=inbox_id,
            details={"revision": revision, "change": change, "total": str(total.amount), "approver_id": approver.id},
        )
    return Submitted(request_id, revision, approver)


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


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`decide`: ``ok`` or why nothing changed (``stale``, ``outdated``, ``own_request``...)."""

    outcome: str
    request: RequestView | None


async def decide(
    engine: AsyncEngine,
    request_id: int,
    *,
    revision: int,
    decision: str,
    actor: User,
    reason: str | None = None,
) -> Decision:
    """Approve or reject a pending request, re-checking authorisation and freshness in the same transaction.

    Args:
        decision: ``approve`` or ``reject``.
        revision: the revision the approver saw; an older one is refused (``outdated``).

    Returns:
        ``Decision("ok", view)`` when applied, otherwise the reason (``not_found``, ``own_request``,
        ``not_assigned``, ``stale``, ``outdated``) and nothing is written.
    """
    if decision not in ("approve", "reject"):
        raise ValueError(f"unknown decision {decision!r}")
    async with engine.begin() as conn:
        row = (
            await conn.execute(select(purchase_requests).where(purchase_requests.c.id == request_id).with_for_update())
        ).first()
        if row is None:
            return Decision("not_found", None)
        why = may_decide(user_id=actor.id, role=actor.role, requester_id=row.requester_id, approver_id=row.approver_id)
        if why is not None:
            await audit(conn, "decision.refused", actor_id=actor.id, request_id=request_id, details={"why": why})
            return Decision(why, await get_request(conn, request_id))
        if row.status != RequestStatus.PENDING_APPROVAL.value:
            return Decision("stale", await get_request(conn, request_id))
        if row.revision != revision:
            return Decision("outdated", await get_request(conn, request_id))
        new_status = RequestStatus.APPROVED if decision == "approve" else RequestStatus.REJECTED
        await conn.execute(
            update(purchase_requests)
            .where(and_(purchase_requests.c.id == request_id, purchase_requests.c.revision == revision))
            .values(
                status=new_status.value,
                decided_by=actor.id,
                decided_at=func.now(),
                decision_reason=reason,
                updated_at=func.now(),
            )
        )
        await audit(
            conn,
            f"request.{new_status.value}",
            actor_id=actor.id,
            request_id=request_id,
            details={"revision": revision, "reason": reason},
        )
        return Decision("ok", await get_request(conn, request_id))


async def cancel_request(engine: AsyncEngine, request_id: int, *, actor: User) -> Decision:
    """Cancel a request that is pending approval (requester, or an admin).

    Returns:
        ``Decision("ok", view)`` or the reason nothing changed (``not_found``, ``not_yours``, ``stale``).
    """
    async with engine.begin() as conn:
        row = (
            await conn.execute(select(purchase_requests).where(purchase_requests.c.id == request_id).with_for_update())
        ).first()
        if row is None:
            return Decision("not_found", None)
        if row.requester_id != actor.id and actor.role != Role.ADMIN:
            return Decision("not_yours", None)
        if row.status != RequestStatus.PENDING_APPROVAL.value:
            return Decision("stale", await get_request(conn, request_id))
        await conn.execute(
            update(purchase_requests)
            .where(purchase_requests.c.id == request_id)
            .values(status=RequestStatus.CANCELLED.value, updated_at=func.now())
        )
        await audit(conn, "request.cancelled", actor_id=actor.id, request_id=request_id)
        return Decision("ok", await get_request(conn, request_id))


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
