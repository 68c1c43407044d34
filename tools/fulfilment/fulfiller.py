"""Fulfilment: place an approved request's orders where each supplier takes them, exactly once, and say so.

One *fulfilment* per (purchase request, supplier) carries our PO reference, its idempotency key
(``PR-12-OFFICEMART``), which is written into the destination's order (ERP: ``purchase.purchase.reference``;
website: the customer's order reference) and searched there before anything is ordered.

State machine (every transition is a conditional ``UPDATE ... WHERE state = ...``)::

    pending --claim--> placing --the destination has it----------------> placed
       ^                  |----- permanent error, or tries used up ------> failed --Retry press--> pending
       +--retryable error-+----- destination order cancelled by a person -> cancelled

What makes it safe to run from arq (see ../shared/STACK-NOTES.md: a SIGKILLed job stays "in progress" until its
timeout + 10 s, a job timeout is not retried, only ``Retry`` is):

* one dedicated PostgreSQL session per attempt holds an advisory lock on the fulfilment and, for websites, one
  on the site account (the shop's cart is shared by every session of an account). Closing the session, or the
  process dying, releases them, so a killed worker never blocks the next attempt;
* ``placing`` left behind by a killed worker is claimed again by the next attempt, which looks the order up at
  the destination first and records what it finds instead of ordering again;
* an attempt stops itself before the job timeout and turns that into a retry; transient failures of our own
  database, Redis or WhatsApp sends become ``arq.Retry`` too; a stale row is re-enqueued by the worker's sweeper;
* notifications are sent after the state is recorded, through the idempotent outbox, and again (deduplicated
  by key) whenever a job meets an already-finished fulfilment, so a crash in between loses no message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

import psycopg
from arq import Retry
from sqlalchemy import Text, and_, cast, exists, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import fulfilments, purchase_requests, suppliers, users
from core.domain import Line, RequestStatus, Role, plain
from core.embedded import libpq_url
from core.repo import User, audit, get_user
from tools.requests import RequestView, get_request, number_of

if TYPE_CHECKING:
    from core.config import Settings
    from tools.erp.base import ErpAdapter
    from tools.storage import ObjectStorage
    from tools.supplier_portal.base import PortalAccount, SupplierPortal
    from tools.supplier_portal.browser import BrowserPool, BrowserRun

log = logging.getLogger(__name__)

PENDING: Final = "pending"
PLACING: Final = "placing"
PLACED: Final = "placed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
#: States a job still has work in.
OPEN_STATES: Final = (PENDING, PLACING)
ERP: Final = "erp"
WEBSITE: Final = "website"
CHANNELS: Final = (ERP, WEBSITE)

#: Advisory-lock namespaces (``pg_advisory_lock(hashtext(namespace), hashtext(key))``).
LOCK_FULFILMENT: Final = "procure.fulfilment"
LOCK_PORTAL_ACCOUNT: Final = "procure.portal-account"
#: How long evidence links sent on WhatsApp stay valid: 7 days, the longest an S3 SigV4 presigned URL allows.
EVIDENCE_LINK_SECONDS: Final = 7 * 24 * 3600

#: ``send(provider, key_prefix, messages)``: the outbox (``server.outbox.send_all`` bound to engine and channels).
Notify = Callable[[str, str, list[dict[str, Any]]], Awaitable[Any]]


def po_reference(request_id: int, supplier: str) -> str:
    """Our PO reference and idempotency key of one fulfilment: ``PR-12-OFFICEMART``."""
    return f"{number_of(request_id)}-{supplier}"


def job_id(fulfilment_id: int, retries: int) -> str:
    """Stable arq job id of a fulfilment's round (``retries`` Retry presses so far): ``fulfil:7:0``."""
    return f"fulfil:{fulfilment_id}:{retries}"


class FulfilmentError(Exception):
    """The order cannot be placed as configured or as approved (not retryable).

    E.g. no ``ERP_URL``, a website supplier without URL/account/password, an unknown page object, a line
    without SKU or price, a fractional quantity for a website. The message is shown to the buyer.
    """

    retryable = False


