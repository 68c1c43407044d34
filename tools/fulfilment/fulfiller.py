"""The fulfilment job: lock, claim, place at the destination, record the outcome, tell people; Retry presses.

What makes it safe to run from a job queue (arq: a SIGKILLed job stays "in progress" until its timeout + 10 s,
a job timeout is not retried, only a retry request is):

* one dedicated PostgreSQL session per attempt holds an advisory lock on the fulfilment and, for websites, one
  on the site account (the shop's cart is shared by every session of an account). Closing the session, or the
  process dying, releases them, so a killed worker never blocks the next attempt;
* ``placing`` left behind by a killed worker is claimed again by the next attempt, which looks the order up at
  the destination first and records what it finds instead of ordering again;
* an attempt stops itself before the job timeout and turns that into a retry; transient failures of our own
  database, Redis or WhatsApp sends become a retry too (:class:`~tools.fulfilment.model.RetryLater`, which the
  worker maps to its framework's retry); a stale row is re-enqueued by the worker's sweeper;
* notifications are sent after the state is recorded, through the idempotent outbox, and again (deduplicated
  by key) whenever a job meets an already-finished fulfilment, so a crash in between loses no message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain import RequestStatus, Role
from core.repo import User, get_user
from tools.fulfilment.failures import describe_failure, is_transient
from tools.fulfilment.model import (
    CHANNELS,
    ERP,
    OPEN_STATES,
    WEBSITE,
    Fulfilment,
    FulfilmentError,
    Notify,
    RetryLater,
    RetryOutcome,
    Supplier,
    order_description,
)
from tools.fulfilment.notices import Notices
from tools.fulfilment.placement import Placement, WebsiteTarget
from tools.fulfilment.store import LOCK_FULFILMENT, LOCK_PORTAL_ACCOUNT, FulfilmentStore, Locks
from tools.requests import get_request

if TYPE_CHECKING:
    from core.config import Settings
    from tools.erp.base import ErpAdapter
    from tools.storage import ObjectStorage
    from tools.supplier_portal.browser import BrowserPool

log = logging.getLogger(__name__)


class Fulfiller:
    """Places fulfilments; one per worker process (its ERP client and Chromium are shared by its jobs).

    Args:
        engine: SQLAlchemy engine.
        settings: process settings (``ERP_*``, ``SUPPLIER_PORTAL_*``, ``BROWSER_*``, ``FULFILMENT_*``).
        database_url: PostgreSQL URI, for the lock sessions.
        notify: the outbox; ``notify(provider, key_prefix, messages)`` sends each message once per key.
        erp: an ERP adapter (tests); default ``TrytonErp.from_settings`` on first use, closed by :meth:`aclose`.
        browser_pool: a browser pool (tests); default ``BrowserPool.from_settings`` on first use.
        storage: evidence storage for links; default the browser pool's, else ``ObjectStorage.from_settings``.
        portals: page-object classes by ``suppliers.portal`` name; default
            :func:`~tools.fulfilment.placement.portal_factories`.
    """

    #: Seconds an attempt waits for another worker's lock on the same fulfilment before deferring. Short: a
    #: waiting job holds one of the worker's job slots, which conversations need too.
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
        self.store = FulfilmentStore(engine)
        self.placement = Placement(settings, erp=erp, browser_pool=browser_pool, storage=storage, portals=portals)
        self.notices = Notices(self.store, notify, lambda: self.placement.storage)

    # -- clients and limits -------------------------------------------------------------------------------
    @property
    def attempt_budget(self) -> float:
        """Seconds one attempt may take: under ``FULFILMENT_TIMEOUT_SECONDS`` so that we, not the queue, stop it."""
        timeout = float(self.settings.FULFILMENT_TIMEOUT_SECONDS)
        return max(timeout - 15.0, timeout * 0.75)

    def erp(self) -> ErpAdapter:
        """The ERP adapter (created on first use); see :meth:`Placement.erp`."""
        return self.placement.erp()

    def browser_pool(self) -> BrowserPool:
        """The worker's browser pool (created on first use; Chromium starts with the first run)."""
        return self.placement.browser_pool()

    @property
    def storage(self) -> ObjectStorage:
        """Where evidence is (the browser pool's storage when one was given)."""
        return self.placement.storage

    async def aclose(self) -> None:
        """Close the ERP client and Chromium if this object created them."""
        await self.placement.aclose()

    def serves(self, channel: str) -> bool:
        """Whether this process is configured to place orders on ``channel``."""
        return self.placement.serves(channel)

    async def enabled(self) -> bool:
        """Fulfilment is on when an ERP is configured or any supplier is registered (``procure suppliers add``).

        With neither (a fresh embedded install), approved requests stay ``approved`` and nothing is written.
        """
        return self.serves(ERP) or await self.store.has_suppliers()

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
        return await self.store.get(fulfilment_id)

    async def of_request(self, request_id: int) -> list[Fulfilment]:
        """The request's fulfilments, by supplier code."""
        return await self.store.of_request(request_id)

    async def supplier(self, code: str) -> Supplier | None:
        """The ``suppliers`` row of ``code``, or ``None`` (then the supplier orders through the ERP)."""
        return await self.store.supplier(code)

    async def buyers(self) -> list[User]:
        """Who is told about orders: active buyers, or the admins when there is no buyer."""
        return await self.store.buyers()

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
        unassigned = await self.store.create(req)
        await self.notices.unassigned(req, unassigned, provider)
        return await self.store.of_request(request_id)

    # -- the job ------------------------------------------------------------------------------------------
    async def place(self, fulfilment_id: int, *, job_try: int = 1) -> str:
        """Job body: make the destination hold exactly one order for the fulfilment, record it, tell people.

        Args:
            fulfilment_id: the fulfilment.
            job_try: the queue's try number (backoff of infrastructure retries).

        Returns:
            The fulfilment's state afterwards (``placed``, ``failed``, ``cancelled``), or ``missing``.

        Raises:
            RetryLater: a retryable failure with tries left (state back to ``pending``, reason recorded); another
                worker holds the fulfilment or the website account; our database, Redis or a WhatsApp send
                failed transiently.
        """
        try:
            return await self._place(fulfilment_id)
        except RetryLater:
            raise
        except Exception as exc:
            if is_transient(exc):
                log.warning("fulfilment %s: transient failure (%s); retrying", fulfilment_id, type(exc).__name__)
                raise RetryLater(self.backoff(job_try)) from exc
            raise

    async def _place(self, fulfilment_id: int) -> str:
        row = await self.store.get(fulfilment_id)
        if row is None:
            log.warning("fulfilment %s does not exist", fulfilment_id)
            return "missing"
        if row.state not in OPEN_STATES:
            await self.notices.announce(row)  # again: a crash may have come between recording and telling
            return row.state
        supplier = await self.store.supplier(row.supplier)
        async with Locks.open(self.database_url) as locks:
            if not await locks.acquire(LOCK_FULFILMENT, str(row.id), self.lock_wait_seconds):
                log.info("fulfilment %s (%s) is being placed by another worker", row.id, row.reference)
                raise RetryLater(self._busy_defer())
            target: WebsiteTarget | None = None
            setup_error: FulfilmentError | None = None
            if row.channel == WEBSITE:
                try:
                    target = self.placement.website_target(row, supplier)
                except FulfilmentError as exc:
                    setup_error = exc
                # The account lock is taken before the claim, so waiting for it costs no attempt.
                if target is not None and not await locks.acquire(
                    LOCK_PORTAL_ACCOUNT, target.lock_key, self.account_wait_seconds
                ):
                    log.info("fulfilment %s waits for website account %s", row.id, target.lock_key)
                    raise RetryLater(self._busy_defer())
            claimed = await self.store.claim(row.id)
            if claimed is None:  # finished meanwhile (by the worker whose lock we waited for)
                row = await self.store.get(fulfilment_id) or row
                await self.notices.announce(row)
                return row.state
            try:
                if setup_error is not None:
                    raise setup_error
                async with asyncio.timeout(self.attempt_budget):
                    if claimed.channel == WEBSITE:
                        assert target is not None
                        placed = await self.placement.on_website(claimed, target)
                    else:
                        req = await get_request(self.engine, claimed.request_id)
                        placed = await self.placement.in_erp(claimed, order_description(claimed, req))
            except Exception as exc:  # CancelledError (shutdown, job timeout) passes: the row stays placing
                done = await self._attempt_failed(claimed, exc)  # raises RetryLater while tries are left
            else:
                delay = self.settings.TEST_FULFILMENT_RECORD_DELAY_SECONDS
                if delay > 0:  # fault injection: the destination has the order, we have not recorded it yet
                    log.warning("fulfilment %s: TEST pause %.1f s before recording", claimed.id, delay)
                    await asyncio.sleep(delay)
                done = await self.store.record_placed(claimed, placed)
                log.info(
                    "fulfilment %s (%s): %s as %s (%s)",
                    done.id,
                    done.reference,
                    done.state,
                    placed.order_number,
                    placed.how,
                )
        await self.notices.announce(done)
        return done.state

    async def _attempt_failed(self, f: Fulfilment, exc: Exception) -> Fulfilment:
        """Record a failed attempt; raise :class:`RetryLater` while tries are left, else mark ``failed``."""
        failure = describe_failure(exc, budget_seconds=self.attempt_budget)
        final = not failure.retryable or f.round_attempts >= self.settings.FULFILMENT_MAX_TRIES
        log.warning(
            "fulfilment %s (%s) attempt %d %s: %s",
            f.id,
            f.reference,
            f.attempts,
            "failed for good" if final else "failed, will retry",
            failure.reason,
            exc_info=exc if failure.unexpected else None,
        )
        row = await self.store.record_failure(f, failure, final=final)
        if not final:
            raise RetryLater(max(self.backoff(f.round_attempts), failure.retry_after or 0.0)) from exc
        if f.channel == ERP:
            await self.placement.discard_erp_leftover(f)
        return row

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
        row = await self.store.get(fulfilment_id)
        if row is None:
            return RetryOutcome("missing")
        if actor is None or actor.role not in (Role.BUYER, Role.ADMIN):
            await self.store.refuse_retry(row, by, actor.role.value if actor else None)
            if actor is not None:
                await self.notices.retry_refused(row, actor, provider=provider, token=token)
            return RetryOutcome("not_allowed", row)
        started = await self.store.start_round(row, actor.id)
        if started is not None:
            return RetryOutcome("queued", started)
        row = await self.store.get(fulfilment_id) or row
        if row.state in OPEN_STATES:
            return RetryOutcome("queued", row)  # already running: make sure its job exists, say nothing
        await self.notices.nothing_to_retry(row, actor, provider=provider, token=token)
        return RetryOutcome(row.state, row)

    # -- sweeper ------------------------------------------------------------------------------------------
    async def stale(self) -> list[tuple[int, str]]:
        """Open fulfilments nobody is working on, which this process can place: ``(id, job id to enqueue)``.

        ``placing`` older than the job timeout + 10 s means the worker died or the queue gave up on the job (a
        job timeout is not retried); ``pending`` older than the longest backoff + timeout + 60 s means its job
        was lost (Redis flushed, tries exhausted by lock waits, enqueue failed).
        """
        st = self.settings
        return await self.store.stale(
            [c for c in CHANNELS if self.serves(c)],
            placing_after=timedelta(seconds=st.FULFILMENT_TIMEOUT_SECONDS + 10),
            pending_after=timedelta(seconds=st.FULFILMENT_RETRY_MAX_SECONDS + st.FULFILMENT_TIMEOUT_SECONDS + 60),
        )
