"""What every supplier website implements, and the idempotent order placement built on it.

A supplier portal is driven through five primitive operations (:meth:`SupplierPortal.login`, ``search``,
``add_to_cart``, ``checkout``, ``find_order``) plus two cart helpers. :meth:`SupplierPortal.place_order`
composes them so that one PO reference gives at most one order on the site, whatever fails along the way:

1. look the PO reference up in the site's order history; if an order is there, return it (``already_placed``);
2. empty the cart, add the lines, check that the cart holds exactly those lines;
3. check out with the PO reference as the customer's order reference;
4. if anything fails after the checkout was submitted, look the PO reference up again: the site may have
   recorded the order and failed afterwards (``recovered``). Only if it is absent is the failure reported.

What this cannot guarantee on its own: the look-up-then-order sequence is not atomic on the site. Two
concurrent ``place_order`` calls for the same account would race (and share the account's server-side cart),
so calls are serialised per portal account within a process (:func:`account_lock`), and callers in different
processes must hold a lock per supplier account (the job layer's database lock) around the whole call.

Session expiry is handled here (sign in again once per operation and resume); rate limiting is retried here
when the site asks for a short wait, else raised as :class:`PortalRateLimited` for the job queue to defer.

About 450 lines, on purpose: the portal errors, the order records and :class:`SupplierPortal` are the one
contract every supplier website implements, and :meth:`SupplierPortal.place_order`'s guarantees (above) are
stated in terms of all three; most of the length is that documented contract.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Literal, TypeVar

from core.domain import Line

logger = logging.getLogger(__name__)

T = TypeVar("T")


# -- errors -------------------------------------------------------------------------------------------------


class PortalError(Exception):
    """A supplier-website operation failed.

    Attributes:
        retryable: True when the same call may succeed later (the job layer retries it; ``place_order`` is
            safe to repeat). Class default, overridable per instance.
        evidence_keys: object-storage keys of the screenshot and trace of the failed run (filled in by the
            browser pool when the run ends), in upload order.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None, evidence_keys: Iterable[str] = ()) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        self.evidence_keys: list[str] = list(evidence_keys)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (evidence: {', '.join(self.evidence_keys)})" if self.evidence_keys else text


class PortalRateLimited(PortalError):
    """The site answered "too many requests" (HTTP 429). Retryable after ``retry_after`` seconds.

    Attributes:
        retry_after: seconds the site asked to wait (its ``Retry-After``), or ``None`` if it did not say.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        retryable: bool | None = None,
        evidence_keys: Iterable[str] = (),
    ) -> None:
        super().__init__(message, retryable=retryable, evidence_keys=evidence_keys)
        self.retry_after = retry_after


class PortalTimeout(PortalError):
    """A page or element did not arrive in time (slow site, network). Retryable."""

    retryable = True


class PortalSessionExpired(PortalError):
    """The site sent us to its sign-in page mid-flow. ``place_order`` signs in again once and resumes."""

    retryable = True


class PortalCheckoutFailed(PortalError):
    """The checkout did not produce an order confirmation.

    ``retryable`` is True when the outcome is unknown or transient (a server error, a dropped connection) and
    False when the site refused the order (validation error, product unavailable). Either way ``place_order``
    has already looked the PO reference up before raising this.
    """


class PortalLoginFailed(PortalError):
    """The site refused the account's credentials (or locked the account). Not retryable: fix the account."""


class PortalProductNotFound(PortalError):
    """The site does not sell this SKU (any more). Not retryable."""


# -- values -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """Credentials of one account on a supplier website.

    Attributes:
        username: the sign-in name (often an email).
        password: the password; left out of ``repr`` so that it never reaches logs.
    """

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Product:
    """A product as the supplier's site shows it.

    Attributes:
        sku: the site's article number.
        name: display name.
        unit_price: price per unit, or ``None`` when the site hides it.
        currency: ISO 4217 code, or ``None``.
        unit: unit of sale, if shown.
        url: the product page.
    """

    sku: str
    name: str
    unit_price: Decimal | None = None
    currency: str | None = None
    unit: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line to order: a site SKU and a whole quantity in the site's unit of sale."""

    sku: str
    quantity: int

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("OrderLine.sku is empty")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 1:
            raise ValueError(f"OrderLine.quantity must be a positive int, got {self.quantity!r}")

    @classmethod
    def from_line(cls, line: Line) -> OrderLine:
        """From a purchase-request line matched to the catalogue.

        Raises:
            ValueError: the line has no SKU or a fractional quantity (websites sell whole units).
        """
        if line.sku is None:
            raise ValueError(f"line {line.description!r} is not matched to a SKU")
        if line.quantity != line.quantity.to_integral_value():
            raise ValueError(f"line {line.sku}: quantity {line.quantity} is not a whole number")
        return cls(line.sku, int(line.quantity))


