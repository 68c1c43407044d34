"""Purchase-request changes: submit, amend, decide, cancel. Authorisation is re-checked here.

Every state change is a conditional UPDATE (``WHERE status = ... AND revision = ...``) inside one transaction
with its audit-log entry, so a stale button, a double click or two workers can never decide twice. Submitting and
amending are idempotent per inbound message: a turn re-run after a crash (the worker re-runs a whole turn from the
previous turn's checkpoint, see :mod:`server.worker.turns`) finds what the same message already did in the audit
log and returns it instead of creating a second request or revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import audit_log, catalog_items, purchase_request_lines, purchase_requests, users
from core.domain import Line, RequestStatus, Role
from core.policy import Approver, choose_approver, may_decide, total_of
from core.repo import User, audit
from tools.requests.view import OPEN_STATUSES, RequestView, get_request, number_of


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


#: How far back (audit-log rows) a re-run turn looks for what its message already did; a re-run follows its
#: crash within minutes, and the bound keeps the look-up an index range scan on a table that only grows.
RERUN_AUDIT_WINDOW = 10_000


async def _caused_by(
    conn: AsyncConnection, action: str, inbox_id: int | None, actor_id: int, request_id: int | None = None
) -> tuple[int, dict[str, Any]] | None:
    """``(request id, audit details)`` of an ``action`` the inbound message ``inbox_id`` already caused, or ``None``."""
    if inbox_id is None:
        return None
    recent = select(func.coalesce(func.max(audit_log.c.id), 0) - RERUN_AUDIT_WINDOW).scalar_subquery()
    query = select(audit_log.c.request_id, audit_log.c.details).where(
        audit_log.c.id > recent,
        audit_log.c.action == action,
        audit_log.c.inbox_id == inbox_id,
        audit_log.c.actor_id == actor_id,
    )
    if request_id is not None:
        query = query.where(audit_log.c.request_id == request_id)
    row = (await conn.execute(query.order_by(audit_log.c.id.desc()).limit(1))).first()
    return None if row is None or row.request_id is None else (int(row.request_id), dict(row.details or {}))


def _approver_of(approvers: Sequence[Approver], approver_id: int | None) -> Approver | None:
    return next((a for a in approvers if a.id == approver_id), None)


async def _write_lines(conn: AsyncConnection, request_id: int, lines: Sequence[Line]) -> None:
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

    With ``inbox_id``, idempotent per message: when that message already submitted a request (a turn re-run
    after a crash), that request is returned and nothing is written.

    Raises:
        core.policy.NoApproverError: nobody but the requester could approve it (nothing is written).
    """
    total = total_of(lines, currency)
    async with engine.begin() as conn:
        approvers = await _approvers(conn)
        done = await _caused_by(conn, "request.submitted", inbox_id, requester.id)
        if done is not None:
            row = (
                await conn.execute(
                    select(purchase_requests.c.revision, purchase_requests.c.approver_id).where(
                        purchase_requests.c.id == done[0]
                    )
                )
            ).one()
            earlier = _approver_of(approvers, row.approver_id)
            if earlier is not None:
                return Submitted(done[0], row.revision, earlier)
        approver = choose_approver(approvers, requester_id=requester.id, site=site, total=total)
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

    With ``inbox_id``, idempotent per message: when that message already amended this request (a turn re-run
    after a crash), the revision it made is returned and nothing is written.

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
        approvers = await _approvers(conn)
        done = await _caused_by(conn, "request.amended", inbox_id, actor.id, request_id)
        if done is not None:
            earlier = _approver_of(approvers, done[1].get("approver_id"))
            if earlier is not None and done[1].get("revision") is not None:
                return Submitted(request_id, int(done[1]["revision"]), earlier)
        if row.status not in OPEN_STATUSES:
            raise LookupError(row.status)
        total = total_of(lines, row.currency)
        approver = choose_approver(approvers, requester_id=actor.id, site=site, total=total)
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
