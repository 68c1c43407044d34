"""The fulfilment state machine in PostgreSQL: conditional UPDATEs, audit records and advisory-lock sessions.

State machine (every transition is a conditional ``UPDATE ... WHERE state = ...``)::

    pending --claim--> placing --the destination has it----------------> placed
       ^                  |----- permanent error, or tries used up ------> failed --Retry press--> pending
       +--retryable error-+----- destination order cancelled by a person -> cancelled

``placing`` is claimable because only the holder of the fulfilment's advisory lock claims: a ``placing`` row
seen by a claimer was left by a worker that died or gave up, and the attempt about to start looks the order up
at the destination before placing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any, Final

import psycopg
from sqlalchemy import Text, and_, cast, exists, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import fulfilments, purchase_requests, suppliers, users
from core.domain import RequestStatus, Role
from core.embedded import libpq_url
from core.repo import User, audit
from tools.fulfilment.failures import Failure
from tools.fulfilment.model import (
    CANCELLED,
    CHANNELS,
    ERP,
    FAILED,
    OPEN_STATES,
    PENDING,
    PLACED,
    PLACING,
    Fulfilment,
    Placed,
    Supplier,
    job_id,
    line_snapshot,
    po_reference,
)
from tools.fulfilment.replies import say
from tools.requests import RequestView

#: Advisory-lock namespaces (``pg_advisory_lock(hashtext(namespace), hashtext(key))``).
LOCK_FULFILMENT: Final = "procure.fulfilment"
LOCK_PORTAL_ACCOUNT: Final = "procure.portal-account"


class Locks:
    """A dedicated PostgreSQL session holding advisory locks until it is closed.

    Session-level locks on a connection of its own (not the engine's pool, which would keep a lock alive on a
    pooled connection after an error): closing it, or the server noticing the client died (SIGKILL), releases
    every lock it holds.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, database_url: str) -> AsyncIterator[Locks]:
        """Open a lock session on ``database_url`` (SQLAlchemy or libpq URI); closed, with its locks, on exit."""
        conn = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True, connect_timeout=10)
        try:
            yield cls(conn)
        finally:
            await conn.close()

    async def acquire(self, namespace: str, key: str, wait_seconds: float) -> bool:
        """Take the lock ``(namespace, key)``, waiting at most ``wait_seconds``; False if another holds it."""
        if wait_seconds <= 0:
            cur = await self.conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (namespace, key))
            row = await cur.fetchone()
            return bool(row and row[0])
        await self.conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(wait_seconds * 1000)}ms",))
        try:
            await self.conn.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", (namespace, key))
        except psycopg.errors.LockNotAvailable:
            return False
        return True