PlaceStatus = Literal["placed", "already_placed", "recovered"]


@dataclass(frozen=True, slots=True)
class PortalResult:
    """Outcome of :meth:`SupplierPortal.place_order`.

    Attributes:
        po_reference: our PO reference, as written into the supplier's order.
        order_number: the supplier's order number.
        status: ``placed`` (ordered now), ``already_placed`` (found before ordering: an earlier attempt
            succeeded) or ``recovered`` (the checkout failed, but the order was found recorded afterwards).
        supplier: supplier code of the portal.
        evidence_keys: object-storage keys of kept evidence (a recovered run keeps its trace), else empty.
    """

    po_reference: str
    order_number: str
    status: PlaceStatus
    supplier: str = ""
    evidence_keys: tuple[str, ...] = ()


# -- per-account serialisation ------------------------------------------------------------------------------

# Per event loop: an asyncio.Lock belongs to the loop it was first used in (tests run several loops).
_ACCOUNT_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def account_lock(key: str) -> asyncio.Lock:
    """The process-wide lock of one supplier account (created on first use).

    Orders for the same account must not run concurrently: the site's look-up-then-order is not atomic and the
    cart is shared by every session of the account.
    """
    locks = _ACCOUNT_LOCKS.setdefault(asyncio.get_running_loop(), {})
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


# -- the interface ------------------------------------------------------------------------------------------


