"""Fulfilment records: states, references, the ``fulfilments``/``suppliers`` rows and an attempt's outcome.

One *fulfilment* per (purchase request, supplier) carries our PO reference, its idempotency key
(``PR-12-OFFICEMART``), which is written into the destination's order (ERP: ``purchase.purchase.reference``;
website: the customer's order reference) and searched there before anything is ordered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from core.domain import Line, plain
from tools.fulfilment.replies import say
from tools.requests import number_of

if TYPE_CHECKING:
    from tools.requests import RequestView

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

#: ``send(provider, key_prefix, messages)``: the outbox (``server.worker.outbox.send_all`` bound to engine and channels).
Notify = Callable[[str, str, list[dict[str, Any]]], Awaitable[Any]]


def po_reference(request_id: int, supplier: str) -> str:
    """Our PO reference and idempotency key of one fulfilment: ``PR-12-OFFICEMART``."""
    return f"{number_of(request_id)}-{supplier}"


def job_id(fulfilment_id: int, retries: int) -> str:
    """Stable job id of a fulfilment's round (``retries`` Retry presses so far): ``fulfil:7:0``."""
    return f"fulfil:{fulfilment_id}:{retries}"


class FulfilmentError(Exception):
    """The order cannot be placed as configured or as approved (not retryable).

    E.g. no ``ERP_URL``, a website supplier without URL/account/password, an unknown page object, a line
    without SKU or price, a fractional quantity for a website. The message is shown to the buyer.
    """

    retryable = False


class RetryLater(Exception):
    """Run this fulfilment's job again later (the worker turns it into its framework's retry, e.g. ``arq.Retry``).

    Raised for a retryable failure with tries left, a fulfilment or website account busy in another worker,
    or a transient failure of our own database, Redis or a WhatsApp send. Tools import no worker framework.

    Attributes:
        defer: seconds to wait before the next try (jittered backoff, or the destination's ``Retry-After``).
    """

    def __init__(self, defer: float) -> None:
        super().__init__(f"retry in {defer:.3f} s")
        self.defer = defer


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
        """``the ERP`` or ``the supplier's website``, for messages (``prompts/replies.toml``)."""
        return say("fulfil_where_erp" if self.channel == ERP else "fulfil_where_website")

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
        """The job id to enqueue when ``status == "queued"``."""
        if self.status != "queued" or self.fulfilment is None:
            return None
        return job_id(self.fulfilment.id, self.fulfilment.retries)


def line_snapshot(position: int, line: Line) -> dict[str, Any]:
    """A request line as a fulfilment carries it (JSON; amounts as strings), see :attr:`Fulfilment.lines`."""
    return {
        "position": position,
        "sku": line.sku,
        "description": line.description,
        "quantity": plain(line.quantity),
        "unit": line.unit,
        "unit_price": plain(line.unit_price.amount) if line.unit_price else None,
        "currency": line.unit_price.currency if line.unit_price else None,
    }


def order_description(f: Fulfilment, req: RequestView | None) -> str:
    """The destination order's description: ``PR-12 for Nairobi, needed by 2026-11-20, requested by Amina``."""
    if req is None:
        return f.reference
    parts = [f"{req.number} for {req.site or 'no site'}"]
    if req.needed_by:
        parts.append(f"needed by {req.needed_by.isoformat()}")
    parts.append(f"requested by {req.requester.display_name}")
    return ", ".join(parts)