class FulfilmentStore:
    """Reads and state transitions of ``fulfilments`` rows, each with its audit record in the same transaction.

    Args:
        engine: SQLAlchemy async engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- reads --------------------------------------------------------------------------------------------
    async def get(self, fulfilment_id: int) -> Fulfilment | None:
        """One fulfilment, or ``None``."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(fulfilments).where(fulfilments.c.id == fulfilment_id))).first()
        return Fulfilment.from_row(row) if row else None

    async def of_request(self, request_id: int) -> list[Fulfilment]:
        """The request's fulfilments, by supplier code."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fulfilments).where(fulfilments.c.request_id == request_id).order_by(fulfilments.c.supplier)
                )
            ).all()
        return [Fulfilment.from_row(r) for r in rows]

    async def supplier(self, code: str) -> Supplier | None:
        """The ``suppliers`` row of ``code``, or ``None`` (then the supplier orders through the ERP)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(suppliers).where(suppliers.c.code == code))).first()
        return Supplier.from_row(row) if row else None

    async def has_suppliers(self) -> bool:
        """Whether any supplier is registered (``procure suppliers add``)."""
        async with self.engine.connect() as conn:
            return bool((await conn.execute(select(func.count()).select_from(suppliers))).scalar_one())

    async def buyers(self) -> list[User]:
        """Who is told about orders: active buyers, or the admins when there is no buyer."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(users)
                    .where(users.c.active, users.c.role.in_([Role.BUYER.value, Role.ADMIN.value]))
                    .order_by(users.c.id)
                )
            ).all()
        people = [User.from_row(r) for r in rows]
        buyers = [u for u in people if u.role == Role.BUYER]
        return buyers or people

    # -- transitions --------------------------------------------------------------------------------------
    async def create(self, req: RequestView) -> list[dict[str, Any]]:
        """Insert one ``pending`` fulfilment per supplier of the request's lines (idempotent per reference).

        Suppliers absent from ``suppliers`` order through the ERP.

        Returns:
            The lines without a supplier (snapshots as in :attr:`Fulfilment.lines`): nobody orders them.
        """
        groups: dict[str, list[dict[str, Any]]] = {}
        unassigned: list[dict[str, Any]] = []
        for i, line in enumerate(req.lines):
            code = req.suppliers.get(i)
            (groups.setdefault(code, []) if code else unassigned).append(line_snapshot(i, line))
        async with self.engine.begin() as conn:
            known = {
                r.code: Supplier.from_row(r)
                for r in (await conn.execute(select(suppliers).where(suppliers.c.code.in_(list(groups))))).all()
            }
            for code, lines in sorted(groups.items()):
                sup = known.get(code)
                channel = sup.channel if sup is not None and sup.channel in CHANNELS else ERP
                reference = po_reference(req.id, code)
                new_id = (
                    await conn.execute(
                        pg_insert(fulfilments)
                        .values(
                            request_id=req.id, supplier=code, channel=channel, idempotency_key=reference, lines=lines
                        )
                        .on_conflict_do_nothing()
                        .returning(fulfilments.c.id)
                    )
                ).scalar_one_or_none()
                if new_id is not None:
                    await audit(
                        conn,
                        "fulfilment.created",
                        request_id=req.id,
                        details={
                            "fulfilment_id": new_id,
                            "supplier": code,
                            "channel": channel,
                            "reference": reference,
                            "lines": [ln["position"] for ln in lines],
                        },
                    )
        return unassigned

    async def claim(self, fulfilment_id: int) -> Fulfilment | None:
        """``pending``/``placing`` -> ``placing`` with one more attempt; ``None`` if it is no longer open.

        Only the holder of the fulfilment's lock may call this (see the module docstring).
        """
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(fulfilments)
                    .where(fulfilments.c.id == fulfilment_id, fulfilments.c.state.in_(OPEN_STATES))
                    .values(
                        state=PLACING,
                        attempts=fulfilments.c.attempts + 1,
                        round_attempts=fulfilments.c.round_attempts + 1,
                        attempted_at=func.now(),
                        updated_at=func.now(),
                    )
                    .returning(fulfilments)
                )
            ).first()
        return Fulfilment.from_row(row) if row else None

    async def record_placed(self, f: Fulfilment, placed: Placed) -> Fulfilment:
        """``placing`` -> ``placed`` (or ``cancelled``), audit, and mark the request ``ordered`` when all are."""
        state = CANCELLED if placed.cancelled else PLACED
        async with self.engine.begin() as conn:
            # Serialise the "are all placed?" check per request: two fulfilments finishing at once would each
            # miss the other's uncommitted update and leave the request approved forever.
            await conn.execute(
                select(purchase_requests.c.id).where(purchase_requests.c.id == f.request_id).with_for_update()
            )
            values: dict[str, Any] = {
                "state": state,
                "external_order_id": placed.order_number,
                "external_state": placed.external_state,
                "updated_at": func.now(),
            }
            if state == PLACED:
                values.update(placed_at=func.now(), error=None)
            else:
                values["error"] = say("fulfil_cancelled_reason", order=placed.order_number, where=f.where)
            if placed.evidence_keys:
                values["evidence_keys"] = func.array_cat(
                    fulfilments.c.evidence_keys, cast(list(placed.evidence_keys), ARRAY(Text))
                )
            row = (
                await conn.execute(
                    update(fulfilments)
                    .where(fulfilments.c.id == f.id, fulfilments.c.state == PLACING)
                    .values(**values)
                    .returning(fulfilments)
                )
            ).first()
            if row is None:  # cannot happen under the lock; keep what is recorded
                current = (await conn.execute(select(fulfilments).where(fulfilments.c.id == f.id))).one()
                return Fulfilment.from_row(current)
            await audit(
                conn,
                f"fulfilment.{state}",
                request_id=f.request_id,
                details={
                    "fulfilment_id": f.id,
                    "supplier": f.supplier,
                    "channel": f.channel,
                    "reference": f.reference,
                    "order": placed.order_number,
                    "external_state": placed.external_state,
                    "how": placed.how,
                    "attempt": f.attempts,
                    "evidence_keys": list(placed.evidence_keys),
                },
            )
            others = select(fulfilments.c.id).where(
                fulfilments.c.request_id == f.request_id, fulfilments.c.state != PLACED
            )
            ordered = (
                await conn.execute(
                    update(purchase_requests)
                    .where(
                        and_(
                            purchase_requests.c.id == f.request_id,
                            purchase_requests.c.status == RequestStatus.APPROVED.value,
                            ~exists(others),
                        )
                    )
                    .values(status=RequestStatus.ORDERED.value, updated_at=func.now())
                    .returning(purchase_requests.c.id)
                )
            ).first()
            if ordered is not None:
                await audit(conn, "request.ordered", request_id=f.request_id, details={"fulfilment_id": f.id})
        return Fulfilment.from_row(row)

    async def record_failure(self, f: Fulfilment, failure: Failure, *, final: bool) -> Fulfilment:
        """``placing`` -> ``failed`` (``final``) or back to ``pending`` (a retry follows), with the reason."""
        reason, evidence = failure.reason[:1000], list(failure.evidence_keys)
        values: dict[str, Any] = {"error": reason, "updated_at": func.now()}
        values.update({"state": FAILED, "failed_at": func.now()} if final else {"state": PENDING})
        if evidence:
            values["evidence_keys"] = func.array_cat(fulfilments.c.evidence_keys, cast(evidence, ARRAY(Text)))
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(fulfilments)
                    .where(fulfilments.c.id == f.id, fulfilments.c.state == PLACING)
                    .values(**values)
                    .returning(fulfilments)
                )
            ).first()
            await audit(
                conn,
                "fulfilment.failed" if final else "fulfilment.attempt_failed",
                request_id=f.request_id,
                details={
                    "fulfilment_id": f.id,
                    "supplier": f.supplier,
                    "reference": f.reference,
                    "attempt": f.attempts,
                    "round_attempt": f.round_attempts,
                    "reason": reason,
                    "retryable": failure.retryable,
                    "evidence_keys": evidence,
                },
            )
        return Fulfilment.from_row(row) if row is not None else f

    async def refuse_retry(self, row: Fulfilment, actor_id: int, role: str | None) -> None:
        """Audit a Retry press by someone who may not retry orders."""
        async with self.engine.begin() as conn:
            await audit(
                conn,
                "fulfilment.retry_refused",
                actor_id=actor_id,
                request_id=row.request_id,
                details={"fulfilment_id": row.id, "role": role},
            )

    async def start_round(self, row: Fulfilment, actor_id: int) -> Fulfilment | None:
        """``failed`` -> ``pending`` as a new round (``retries`` + 1); ``None`` when the row is not ``failed``."""
        async with self.engine.begin() as conn:
            upd = (
                await conn.execute(
                    update(fulfilments)
                    .where(fulfilments.c.id == row.id, fulfilments.c.state == FAILED)
                    .values(
                        state=PENDING,
                        retries=fulfilments.c.retries + 1,
                        round_attempts=0,
                        failed_at=None,
                        updated_at=func.now(),
                    )
                    .returning(fulfilments)
                )
            ).first()
            if upd is not None:
                await audit(
                    conn,
                    "fulfilment.retry",
                    actor_id=actor_id,
                    request_id=row.request_id,
                    details={"fulfilment_id": row.id, "round": upd.retries, "previous_error": row.error},
                )
        return Fulfilment.from_row(upd) if upd is not None else None

    async def stale(
        self, channels: Sequence[str], *, placing_after: timedelta, pending_after: timedelta
    ) -> list[tuple[int, str]]:
        """Open fulfilments on ``channels`` untouched for too long: ``(id, job id to enqueue)``.

        Args:
            channels: channels this process places orders on.
            placing_after: age after which a ``placing`` row's worker is taken as dead.
            pending_after: age after which a ``pending`` row's job is taken as lost.
        """
        if not channels:
            return []
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fulfilments.c.id, fulfilments.c.retries, fulfilments.c.attempts).where(
                        fulfilments.c.channel.in_(list(channels)),
                        ((fulfilments.c.state == PLACING) & (fulfilments.c.updated_at < func.now() - placing_after))
                        | ((fulfilments.c.state == PENDING) & (fulfilments.c.updated_at < func.now() - pending_after)),
                    )
                )
            ).all()
        return [(r.id, f"{job_id(r.id, r.retries)}:sweep:{r.attempts}") for r in rows]
