"""Reference supplier shop, records: products, misbehaviour switches, sessions and orders (no I/O but CSV)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from core.domain import CatalogItem

#: Supplier code of the website supplier in the demo catalogue.
DEFAULT_SUPPLIER = "TONERWEB"
#: Most units of one article a cart line may hold.
MAX_QUANTITY = 999
#: Longest PO reference the checkout accepts.
MAX_PO_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ShopProduct:
    """One product the shop sells.

    Attributes:
        sku: the shop's article number (the catalogue SKU).
        name: display name.
        unit: unit of sale (``piece``, ``box``...).
        unit_price: price of one unit, in ``currency``.
        currency: ISO 4217 code.
    """

    sku: str
    name: str
    unit: str
    unit_price: Decimal
    currency: str = "USD"

    @classmethod
    def from_catalog_item(cls, item: CatalogItem) -> ShopProduct:
        """Build from a catalogue row of :mod:`core.domain`."""
        return cls(item.sku, item.name, item.unit, item.unit_price.amount, item.unit_price.currency)


def load_products(csv_path: str | Path, supplier: str = DEFAULT_SUPPLIER) -> list[ShopProduct]:
    """Read the products of one supplier from a catalogue CSV.

    Args:
        csv_path: file with the header ``sku,name,unit,unit_price,currency,supplier,...``.
        supplier: supplier code whose rows are kept (case-insensitive).

    Returns:
        Products in file order; a SKU repeated in the file is kept once (first row wins).

    Raises:
        OSError: the file cannot be read.
        ValueError: a price is not a decimal number.
    """
    products: dict[str, ShopProduct] = {}
    with Path(csv_path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if (row.get("supplier") or "").strip().upper() != supplier.upper():
                continue
            sku = row["sku"].strip()
            if sku in products:
                continue
            try:
                price = Decimal(row["unit_price"].strip())
            except InvalidOperation as exc:
                raise ValueError(f"bad unit_price for {sku}: {row['unit_price']!r}") from exc
            products[sku] = ShopProduct(
                sku=sku,
                name=row["name"].strip(),
                unit=(row.get("unit") or "piece").strip(),
                unit_price=price,
                currency=(row.get("currency") or "USD").strip().upper(),
            )
    return list(products.values())


@dataclass(slots=True)
class Switches:
    """Misbehaviours a test can turn on. All off by default.

    Attributes:
        slow_ms: delay added to every response, in milliseconds.
        rate_limit_next: the next N requests are answered 429.
        rate_limit_probability: each request is answered 429 with this probability (0..1).
        rate_limit_retry_after: seconds sent in the 429's ``Retry-After`` header.
        session_expiry: the next N checkout submissions find their session expired and redirect to the login
            page (the cart is kept, as it belongs to the account).
        interstitial: GET pages answer a "checking your browser" page until the browser runs its script.
        interstitial_delay_ms: how long that script waits before setting its cookie and reloading.
        fail_after_record: the next N checkouts record the order and then fail.
        fail_after_record_mode: ``"500"`` answers an error page; ``"drop"`` cuts the connection mid-response.
        unique_po: refuse a checkout whose PO reference the account already used (some B2B shops do).
    """

    slow_ms: int = 0
    rate_limit_next: int = 0
    rate_limit_probability: float = 0.0
    rate_limit_retry_after: int = 1
    session_expiry: int = 0
    interstitial: bool = False
    interstitial_delay_ms: int = 500
    fail_after_record: int = 0
    fail_after_record_mode: Literal["500", "drop"] = "500"
    unique_po: bool = False

    def apply(self, changes: Mapping[str, Any]) -> None:
        """Change switches from a JSON-like mapping; unnamed switches keep their value.

        Accepted forms (``false``/``0``/``null`` turn a switch off)::

            {"slow": true | <ms>}                     # true means 1500 ms
            {"rate_limit": <n> | {"next": n, "probability": p, "retry_after": s}}
            {"session_expiry": true | <n>}            # true means once
            {"interstitial": true | {"delay_ms": ms}}
            {"fail_after_record": true | "500" | "drop" | {"mode": "500"|"drop", "count": n}}
            {"unique_po": true}

        Raises:
            ValueError: unknown switch or a value of the wrong shape.
        """
        for name, value in changes.items():
            if name == "slow":
                self.slow_ms = 1500 if value is True else _count(value, name)
            elif name == "rate_limit":
                if isinstance(value, Mapping):
                    self.rate_limit_next = _count(value.get("next", 0), "rate_limit.next")
                    self.rate_limit_probability = float(value.get("probability", 0.0))
                    if not 0.0 <= self.rate_limit_probability <= 1.0:
                        raise ValueError("rate_limit.probability must be within 0..1")
                    retry_after = value.get("retry_after", 1)
                    self.rate_limit_retry_after = _count(retry_after, "rate_limit.retry_after")
                else:
                    self.rate_limit_next = 1 if value is True else _count(value, name)
                    self.rate_limit_probability = 0.0
            elif name == "session_expiry":
                self.session_expiry = 1 if value is True else _count(value, name)
            elif name == "interstitial":
                if isinstance(value, Mapping):
                    self.interstitial = True
                    self.interstitial_delay_ms = _count(value.get("delay_ms", 500), "interstitial.delay_ms")
                else:
                    self.interstitial = bool(value)
            elif name == "fail_after_record":
                mode: Any = "500"
                count: Any = 1
                if isinstance(value, Mapping):
                    mode, count = value.get("mode", "500"), value.get("count", 1)
                elif isinstance(value, str):
                    mode = value
                elif value is True:
                    pass
                else:
                    count = value
                if mode not in ("500", "drop"):
                    raise ValueError("fail_after_record mode must be '500' or 'drop'")
                self.fail_after_record = _count(count, "fail_after_record.count")
                self.fail_after_record_mode = mode
            elif name == "unique_po":
                self.unique_po = bool(value)
            else:
                raise ValueError(f"unknown switch {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form of every switch."""
        return asdict(self)


