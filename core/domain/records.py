"""Domain objects: roles, request statuses, money, catalogue items, purchase-request lines, extraction results.

Money is always ``Decimal`` with an ISO 4217 currency code; floats never carry amounts. Their JSON forms, as the
graphs checkpoint them, are in :mod:`core.domain.state`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.domain.state import LineDict


class Role(enum.StrEnum):
    """What a user may do. Buyers and admins see everything; approvers also decide."""

    REQUESTER = "requester"
    APPROVER = "approver"
    BUYER = "buyer"
    ADMIN = "admin"


class RequestStatus(enum.StrEnum):
    """Life cycle of a purchase request."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ORDERED = "ordered"


def plain(d: Decimal) -> str:
    """A Decimal as plain digits without exponent or trailing zeros (``Decimal("3E+1")`` -> ``"30"``)."""
    return format(d.normalize(), "f")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency.

    Attributes:
        amount: exact decimal amount, in the currency's major unit (e.g. dollars).
        currency: ISO 4217 code, upper case (``"USD"``).
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal, never a float")
        object.__setattr__(self, "currency", self.currency.upper())

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * Decimal(factor), self.currency)

    def quantize(self) -> Money:
        """Return the amount rounded half-up to cents."""
        return Money(self.amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), self.currency)

    def __str__(self) -> str:
        return f"{self.currency} {self.quantize().amount:,.2f}"


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One catalogue row, as imported from CSV (``sku,name,unit,unit_price,currency,supplier,category,aliases``).

    Attributes:
        sku: the stock-keeping unit, unique.
        name: human name; may state a pack size, e.g. ``"(box of 5 reams)"``.
        unit: the unit of measure (UoM) the item is priced and ordered in (``box``, ``piece``, ``litre``...).
        unit_price: price of one ``unit``.
        supplier: supplier code (e.g. ``OFFICEMART``).
        category: free category label.
        aliases: other names people use (lower-case), including other languages.
    """

    sku: str
    name: str
    unit: str
    unit_price: Money
    supplier: str
    category: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(slots=True)
class Line:
    """A purchase-request line.

    Attributes:
        description: what the person asked for, or the catalogue name once matched.
        quantity: amount in ``unit`` (Decimal; whole numbers for countable units).
        unit: unit of measure of ``quantity`` (the catalogue unit once converted).
        sku: matched catalogue SKU, or ``None`` for a free-text item.
        unit_price: catalogue price per unit, when matched.
        confidence: 0..1 how sure the extractor is of the match.
        candidates: SKUs still in question when the match is ambiguous.
        asked: the amount as the person said it when it was converted to the catalogue unit (``"96 bottle"``),
            shown beside the converted quantity; ``None`` when no conversion happened.
        proposal: for a line whose amount could not be converted exactly, the catalogue quantity offered
            instead (e.g. ``3`` packs of 24 for 50 bottles), as a string; ``None`` otherwise.
    """

    description: str
    quantity: Decimal
    unit: str
    sku: str | None = None
    unit_price: Money | None = None
    confidence: float = 1.0
    candidates: list[str] = field(default_factory=list)
    asked: str | None = None
    proposal: str | None = None

    @property
    def total(self) -> Money | None:
        """Quantity times unit price, or ``None`` for an unpriced line."""
        return None if self.unit_price is None else (self.unit_price * self.quantity).quantize()

    def to_dict(self) -> LineDict:
        """JSON-safe form (amounts as strings) for state, API and audit."""
        return {
            "description": self.description,
            "quantity": plain(self.quantity),
            "unit": self.unit,
            "sku": self.sku,
            "unit_price": plain(self.unit_price.amount) if self.unit_price else None,
            "currency": self.unit_price.currency if self.unit_price else None,
            "confidence": round(self.confidence, 3),
            "candidates": list(self.candidates),
            "asked": self.asked,
            "proposal": self.proposal,
        }

    @classmethod
    def from_dict(cls, d: LineDict | dict[str, Any]) -> Line:
        """Inverse of :meth:`to_dict` (also reads older stored lines without ``asked``/``proposal``).

        Raises:
            KeyError: ``description``, ``quantity`` or ``unit`` is missing.
        """
        price = None
        if d.get("unit_price") is not None:
            price = Money(Decimal(str(d["unit_price"])), d.get("currency") or "USD")
        return cls(
            description=d["description"],
            quantity=Decimal(str(d["quantity"])),
            unit=d["unit"],
            sku=d.get("sku"),
            unit_price=price,
            confidence=float(d.get("confidence", 1.0)),
            candidates=list(d.get("candidates") or []),
            asked=d.get("asked"),
            proposal=d.get("proposal"),
        )


@dataclass(slots=True)
class ExtractionResult:
    """What the deterministic extractor read from one or more messages.

    Attributes:
        lines: lines found, each with its confidence (ambiguous ones carry ``candidates``).
        site: a site named in the text, canonical form, or ``None``.
        needed_by: a date named in the text, resolved against the message time, or ``None``.
        unresolved: text fragments that look like requests but matched nothing (for the LLM or a question).
    """

    lines: list[Line] = field(default_factory=list)
    site: str | None = None
    needed_by: date | None = None
    unresolved: list[str] = field(default_factory=list)