@dataclass(frozen=True, slots=True)
class Supplier:
    """A ``suppliers`` row: where a supplier takes orders.

    Attributes:
        code: supplier code (catalogue ``supplier``).
        name: display name.
        channel: ``erp`` or ``website``.
        portal: page-object name for website suppliers (``sandbox_shop``).
        url: website base URL (falls back to ``SUPPLIER_PORTAL_URL``).
        account: website login (the password is ``SUPPLIER_PORTAL_PASSWORD``).
    """

    code: str
    name: str
    channel: str
    portal: str | None = None
    url: str | None = None
    account: str | None = None

    @classmethod
    def from_row(cls, r: Any) -> Supplier:
        """Build from a ``suppliers`` row."""
        return cls(r.code, r.name, r.channel, r.portal, r.url, r.account)


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """A ``fulfilments`` row.

    Attributes:
        id: database id (the Retry button is ``retry:<id>``).
        request_id: the purchase request.
        supplier: supplier code.
        channel: ``erp`` or ``website``.
        reference: our PO reference / idempotency key (``PR-12-OFFICEMART``).
        state: ``pending``, ``placing``, ``placed``, ``failed`` or ``cancelled``.
        attempts: attempts ever made (evidence keys are numbered by it).
        round_attempts: attempts in the current round (``FULFILMENT_MAX_TRIES`` per round).
        retries: rounds started by a Retry press (part of the job id).
        external_order_id: the destination's order number, once known.
        external_state: the order's state at the destination (ERP: ``confirmed``...).
        error: the latest failure reason, shown to buyers.
        evidence_keys: object-storage keys of screenshots and traces of failed runs, oldest first.
        lines: the request lines this order carries, as approved (JSON: ``position``, ``sku``, ``description``,
            ``quantity``, ``unit``, ``unit_price``, ``currency``; amounts as strings).
    """

    id: int
    request_id: int
    supplier: str
    channel: str
    reference: str
    state: str
    attempts: int
    round_attempts: int
    retries: int
    external_order_id: str | None
    external_state: str | None
    error: str | None
    evidence_keys: tuple[str, ...]
    lines: tuple[dict[str, Any], ...]

    @classmethod
    def from_row(cls, r: Any) -> Fulfilment:
        """Build from a ``fulfilments`` row."""
        return cls(
            id=r.id,
            request_id=r.request_id,
            supplier=r.supplier,
            channel=r.channel,
            reference=r.idempotency_key,
            state=r.state,
            attempts=r.attempts,
            round_attempts=r.round_attempts,
            retries=r.retries,
            external_order_id=r.external_order_id,
            external_state=r.external_state,
            error=r.error,
            evidence_keys=tuple(r.evidence_keys or ()),
            lines=tuple(r.lines or ()),
        )

    @property
    def number(self) -> str:
        """The request's display number (``PR-12``)."""
        return number_of(self.request_id)

    @property
    def where(self) -> str:
        """``the ERP`` or ``the website``, for messages."""
        return "the ERP" if self.channel == ERP else "the supplier's website"

    def lines_text(self) -> str:
        """``2 box PAP-A4-80, 1 piece TON-CF226A``."""
        return ", ".join(f"{ln['quantity']} {ln['unit']} {ln.get('sku') or ln['description']}" for ln in self.lines)


@dataclass(frozen=True, slots=True)
class Placed:
    """What the destination holds for our reference after an attempt.

    Attributes:
        order_number: the destination's order number.
        external_state: the destination's order state (ERP: ``confirmed``/``processing``/``done``/``cancelled``;
            website: ``placed``).
        how: ``placed`` (ordered now), ``already_placed`` (found before ordering), ``resumed`` (an unconfirmed
            ERP order of an earlier attempt was confirmed now) or ``recovered`` (the checkout failed after the
            site recorded the order).
        evidence_keys: evidence kept by the run (a recovered website run keeps its trace).
    """

    order_number: str
    external_state: str | None
    how: str
    evidence_keys: tuple[str, ...] = ()

    @property
    def cancelled(self) -> bool:
        """The destination's order was cancelled there by a person."""
        return self.external_state == "cancelled"


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """Result of a Retry press.

    Attributes:
        status: ``queued`` (a new round, or the current one, needs its job), ``not_allowed``, ``missing``, or the
            fulfilment's terminal state (``placed``, ``cancelled``) when there is nothing to retry.
        fulfilment: the row after the press, if it exists.
    """

    status: str
    fulfilment: Fulfilment | None = None

    @property
    def job_id(self) -> str | None:
        """The arq job id to enqueue when ``status == "queued"``."""
        if self.status != "queued" or self.fulfilment is None:
            return None
        return job_id(self.fulfilment.id, self.fulfilment.retries)


@dataclass(frozen=True, slots=True)
class _WebsiteTarget:
    """Where and as whom a website order is placed."""

    factory: Any  # a SupplierPortal subclass with ``for_run(run, base_url=..., account=...)``
    base_url: str
    account: PortalAccount
    lock_key: str

    def make(self, run: BrowserRun) -> SupplierPortal:
        portal: SupplierPortal = self.factory.for_run(run, base_url=self.base_url, account=self.account)
        if portal.lock_key != self.lock_key:  # the cross-process lock must be the page object's own key
            raise RuntimeError(f"portal lock key {portal.lock_key!r} != {self.lock_key!r}")
        return portal