def _count(value: Any, name: str) -> int:
    """A non-negative int from JSON (``null``/``false`` -> 0)."""
    if value is None or value is False:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return int(value)


@dataclass(slots=True)
class Session:
    """A signed-in browser: its account, the CSRF token of its forms, when it ends (``time.monotonic``)."""

    email: str
    csrf_token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class ShopOrderLine:
    """A line of a recorded order (prices frozen at checkout)."""

    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str

    @property
    def total(self) -> Decimal:
        """Quantity times unit price, rounded to cents."""
        return (self.unit_price * self.quantity).quantize(Decimal("0.01"))


@dataclass(slots=True)
class ShopOrder:
    """An order the shop recorded.

    Attributes:
        number: the shop's order number (``SO-10001``...).
        account: email of the account that placed it.
        po_reference: the customer PO reference typed at checkout.
        lines: what was in the cart.
        created_at: when it was recorded (UTC).
        notes: delivery notes typed at checkout.
        status: always ``received`` in the sandbox.
    """

    number: str
    account: str
    po_reference: str
    lines: list[ShopOrderLine]
    created_at: datetime
    notes: str = ""
    status: str = "received"

    @property
    def currency(self) -> str:
        """Currency of the order (of its first line)."""
        return self.lines[0].currency if self.lines else "USD"

    @property
    def total(self) -> Decimal:
        """Sum of the line totals."""
        return sum((line.total for line in self.lines), Decimal("0.00"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (amounts as strings) for the admin API."""
        return {
            "number": self.number,
            "account": self.account,
            "po_reference": self.po_reference,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "notes": self.notes,
            "currency": self.currency,
            "total": str(self.total),
            "lines": [
                {
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": str(line.unit_price),
                    "currency": line.currency,
                }
                for line in self.lines
            ],
        }


class DuplicatePoReference(Exception):
    """Checkout refused: the account already has an order with this PO reference (``unique_po`` switch)."""

    def __init__(self, existing: ShopOrder) -> None:
        super().__init__(existing.number)
        self.existing = existing
