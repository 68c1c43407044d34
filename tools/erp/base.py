"""The ERP adapter interface: what every ERP integration implements, and the idempotent ``place_order``.

A purchase request, once approved, becomes one purchase order per supplier in the company's ERP. The
order carries our idempotency key in the ERP's *reference* field (for Tryton
``purchase.purchase.reference``) and the ERP holds a unique index on it, so "find by reference, else create"
is safe to repeat from a retried job, a worker killed half-way, or several workers racing on the same
request.

Order states use Tryton's names, which other adapters map theirs onto: ``draft`` -> ``quotation`` ->
``confirmed`` -> ``processing`` -> ``done``, or ``cancelled``
(https://docs.tryton.org/projects/modules-purchase/en/latest/usage.html).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

logger = logging.getLogger(__name__)

#: A purchase order not yet sent to the supplier; ``place_order`` moves these on.
DRAFT: Final = "draft"
QUOTATION: Final = "quotation"
CONFIRMED: Final = "confirmed"
PROCESSING: Final = "processing"
DONE: Final = "done"
CANCELLED: Final = "cancelled"
#: States in which the order is placed with the supplier.
PLACED_STATES: Final = frozenset({CONFIRMED, PROCESSING, DONE})


class ErpError(Exception):
    """Base of every ERP adapter error.

    Attributes:
        message: one-line human explanation, safe to log and show to a buyer (never holds a password).
        detail: the ERP's own error text (may be long: a server traceback), for logs only.
        retryable: True when the same call may succeed later unchanged (the fulfilment job is retried later).
    """

    retryable: bool = False

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ErpAuthError(ErpError):
    """Login refused (wrong login or password) or the ERP user lacks an access right. Not retryable."""


class ErpUnavailable(ErpError):
    """The ERP cannot be reached or answered with a transient failure.

    Connection refused, timeouts, HTTP 5xx and 429, database lock/serialisation failures. Retryable; a
    timed-out write may nonetheless have been committed, which is why ``place_order`` always searches first.
    """

    retryable = True


class ErpNotFound(ErpError):
    """An unknown supplier code or product code (or a supplier with no address). Not retryable."""


class ErpDuplicate(ErpError):
    """An order with this reference already exists, or the reference is taken by another supplier's order.

    The first case is a unique-index violation, which ``place_order`` resolves itself. Not retryable.
    """


class ErpRejected(ErpError):
    """The ERP refused the data on business rules. Not retryable: the order must be corrected.

    E.g. a validation error, a unit of measure that is not the product's purchase unit, too many decimals.
    """


class ErpProtocolError(ErpError):
    """The ERP answered something this adapter does not understand. Not retryable.

    E.g. a bad URL or database name, an unexpected payload, an unexpected server-side exception.
    """


@dataclass(frozen=True, slots=True)
class ErpLine:
    """One order line as the ERP receives it.

    Attributes:
        product_code: our SKU, which is the ERP product's code.
        quantity: amount in ``unit``; must respect the unit's rounding in the ERP (whole numbers for pieces).
        unit_price: price of one ``unit``, in the company currency, exact decimal.
        unit: our unit of measure (``box``, ``piece``, ``kg``, ``litre``...); must be the product's purchase
            unit.
        description: line text; defaults to the ERP product's name.
    """

    product_code: str
    quantity: Decimal
    unit_price: Decimal
    unit: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ErpOrder:
    """A purchase order as known to the ERP.

    Attributes:
        id: the ERP's record id.
        number: the ERP's order number (``None`` until the ERP assigns it; Tryton does at quotation).
        reference: our idempotency key (e.g. ``PR-12-OFFICEMART``).
        state: one of the module-level state names (``draft``, ``quotation``, ``confirmed``...).
        supplier_code: our supplier code (the ERP party's code).
    """

    id: int
    number: str | None
    reference: str
    state: str
    supplier_code: str


class ErpAdapter(abc.ABC):
    """What an ERP integration implements; all methods are coroutines.

    Implementations raise only :class:`ErpError` subclasses. :meth:`place_order` is written once here on top
    of the primitives, so every ERP gets the same idempotency rules.
    """

    @abc.abstractmethod
    async def find_by_reference(self, reference: str) -> ErpOrder | None:
        """Return the purchase order carrying ``reference``, or ``None``."""

    @abc.abstractmethod
    async def create_purchase(
        self, reference: str, supplier_code: str, lines: Sequence[ErpLine], description: str
    ) -> ErpOrder:
        """Create a draft purchase order, atomically (header and lines, or nothing).

        Raises:
            ErpNotFound: unknown supplier or product code; nothing was written.
            ErpDuplicate: an order with ``reference`` already exists.
            ErpRejected: the ERP refused the data.
        """

    @abc.abstractmethod
    async def quote(self, order_id: int) -> None:
        """Move a draft order to quotation.

        Raises:
            ErpRejected: the order is not a draft (``place_order`` checks whether it moved on meanwhile).
        """

    @abc.abstractmethod
    async def confirm(self, order_id: int) -> None:
        """Confirm a quotation.

        Raises:
            ErpRejected: the order is not a quotation (``place_order`` checks whether it moved on meanwhile).
        """

    @abc.abstractmethod
    async def get_order(self, order_id: int) -> ErpOrder:
        """Read an order back (number and state)."""

    @abc.abstractmethod
    async def delete_draft(self, order_id: int) -> None:
        """Cancel and delete an order that was never confirmed (cleanup of a failed attempt)."""

    async def get_state(self, order_id: int) -> str:
        """Return the order's state name (see the module constants)."""
        return (await self.get_order(order_id)).state

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters own a client to close
        """Release connections."""

    async def place_order(
        self, reference: str, supplier_code: str, lines: Sequence[ErpLine], description: str
    ) -> ErpOrder:
        """Place a purchase order exactly once per ``reference`` and return it confirmed.

        Safe to call again after any failure, and concurrently from several workers:

        * an order already carrying ``reference`` is returned instead of creating another one; if it is still
          a draft or quotation (a previous attempt died half-way) it is quoted/confirmed first;
        * when two callers race, the ERP's unique index lets one create; the loser gets :class:`ErpDuplicate`,
          reads the winner's order and returns it (both may drive it on: a step refused because the order
          already moved on counts as done);
        * when this call created the order and a later step fails for good (not retryable), the draft is
          deleted, so a corrected request can be placed under the same reference.

        A cancelled order is returned as is (``state == "cancelled"``): a buyer cancelled it in the ERP, and
        re-creating it behind their back would be wrong. An existing order is taken as it stands: its lines are
        not compared with ``lines``, so a changed request needs a new reference (e.g. with a revision number).

        Args:
            reference: our idempotency key, unique per (purchase request, supplier).
            supplier_code: our supplier code.
            lines: at least one line.
            description: free text shown on the order (e.g. the request summary).

        Returns:
            The order, normally in a :data:`PLACED_STATES` state.

        Raises:
            ErpDuplicate: ``reference`` belongs to an order for another supplier.
            ErpError: any other failure; check ``retryable``.
        """
        if not lines:
            raise ErpRejected(f"order {reference} has no lines")
        order = await self.find_by_reference(reference)
        created = False
        if order is None:
            try:
                order = await self.create_purchase(reference, supplier_code, lines, description)
                created = True
            except ErpDuplicate:
                # Lost the race to a concurrent creator: its order is committed, take it.
                order = await self.find_by_reference(reference)
                if order is None:
                    raise ErpProtocolError(
                        f"ERP reported reference {reference} as duplicate but no order carries it"
                    ) from None
                logger.info("erp order %s created concurrently by another worker (id %s)", reference, order.id)
        if order.supplier_code != supplier_code:
            raise ErpDuplicate(
                f"reference {reference} is taken by ERP order {order.id} for supplier {order.supplier_code}, "
                f"not {supplier_code}"
            )
        try:
            return await self._advance(order)
        except ErpError as exc:
            if created and not exc.retryable:
                await self._discard(order, exc)
            raise

    async def _advance(self, order: ErpOrder) -> ErpOrder:
        """Drive a draft or quotation to confirmed and read it back; other states are returned unchanged."""
        if order.state not in (DRAFT, QUOTATION):
            return order
        state = order.state
        if state == DRAFT:
            state = await self._transition(order, self.quote, DRAFT, QUOTATION)
        if state == QUOTATION:
            state = await self._transition(order, self.confirm, QUOTATION, CONFIRMED)
        return await self.get_order(order.id)

    async def _transition(
        self, order: ErpOrder, step: Callable[[int], Awaitable[None]], source: str, target: str
    ) -> str:
        """Run one workflow step; return the state reached.

        ERPs refuse a transition whose source state is gone (Tryton: "You can not call quote on ..."), which
        is what a concurrent worker driving the same order causes. The order having moved on is success.
        """
        try:
            await step(order.id)
            return target
        except ErpRejected:
            current = await self.get_order(order.id)
            if current.state == source:
                raise
            logger.info("erp order %s moved on concurrently to %s", order.reference, current.state)
            return current.state

    async def _discard(self, order: ErpOrder, cause: ErpError) -> None:
        """Best-effort deletion of a draft this call created, after a permanent failure."""
        try:
            await self.delete_draft(order.id)
            logger.warning("erp order %s (id %s) deleted after: %s", order.reference, order.id, cause.message)
        except ErpError as exc:  # the original error is what the caller must see
            logger.error("could not delete failed erp order %s (id %s): %s", order.reference, order.id, exc)