class SupplierPortal(ABC):
    """One supplier website, driven as one account. Subclasses implement the primitives for their site.

    Primitives raise :class:`PortalSessionExpired` when the site asks to sign in, :class:`PortalRateLimited`
    on a 429 page, :class:`PortalTimeout` when a page does not arrive, and never retry on their own; the
    policies live in :meth:`place_order`.

    Args:
        account: the credentials.
        rate_limit_max_wait: longest ``Retry-After`` (seconds) waited out here; a longer one is raised.
        rate_limit_retries: how many 429s one operation may meet before the error is raised.
    """

    #: Supplier code (``TONERWEB``), as in the catalogue.
    supplier: str = ""

    def __init__(
        self, account: PortalAccount, *, rate_limit_max_wait: float = 5.0, rate_limit_retries: int = 3
    ) -> None:
        self.account = account
        self.rate_limit_max_wait = rate_limit_max_wait
        self.rate_limit_retries = rate_limit_retries

    @property
    def lock_key(self) -> str:
        """Identity of the account on the site, for :func:`account_lock` (and the job layer's lock)."""
        return f"{self.supplier}:{self.account.username.casefold()}"

    # primitives -------------------------------------------------------------------------------------------
    @abstractmethod
    async def login(self) -> None:
        """Sign in with :attr:`account`.

        Raises:
            PortalLoginFailed: credentials refused.
            PortalRateLimited, PortalTimeout, PortalError: the site misbehaved.
        """

    @abstractmethod
    async def search(self, query: str) -> list[Product]:
        """Products matching ``query`` (SKU or name), in the site's order."""

    @abstractmethod
    async def add_to_cart(self, sku: str, quantity: int) -> None:
        """Add ``quantity`` units of ``sku`` to the account's cart.

        Raises:
            PortalProductNotFound: the site does not sell ``sku``.
        """

    @abstractmethod
    async def cart_contents(self) -> dict[str, int]:
        """The account's cart: SKU -> quantity."""

    @abstractmethod
    async def clear_cart(self) -> None:
        """Empty the account's cart."""

    @abstractmethod
    async def checkout(self, po_reference: str, expected: Mapping[str, int] | None = None) -> str:
        """Order the current cart with ``po_reference`` as the customer's reference.

        Args:
            po_reference: our PO number.
            expected: SKU -> quantity the order must hold; when given, the site's checkout summary is compared
                with it just before submitting, and nothing is submitted on a difference (another session of
                the account may have changed the shared cart).

        Returns:
            The site's order number.

        Raises:
            PortalCheckoutFailed: no confirmation (retryable if the outcome is unknown), or the summary differs
                from ``expected`` (retryable, nothing submitted).
        """

    @abstractmethod
    async def find_order(self, po_reference: str) -> str | None:
        """The order number of the account's order whose reference is exactly ``po_reference``, else ``None``.

        When several match (which ``place_order`` exists to prevent), the oldest is returned.
        """

    # policies ---------------------------------------------------------------------------------------------
    async def _call(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Run one primitive; sign in again once if the session expired, wait out short rate limits."""
        signed_in_again = False
        rate_limited = 0
        while True:
            try:
                return await operation()
            except PortalSessionExpired:
                if signed_in_again:
                    raise
                signed_in_again = True
                logger.info("%s: %s: session expired, signing in again", self.supplier, what)
                await self._call(self.login, "login")
            except PortalRateLimited as exc:
                wait = 1.0 if exc.retry_after is None else exc.retry_after
                rate_limited += 1
                if rate_limited > self.rate_limit_retries or wait > self.rate_limit_max_wait:
                    raise
                # Honouring Retry-After is a back-off the site asked for, not a guess at page timing.
                logger.info("%s: %s: rate limited, retrying in %.1fs", self.supplier, what, wait)
                await asyncio.sleep(wait)

    async def _fill_cart(self, lines: Sequence[OrderLine], expected: dict[str, int]) -> None:
        """Make the cart hold exactly ``lines`` (a cart left over by an earlier attempt is emptied first)."""
        if await self._call(self.cart_contents, "cart") == expected:
            return
        await self._call(self.clear_cart, "clear cart")
        for line in lines:
            await self._call(partial(self.add_to_cart, line.sku, line.quantity), f"add {line.sku}")
        contents = await self._call(self.cart_contents, "cart")
        if contents != expected:
            raise PortalCheckoutFailed(
                f"cart holds {contents} instead of {expected}; another session may be using the account",
                retryable=True,
            )

    async def place_order(self, po_reference: str, lines: Sequence[OrderLine | Line]) -> PortalResult:
        """Order ``lines`` under ``po_reference`` unless the site already has an order with that reference.

        Safe to call again after any failure, including a crash mid-checkout: it looks the reference up first,
        and looks it up again after a failed checkout before reporting failure. Calls for the same account are
        serialised within the process.

        Args:
            po_reference: our PO number; written into the site's customer reference field and searched.
            lines: what to order; several lines with the same SKU are added up.

        Returns:
            The order number and how it was obtained.

        Raises:
            ValueError: no lines, an empty reference, or a line without SKU / with a fractional quantity.
            PortalLoginFailed: credentials refused (not retryable).
            PortalProductNotFound: a SKU is not sold (not retryable).
            PortalCheckoutFailed: no order was placed and none is recorded (``retryable``: try again?).
            PortalRateLimited, PortalTimeout, PortalError: the site misbehaved; retry later, it is safe.
        """
        po_reference = po_reference.strip()
        if not po_reference:
            raise ValueError("po_reference is empty")
        order_lines = [line if isinstance(line, OrderLine) else OrderLine.from_line(line) for line in lines]
        if not order_lines:
            raise ValueError("no lines to order")
        expected: dict[str, int] = {}
        for line in order_lines:
            expected[line.sku] = expected.get(line.sku, 0) + line.quantity
        merged = [OrderLine(sku, qty) for sku, qty in expected.items()]

        async with account_lock(self.lock_key):
            existing = await self._call(partial(self.find_order, po_reference), "find order")
            if existing is not None:
                logger.info("%s: PO %s already ordered as %s", self.supplier, po_reference, existing)
                return PortalResult(po_reference, existing, "already_placed", self.supplier)

            submitted = False

            async def order_once() -> tuple[str, PlaceStatus]:
                nonlocal submitted
                if submitted:
                    # A previous submission bounced (session expired, 429). Never submit twice blindly:
                    # the first one may have been recorded.
                    found = await self.find_order(po_reference)
                    if found is not None:
                        return found, "recovered"
                    await self._fill_cart(merged, expected)
                submitted = True
                return await self.checkout(po_reference, expected), "placed"

            try:
                await self._fill_cart(merged, expected)
                number, status = await self._call(order_once, "checkout")
            except (PortalLoginFailed, PortalProductNotFound):
                raise
            except Exception as exc:
                if not submitted:
                    raise
                found = await self._look_up_after_failure(po_reference, exc)
                if found is None:
                    raise
                return PortalResult(po_reference, found, "recovered", self.supplier)
            return PortalResult(po_reference, number, status, self.supplier)

    async def _look_up_after_failure(self, po_reference: str, failure: Exception) -> str | None:
        """After a failed checkout, the order number if the site recorded the order anyway.

        Raises:
            Exception: ``failure`` itself when the look-up fails too (the outcome stays unknown; a retry of
                ``place_order`` looks the reference up before ordering).
        """
        logger.warning("%s: checkout of %s failed (%s); looking it up", self.supplier, po_reference, failure)
        try:
            found = await self._call(partial(self.find_order, po_reference), "find order after failure")
        except Exception as lookup_exc:
            logger.warning("%s: the look-up failed too: %s", self.supplier, lookup_exc)
            raise failure from None
        if found is not None:
            logger.info("%s: %s was recorded as %s despite the failure", self.supplier, po_reference, found)
        return found


__all__ = [
    "OrderLine",
    "PortalAccount",
    "PortalCheckoutFailed",
    "PortalError",
    "PortalLoginFailed",
    "PortalProductNotFound",
    "PortalRateLimited",
    "PortalResult",
    "PortalSessionExpired",
    "PortalTimeout",
    "Product",
    "SupplierPortal",
    "account_lock",
]