def portal_factories() -> dict[str, Any]:
    """Page objects by ``suppliers.portal`` name (imported lazily: ERP-only workers never load Playwright)."""
    from tools.supplier_portal.sandbox_shop import SandboxShopPortal

    return {"sandbox_shop": SandboxShopPortal}


class _Locks:
    """A dedicated PostgreSQL session holding advisory locks until it is closed.

    Session-level locks on a connection of its own (not the engine's pool, which would keep a lock alive on a
    pooled connection after an error): closing it, or the server noticing the client died (SIGKILL), releases
    every lock it holds.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, database_url: str) -> AsyncIterator[_Locks]:
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


def _is_transient(exc: BaseException) -> bool:
    """Our own infrastructure failed (database, Redis, a retryable WhatsApp send): retry the job unchanged."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
    if isinstance(exc, psycopg.OperationalError | PoolTimeout | RedisConnectionError | RedisTimeout | OSError):
        return True
    # server.channels.base.ChannelSendError (tools cannot import the server layer): retryable sends.
    return bool(getattr(exc, "retryable", False)) and type(exc).__name__ == "ChannelSendError"


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt, classified.

    Attributes:
        reason: one line shown to buyers and stored in ``fulfilments.error`` (never holds a password).
        retryable: the same attempt may succeed later unchanged.
        evidence_keys: object-storage keys of the failed run's screenshot and trace (websites).
        retry_after: seconds the destination asked us to wait (HTTP 429 ``Retry-After``), if it said.
        unexpected: not a failure the adapters anticipate (a bug, or an unknown library error): logged with
            its traceback.
    """

    reason: str
    retryable: bool
    evidence_keys: tuple[str, ...] = ()
    retry_after: float | None = None
    unexpected: bool = False


def describe_failure(exc: BaseException, *, budget_seconds: float) -> Failure:
    """Classify the exception that ended an attempt (ERP and portal errors carry their own ``retryable``)."""
    from tools.erp.base import ErpError
    from tools.supplier_portal.base import PortalError, PortalRateLimited

    if isinstance(exc, ErpError):
        return Failure(f"ERP: {exc.message}", exc.retryable)
    if isinstance(exc, PortalError):
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
        wait = exc.retry_after if isinstance(exc, PortalRateLimited) else None
        return Failure(f"website: {reason}", exc.retryable, tuple(exc.evidence_keys), wait)
    if isinstance(exc, FulfilmentError):
        return Failure(str(exc), False)
    if isinstance(exc, TimeoutError):
        return Failure(f"the destination did not finish within {budget_seconds:.0f} s", True)
    if isinstance(exc, ValueError):
        return Failure(f"the order is not valid: {exc}", False)
    # Anything else is unexpected: safe to retry (every attempt looks the order up first) until tries run out.
    return Failure(f"unexpected error: {type(exc).__name__}: {exc}", True, unexpected=True)


def _line_snapshot(position: int, line: Line) -> dict[str, Any]:
    return {
        "position": position,
        "sku": line.sku,
        "description": line.description,
        "quantity": plain(line.quantity),
        "unit": line.unit,
        "unit_price": plain(line.unit_price.amount) if line.unit_price else None,
        "currency": line.unit_price.currency if line.unit_price else None,
    }


def _text(to: str, body: str) -> dict[str, Any]:
    return {"to": to, "type": "text", "text": body}


class Fulfiller:
    """Places fulfilments; one per worker process (its ERP client and Chromium are shared by its jobs).

    Nothing heavy starts before it is needed: the ERP client logs in on the first ERP order, Chromium starts
    on the first website order (:class:`~tools.supplier_portal.browser.BrowserPool` is lazy).

    Args:
        engine: SQLAlchemy engine.
        settings: process settings (``ERP_*``, ``SUPPLIER_PORTAL_*``, ``BROWSER_*``, ``FULFILMENT_*``).
        database_url: PostgreSQL URI, for the lock sessions.
        notify: the outbox; ``notify(provider, key_prefix, messages)`` sends each message once per key.
        erp: an ERP adapter (tests); default ``TrytonErp.from_settings`` on first use, closed by :meth:`aclose`.
        browser_pool: a browser pool (tests); default ``BrowserPool.from_settings`` on first use.
        storage: evidence storage for links; default the browser pool's, else ``ObjectStorage.from_settings``.
        portals: page-object classes by ``suppliers.portal`` name; default :func:`portal_factories`.
    """

    #: Seconds an attempt waits for another worker's lock on the same fulfilment before deferring. Short: a
    #: waiting job holds one of the worker's arq slots, which conversations need too.
    lock_wait_seconds: float = 2.0
    #: Seconds an attempt waits for the website account (another order of the account in progress) before
    #: deferring; one website order takes a few seconds.
    account_wait_seconds: float = 3.0

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        database_url: str,
        notify: Notify,
        erp: ErpAdapter | None = None,
        browser_pool: BrowserPool | None = None,
        storage: ObjectStorage | None = None,
        portals: Mapping[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.database_url = database_url
        self.notify = notify
        self._erp = erp
        self._owns_erp = erp is None
        self._browser = browser_pool
        self._owns_browser = browser_pool is None
        self._storage = storage
        self._portals = dict(portals) if portals is not None else None

    # -- clients ------------------------------------------------------------------------------------------
    @property
    def attempt_budget(self) -> float:
        """Seconds one attempt may take: under ``FULFILMENT_TIMEOUT_SECONDS`` so that we, not arq, stop it."""
        timeout = float(self.settings.FULFILMENT_TIMEOUT_SECONDS)
        return max(timeout - 15.0, timeout * 0.75)

    def erp(self) -> ErpAdapter:
        """The ERP adapter (created on first use).

        Raises:
            FulfilmentError: ``ERP_URL`` is not set.
        """
        if self._erp is None:
            if not self.settings.ERP_URL:
                raise FulfilmentError("no ERP is configured (ERP_URL is not set)")
            from tools.erp.tryton import TrytonErp

            self._erp = TrytonErp.from_settings(self.settings)
        return self._erp

    def browser_pool(self) -> BrowserPool:
        """The worker's browser pool (created on first use; Chromium starts with the first run)."""
        if self._browser is None:
            from tools.supplier_portal.browser import BrowserPool, Pacing

            self._browser = BrowserPool.from_settings(
                self.settings,
                storage=self.storage,
                max_contexts=self.settings.BROWSER_MAX_CONTEXTS,
                pacing=Pacing() if self.settings.BROWSER_PACING else Pacing.off(),
            )
        return self._browser

    @property
    def storage(self) -> ObjectStorage:
        """Where evidence is (the browser pool's storage when one was given)."""
        if self._storage is None:
            if self._browser is not None and self._browser.storage is not None:
                self._storage = self._browser.storage
            else:
                from tools.storage import ObjectStorage

                self._storage = ObjectStorage.from_settings(self.settings)
        return self._storage

    async def aclose(self) -> None:
        """Close the ERP client and Chromium if this object created them."""
        if self._erp is not None and self._owns_erp:
            await self._erp.aclose()
            self._erp = None
        if self._browser is not None and self._owns_browser:
            await self._browser.close()
            self._browser = None

    def serves(self, channel: str) -> bool:
        """Whether this process is configured to place orders on ``channel``."""
        if channel == ERP:
            return self._erp is not None or bool(self.settings.ERP_URL)
        return self.settings.SUPPLIER_PORTAL_PASSWORD is not None

    async def enabled(self) -> bool:
        """Fulfilment is on when an ERP is configured or any supplier is registered (``procure suppliers add``).

        With neither (a fresh embedded install), approved requests stay ``approved`` and nothing is written.
        """
        if self.serves(ERP):
            return True
        async with self.engine.connect() as conn:
            return bool((await conn.execute(select(func.count()).select_from(suppliers))).scalar_one())

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1-based): doubling from the base, capped, with +-20% jitter."""
        st = self.settings
        base = min(st.FULFILMENT_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1), st.FULFILMENT_RETRY_MAX_SECONDS)
        return round(base * random.uniform(0.8, 1.2), 3)

    def _busy_defer(self) -> float:
        """Seconds before a job that found its fulfilment or account busy tries again (jittered: no herd)."""
        return round(max(1.0, min(5.0, self.settings.FULFILMENT_RETRY_BASE_SECONDS)) * random.uniform(1.0, 2.0), 3)

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

    # -- creation -----------------------------------------------------------------------------------------
    async def create_for_request(self, request_id: int, *, provider: str | None = None) -> list[Fulfilment]:
        """Create one fulfilment per supplier of an approved request's lines (idempotent).

        Suppliers absent from ``suppliers`` order through the ERP. Lines without a supplier (free text that
        matched no catalogue item) get no fulfilment: the buyers are told once to order them by hand.

        Args:
            request_id: the approved request.
            provider: channel for the buyers' notice; default the request's.

        Returns:
            Every fulfilment of the request (new and existing); empty when it is not approved (or ordered).
        """
        req = await get_request(self.engine, request_id)
        if req is None or req.status not in (RequestStatus.APPROVED.value, RequestStatus.ORDERED.value):
            return []
        groups: dict[str, list[dict[str, Any]]] = {}
        unassigned: list[dict[str, Any]] = []
        for i, line in enumerate(req.lines):
            code = req.suppliers.get(i)
            (groups.setdefault(code, []) if code else unassigned).append(_line_snapshot(i, line))
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
                            request_id=req.id,
                            supplier=code,
                            channel=channel,
                            idempotency_key=reference,
                            lines=lines,
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
        if unassigned:
            what = ", ".join(f"{ln['quantity']} {ln['unit']} {ln['description']}" for ln in unassigned)
            body = f"{req.number}: these lines have no supplier in the catalogue; please order them by hand: {what}"
            for buyer in await self.buyers():
                await self.notify(
                    provider or req.provider, f"fulfil:{req.number}:unassigned:{buyer.id}", [_text(buyer.wa_id, body)]
                )
        return await self.of_request(request_id)

    # -- the job ------------------------------------------------------------------------------------------
    async def place(self, fulfilment_id: int, *, job_try: int = 1) -> str:
        """Job body: make the destination hold exactly one order for the fulfilment, record it, tell people.

        Args:
            fulfilment_id: the fulfilment.
            job_try: arq's try number (backoff of infrastructure retries).

        Returns:
            The fulfilment's state afterwards (``placed``, ``failed``, ``cancelled``), or ``missing``.

        Raises:
            arq.Retry: a retryable failure with tries left (state back to ``pending``, reason recorded); another
                worker holds the fulfilment or the website account; our database, Redis or a WhatsApp send
                failed transiently.
        """
        try:
            return await self._place(fulfilment_id)
        except Retry:
            raise
        except Exception as exc:
            if _is_transient(exc):
                log.warning("fulfilment %s: transient failure (%s); retrying", fulfilment_id, type(exc).__name__)
                raise Retry(defer=self.backoff(job_try)) from exc
            raise

    async def _place(self, fulfilment_id: int) -> str:
        row = await self.get(fulfilment_id)
        if row is None:
            log.warning("fulfilment %s does not exist", fulfilment_id)
            return "missing"
        if row.state not in OPEN_STATES:
            await self._announce(row)  # again: a crash may have come between recording and telling
            return row.state
        supplier = await self.supplier(row.supplier)
        async with _Locks.open(self.database_url) as locks:
            if not await locks.acquire(LOCK_FULFILMENT, str(row.id), self.lock_wait_seconds):
                log.info("fulfilment %s (%s) is being placed by another worker", row.id, row.reference)
                raise Retry(defer=self._busy_defer())
            target: _WebsiteTarget | None = None
            setup_error: FulfilmentError | None = None
            if row.channel == WEBSITE:
                try:
                    target = self._website_target(row, supplier)
                except FulfilmentError as exc:
                    setup_error = exc
                # The account lock is taken before the claim, so waiting for it costs no attempt.
                if target is not None and not await locks.acquire(
                    LOCK_PORTAL_ACCOUNT, target.lock_key, self.account_wait_seconds
                ):
                    log.info("fulfilment %s waits for website account %s", row.id, target.lock_key)
                    raise Retry(defer=self._busy_defer())
            claimed = await self._claim(row.id)
            if claimed is None:  # finished meanwhile (by the worker whose lock we waited for)
                row = await self.get(fulfilment_id) or row
                await self._announce(row)
                return row.state
            try:
                if setup_error is not None:
                    raise setup_error
                async with asyncio.timeout(self.attempt_budget):
                    if claimed.channel == WEBSITE:
                        assert target is not None
                        placed = await self._place_on_website(claimed, target)
                    else:
                        placed = await self._place_in_erp(claimed)
            except Exception as exc:  # CancelledError (shutdown, arq timeout) passes: the row stays placing
                done = await self._attempt_failed(claimed, exc)  # raises Retry while tries are left
            else:
                delay = self.settings.TEST_FULFILMENT_RECORD_DELAY_SECONDS
                if delay > 0:  # fault injection: the destination has the order, we have not recorded it yet
                    log.warning("fulfilment %s: TEST pause %.1f s before recording", claimed.id, delay)
                    await asyncio.sleep(delay)
                done = await self._record_placed(claimed, placed)
        await self._announce(done)
        return done.state

    async def _claim(self, fulfilment_id: int) -> Fulfilment | None:
        """``pending``/``placing`` -> ``placing`` with one more attempt; ``None`` if it is no longer open.

        ``placing`` is claimable because only the lock holder claims: a ``placing`` row seen here was left by a
        worker that died or gave up, and the attempt about to start looks the order up before placing it.
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

    # -- destinations -------------------------------------------------------------------------------------
    async def _place_in_erp(self, f: Fulfilment) -> Placed:
        """Look the reference up in the ERP; place the order only when it is absent."""
        from tools.erp.base import PLACED_STATES, ErpLine, ErpUnavailable

        erp = self.erp()
        existing = await erp.find_by_reference(f.reference)
        if existing is not None and (existing.state in PLACED_STATES or existing.state == "cancelled"):
            log.info("fulfilment %s: %s already in the ERP as %s", f.id, f.reference, existing.number)
            return Placed(existing.number or str(existing.id), existing.state, "already_placed")
        lines = []
        for ln in f.lines:
            if not ln.get("sku"):
                raise FulfilmentError(f"line {ln['description']!r} has no SKU: the ERP needs a product code")
            if ln.get("unit_price") is None:
                raise FulfilmentError(f"line {ln['sku']} has no price")
            try:
                lines.append(
                    ErpLine(
                        product_code=ln["sku"],
                        quantity=Decimal(ln["quantity"]),
                        unit_price=Decimal(ln["unit_price"]),
                        unit=ln["unit"],
                        description=ln["description"],
                    )
                )
            except InvalidOperation as exc:
                raise FulfilmentError(f"line {ln['sku']}: unreadable amount") from exc
        req = await get_request(self.engine, f.request_id)
        order = await erp.place_order(f.reference, f.supplier, lines, _order_description(f, req))
        if order.state not in PLACED_STATES and order.state != "cancelled":
            raise ErpUnavailable(f"ERP order {order.number or order.id} is still {order.state}")
        # An unconfirmed order found under our reference was an earlier attempt's, driven on now.
        how = "resumed" if existing is not None and existing.id == order.id else "placed"
        return Placed(order.number or str(order.id), order.state, how)

    def _website_target(self, f: Fulfilment, supplier: Supplier | None) -> _WebsiteTarget:
        """Resolve page object, URL and account of a website supplier.

        Raises:
            FulfilmentError: something is not configured.
        """
        from tools.supplier_portal.base import PortalAccount

        if supplier is None:
            raise FulfilmentError(f"supplier {f.supplier} is not registered (procure suppliers add)")
        portals = self._portals if self._portals is not None else portal_factories()
        factory = portals.get(supplier.portal or "")
        if factory is None:
            raise FulfilmentError(f"supplier {f.supplier}: unknown website page object {supplier.portal!r}")
        base_url = supplier.url or self.settings.SUPPLIER_PORTAL_URL
        if not base_url:
            raise FulfilmentError(f"supplier {f.supplier}: no website URL (suppliers.url or SUPPLIER_PORTAL_URL)")
        if not supplier.account:
            raise FulfilmentError(f"supplier {f.supplier}: no website account (procure suppliers add --account)")
        if self.settings.SUPPLIER_PORTAL_PASSWORD is None:
            raise FulfilmentError("no website password is configured (SUPPLIER_PORTAL_PASSWORD)")
        account = PortalAccount(supplier.account, self.settings.SUPPLIER_PORTAL_PASSWORD.get_secret_value())
        # SupplierPortal.lock_key's formula: the page object's site code and the account's login.
        lock_key = f"{factory.supplier or supplier.code}:{supplier.account.casefold()}"
        return _WebsiteTarget(factory, base_url, account, lock_key)

    async def _place_on_website(self, f: Fulfilment, target: _WebsiteTarget) -> Placed:
        """Place the order in one browser run (the page object looks the PO up in the order history first)."""
        from tools.supplier_portal.base import OrderLine
        from tools.supplier_portal.browser import place_order_in_browser

        lines = []
        for ln in f.lines:
            if not ln.get("sku"):
                raise FulfilmentError(f"line {ln['description']!r} has no SKU: the website needs an article number")
            quantity = Decimal(ln["quantity"])
            if quantity != quantity.to_integral_value() or quantity < 1:
                raise FulfilmentError(f"line {ln['sku']}: the website sells whole units, not {ln['quantity']}")
            lines.append(OrderLine(ln["sku"], int(quantity)))
        result = await place_order_in_browser(
            self.browser_pool(),
            target.make,
            f.reference,
            lines,
            account_key=target.lock_key,
            attempt=f.attempts,
        )
        return Placed(result.order_number, "placed", result.status, tuple(result.evidence_keys))

    async def _discard_erp_leftover(self, f: Fulfilment) -> None:
        """After a final failure, delete a draft/quotation an earlier attempt left under our reference."""
        from tools.erp.base import DRAFT, QUOTATION, ErpError

        try:
            erp = self.erp()
            order = await erp.find_by_reference(f.reference)
            if order is not None and order.supplier_code == f.supplier and order.state in (DRAFT, QUOTATION):
                await erp.delete_draft(order.id)
                log.warning("fulfilment %s: deleted unconfirmed ERP order %s", f.id, order.id)
        except (ErpError, FulfilmentError) as exc:  # best effort: a later Retry finds and finishes it instead
            log.info("fulfilment %s: no clean-up of the ERP (%s)", f.id, exc)

    # -- recording ----------------------------------------------------------------------------------------
    async def _record_placed(self, f: Fulfilment, placed: Placed) -> Fulfilment:
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
                values["error"] = f"order {placed.order_number} was cancelled in {f.where}"
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
        log.info("fulfilment %s (%s): %s as %s (%s)", f.id, f.reference, state, placed.order_number, placed.how)
        return Fulfilment.from_row(row)

    async def _attempt_failed(self, f: Fulfilment, exc: Exception) -> Fulfilment:
        """Record a failed attempt; raise ``Retry`` while tries are left, else mark ``failed`` and return it."""
        failure = describe_failure(exc, budget_seconds=self.attempt_budget)
        reason, evidence = failure.reason, list(failure.evidence_keys)
        final = not failure.retryable or f.round_attempts >= self.settings.FULFILMENT_MAX_TRIES
        log.warning(
            "fulfilment %s (%s) attempt %d %s: %s",
            f.id,
            f.reference,
            f.attempts,
            "failed for good" if final else "failed, will retry",
            reason,
            exc_info=exc if failure.unexpected else None,
        )
        values: dict[str, Any] = {"error": reason[:1000], "updated_at": func.now()}
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
                    "reason": reason[:1000],
                    "retryable": failure.retryable,
                    "evidence_keys": evidence,
                },
            )
        if not final:
            defer = max(self.backoff(f.round_attempts), failure.retry_after or 0.0)
            raise Retry(defer=defer) from exc
        if f.channel == ERP:
            await self._discard_erp_leftover(f)
        return Fulfilment.from_row(row) if row is not None else f

    # -- notifications ------------------------------------------------------------------------------------
    async def _announce(self, f: Fulfilment) -> None:
        """Tell the requester and the buyers the outcome (each message once per key; no-op for open states)."""
        if f.state in OPEN_STATES:
            return
        req = await get_request(self.engine, f.request_id)
        if req is None:
            return
        provider = req.provider
        buyers = await self.buyers()
        if f.state == PLACED:
            order = f"*{f.external_order_id}*"
            await self.notify(
                provider,
                f"fulfil:{f.id}:placed:{req.requester.id}",
                [
                    _text(
                        req.requester.wa_id,
                        f"📦 {req.number}: ordered from {f.supplier} ({f.lines_text()}). Order number {order}.",
                    )
                ],
            )
            for buyer in buyers:
                if buyer.id == req.requester.id:
                    continue
                await self.notify(
                    provider,
                    f"fulfil:{f.id}:placed:{buyer.id}",
                    [
                        _text(
                            buyer.wa_id,
                            f"📦 {req.number} ({req.requester.display_name}): ordered from {f.supplier} in {f.where}, "
                            f"order {order} ({f.external_state or 'placed'}), reference {f.reference}: "
                            f"{f.lines_text()}.",
                        )
                    ],
                )
            return
        if f.state == CANCELLED:
            body = f"{req.number}: the {f.supplier} order {f.external_order_id} was cancelled in {f.where}."
            for person in [req.requester, *[b for b in buyers if b.id != req.requester.id]]:
                await self.notify(provider, f"fulfil:{f.id}:cancelled:{person.id}", [_text(person.wa_id, body)])
            return
        # failed: buyers get the reason, evidence links and a Retry button; the requester a short notice.
        links = await self._evidence_links(f)
        detail = (
            f"⚠️ {req.number} ({req.requester.display_name}): the order for {f.supplier} could not be placed in "
            f"{f.where} after {f.round_attempts} attempt{'s' if f.round_attempts != 1 else ''}.\n"
            f"Reason: {f.error or 'unknown'}\nReference: {f.reference}"
        )
        if links:
            detail += "\n" + "\n".join(f"{name}: {url}" for name, url in links)
        for buyer in buyers:
            await self.notify(
                provider,
                f"fulfil:{f.id}:failed:{f.retries}:{buyer.id}",
                [
                    _text(buyer.wa_id, detail),
                    {
                        "to": buyer.wa_id,
                        "type": "buttons",
                        "text": f"Retry the {f.supplier} order for {req.number}?",
                        "buttons": [[f"retry:{f.id}", "Retry order"]],
                    },
                ],
            )
        if all(b.id != req.requester.id for b in buyers):
            await self.notify(
                provider,
                f"fulfil:{f.id}:failed:{f.retries}:{req.requester.id}",
                [
                    _text(
                        req.requester.wa_id,
                        f"{req.number}: the order for {f.supplier} could not be placed yet. "
                        "The buyer has been told and will follow up.",
                    )
                ],
            )

    async def _evidence_links(self, f: Fulfilment) -> list[tuple[str, str]]:
        """Presigned links to the latest screenshot and trace (empty when there is none or storage fails)."""
        wanted = {"screenshot.png": "Screenshot", "trace.zip": "Trace (trace.playwright.dev)"}
        latest: dict[str, str] = {}
        for key in f.evidence_keys:
            name = key.rsplit("/", 1)[-1]
            if name in wanted:
                latest[name] = key
        links = []
        for name, key in latest.items():
            try:
                links.append((wanted[name], await self.storage.aurl(key, EVIDENCE_LINK_SECONDS)))
            except Exception as exc:  # a missing link must not stop the failure notice
                log.warning("no link for %s: %s", key, exc)
        return links

    # -- Retry button -------------------------------------------------------------------------------------
    async def retry(self, fulfilment_id: int, by: int, *, provider: str, token: str) -> RetryOutcome:
        """A buyer or admin pressed Retry: start a new round of a failed fulfilment (role re-checked here).

        Args:
            fulfilment_id: from the button id ``retry:<id>``.
            by: the presser's user id.
            provider: channel to answer on.
            token: identifies the press (e.g. the turn id), for the answer's idempotency key.

        Returns:
            The outcome; ``status == "queued"`` means the caller must enqueue :attr:`RetryOutcome.job_id`.
        """
        actor = await get_user(self.engine, id=by)
        row = await self.get(fulfilment_id)
        if row is None:
            return RetryOutcome("missing")
        if actor is None or actor.role not in (Role.BUYER, Role.ADMIN):
            async with self.engine.begin() as conn:
                await audit(
                    conn,
                    "fulfilment.retry_refused",
                    actor_id=by,
                    request_id=row.request_id,
                    details={"fulfilment_id": row.id, "role": actor.role.value if actor else None},
                )
            if actor is not None:
                await self.notify(
                    provider,
                    f"fulfil:{row.id}:retry:{token}:{actor.id}",
                    [_text(actor.wa_id, "Only buyers and admins can retry orders.")],
                )
            return RetryOutcome("not_allowed", row)
        async with self.engine.begin() as conn:
            upd = (
                await conn.execute(
                    update(fulfilments)
                    .where(fulfilments.c.id == fulfilment_id, fulfilments.c.state == FAILED)
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
                    actor_id=actor.id,
                    request_id=row.request_id,
                    details={"fulfilment_id": row.id, "round": upd.retries, "previous_error": row.error},
                )
        if upd is not None:
            return RetryOutcome("queued", Fulfilment.from_row(upd))
        row = await self.get(fulfilment_id) or row
        if row.state in OPEN_STATES:
            return RetryOutcome("queued", row)  # already running: make sure its job exists, say nothing
        answer = (
            f"{row.number}: the {row.supplier} order is already placed (order {row.external_order_id})."
            if row.state == PLACED
            else f"{row.number}: the {row.supplier} order was cancelled in {row.where}; nothing to retry."
        )
        await self.notify(provider, f"fulfil:{row.id}:retry:{token}:{actor.id}", [_text(actor.wa_id, answer)])
        return RetryOutcome(row.state, row)

    # -- sweeper ------------------------------------------------------------------------------------------
    async def stale(self) -> list[tuple[int, str]]:
        """Open fulfilments nobody is working on, which this process can place: ``(id, job id to enqueue)``.

        ``placing`` older than the job timeout + 10 s means the worker died or arq gave up on the job (a job
        timeout is not retried); ``pending`` older than the longest backoff + timeout + 60 s means its job was
        lost (Redis flushed, tries exhausted by lock waits, enqueue failed).
        """
        st = self.settings
        placing_after = timedelta(seconds=st.FULFILMENT_TIMEOUT_SECONDS + 10)
        pending_after = timedelta(seconds=st.FULFILMENT_RETRY_MAX_SECONDS + st.FULFILMENT_TIMEOUT_SECONDS + 60)
        channels = [c for c in CHANNELS if self.serves(c)]
        if not channels:
            return []
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fulfilments.c.id, fulfilments.c.retries, fulfilments.c.attempts).where(
                        fulfilments.c.channel.in_(channels),
                        ((fulfilments.c.state == PLACING) & (fulfilments.c.updated_at < func.now() - placing_after))
                        | ((fulfilments.c.state == PENDING) & (fulfilments.c.updated_at < func.now() - pending_after)),
                    )
                )
            ).all()
        return [(r.id, f"{job_id(r.id, r.retries)}:sweep:{r.attempts}") for r in rows]


def _order_description(f: Fulfilment, req: RequestView | None) -> str:
    if req is None:
        return f.reference
    parts = [f"{req.number} for {req.site or 'no site'}"]
    if req.needed_by:
        parts.append(f"needed by {req.needed_by.isoformat()}")
    parts.append(f"requested by {req.requester.display_name}")
    return ", ".join(parts)


__all__ = [
    "CANCELLED",
    "ERP",
    "FAILED",
    "Failure",
    "OPEN_STATES",
    "PENDING",
    "PLACED",
    "PLACING",
    "WEBSITE",
    "Fulfiller",
    "Fulfilment",
    "FulfilmentError",
    "Notify",
    "Placed",
    "RetryOutcome",
    "Supplier",
    "describe_failure",
    "job_id",
    "po_reference",
    "portal_factories",
]
