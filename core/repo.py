"""Data access shared by every layer: users, catalogue import and lookup, audit log.

All functions take an ``AsyncEngine`` (or connection) and return plain dataclasses; money is ``Decimal``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import audit_log, catalog_items, suppliers, users
from core.domain import CatalogItem, Money, Role

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CATALOG_HEADER = ["sku", "name", "unit", "unit_price", "currency", "supplier", "category", "aliases"]


@dataclass(frozen=True, slots=True)
class User:
    """A person who talks to the agent.

    Attributes:
        id: database id.
        phone: E.164 with ``+``.
        wa_id: E.164 digits, as WhatsApp sends them in ``from``.
        display_name: name shown to others.
        role: what they may do.
        site: their usual delivery site, if any.
        approval_limit: the largest request total they may approve, or ``None``.
    """

    id: int
    phone: str
    wa_id: str
    display_name: str
    role: Role
    site: str | None
    approval_limit: Money | None
    active: bool = True

    @classmethod
    def from_row(cls, r: Any) -> User:
        """Build from a ``users`` row."""
        limit = None
        if r.approval_limit is not None:
            limit = Money(Decimal(r.approval_limit), r.approval_currency or "USD")
        return cls(r.id, r.phone, r.wa_id, r.display_name, Role(r.role), r.site, limit, r.active)


def normalize_phone(phone: str) -> str:
    """Return ``phone`` in E.164 (``+`` and digits).

    Raises:
        ValueError: not a plausible E.164 number.
    """
    cleaned = re.sub(r"[\s\-().]", "", phone)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    if not E164.match(cleaned):
        raise ValueError(f"not an E.164 phone number: {phone!r}")
    return cleaned


async def add_user(
    engine: AsyncEngine,
    *,
    phone: str,
    name: str,
    role: Role | str,
    site: str | None = None,
    approval_limit: Decimal | None = None,
    currency: str = "USD",
) -> User:
    """Create or update (by phone) a user.

    Raises:
        ValueError: bad phone number, role, or a negative limit.
    """
    phone = normalize_phone(phone)
    role = Role(role)
    if approval_limit is not None and approval_limit < 0:
        raise ValueError("approval limit must not be negative")
    values = {
        "phone": phone,
        "wa_id": phone[1:],
        "display_name": name.strip() or phone,
        "role": role.value,
        "site": site,
        "approval_limit": approval_limit,
        "approval_currency": currency.upper() if approval_limit is not None else None,
    }
    stmt = (
        pg_insert(users)
        .values(**values)
        .on_conflict_do_update(index_elements=[users.c.phone], set_=values)
        .returning(users)
    )
    async with engine.begin() as conn:
        row = (await conn.execute(stmt)).one()
    return User.from_row(row)


async def list_users(engine: AsyncEngine) -> list[User]:
    """All users, by id."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(users).order_by(users.c.id))).all()
    return [User.from_row(r) for r in rows]


async def get_user(
    engine: AsyncEngine | AsyncConnection, *, wa_id: str | None = None, id: int | None = None
) -> User | None:
    """One active user by wa_id or id, or ``None``."""
    q = select(users).where(users.c.active)
    q = q.where(users.c.wa_id == wa_id) if wa_id is not None else q.where(users.c.id == id)
    if isinstance(engine, AsyncConnection):
        row = (await engine.execute(q)).first()
    else:
        async with engine.connect() as conn:
            row = (await conn.execute(q)).first()
    return User.from_row(row) if row else None


class CatalogImportError(ValueError):
    """A catalogue CSV had bad rows; nothing was written.

    Attributes:
        errors: ``(line number, message)`` pairs, line 1 being the header.
    """

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"line {n}: {m}" for n, m in errors))


#: Accepted header spellings (lower case, runs of non-alphanumerics read as ``_``) -> catalogue field. ERP
#: item-master exports name their columns in many ways; these are the common ones.
CATALOG_HEADER_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["sku", "item_code", "code", "item_no", "item_number", "itemcode", "product_code", "part_no",
                     "part_number", "internal_reference", "stock_code", "article_no"], "sku"),
    **dict.fromkeys(["name", "description", "item_name", "item_description", "product", "product_name"], "name"),
    **dict.fromkeys(["unit", "uom", "unit_of_measure", "units", "purchase_uom", "default_uom", "uom_code"], "unit"),
    **dict.fromkeys(["unit_price", "price", "unit_cost", "cost", "rate", "cost_price", "list_price",
                     "purchase_price"], "unit_price"),
    **dict.fromkeys(["currency", "curr", "ccy", "currency_code"], "currency"),
    **dict.fromkeys(["supplier", "vendor", "supplier_code", "vendor_code"], "supplier"),
    **dict.fromkeys(["category", "group", "item_group", "product_category", "class"], "category"),
    **dict.fromkeys(["aliases", "alias", "synonyms"], "aliases"),
}  # fmt: skip
_REQUIRED = ("sku", "name", "unit", "unit_price")
#: Supplier code given to rows of an export without a supplier column.
UNASSIGNED_SUPPLIER = "UNASSIGNED"


def _header_field(header: str) -> str | None:
    key = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return CATALOG_HEADER_SYNONYMS.get(key)


def _price(text: str) -> Decimal:
    """A price as ERP exports write it: ``1234.50``, ``1,234.50``, `` 12 ``; raises ``InvalidOperation``."""
    t = text.strip().replace(" ", "")
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")
    return Decimal(t)


def parse_catalog_csv(text: str, *, default_currency: str = "USD") -> list[CatalogItem]:
    """Parse and validate a catalogue CSV as our template or an ERP item-master export writes it.

    Columns are found by header (any order; see :data:`CATALOG_HEADER_SYNONYMS`): ``Item Code``/``code``/
    ``item_no`` -> sku, ``Description``/``item name`` -> name, ``UoM``/``unit of measure`` -> unit,
    ``Price``/``unit cost``/``rate`` -> unit_price are required; currency (else ``default_currency``),
    supplier (else :data:`UNASSIGNED_SUPPLIER`), category and aliases (``;``-separated) are optional.
    Every row is checked before anything is returned.

    Raises:
        CatalogImportError: with every bad row's line number (line 1 is the header).
    """
    reader = csv.reader(io.StringIO(text))
    errors: list[tuple[int, str]] = []
    items: list[CatalogItem] = []
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogImportError([(1, "empty file")]) from None
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        fld = _header_field(h)
        if fld is not None and fld not in columns:
            columns[fld] = i
    missing = [f for f in _REQUIRED if f not in columns]
    if missing:
        raise CatalogImportError(
            [(1, f"missing column(s) {', '.join(missing)}; header must name sku, name, unit and unit_price "
                 f"(e.g. {','.join(CATALOG_HEADER)})")]
        )  # fmt: skip
    seen: dict[str, int] = {}
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            errors.append((n, f"expected {len(header)} fields, got {len(row)}"))
            continue

        def cell(fld: str, row: list[str] = row) -> str:
            return row[columns[fld]].strip() if fld in columns else ""

        sku, name, unit, price = cell("sku"), cell("name"), cell("unit"), cell("unit_price")
        currency = cell("currency") if "currency" in columns else default_currency
        supplier = cell("supplier") if "supplier" in columns else UNASSIGNED_SUPPLIER
        problems = []
        if not sku:
            problems.append("sku is empty")
        if not name:
            problems.append("name is empty")
        if not unit:
            problems.append("unit is empty")
        if not supplier:
            problems.append("supplier is empty")
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            problems.append(f"currency {currency!r} is not an ISO 4217 code")
        amount = None
        try:
            amount = _price(price)
            if not amount.is_finite() or amount < 0:
                problems.append(f"unit_price {price!r} must be a non-negative number")
        except InvalidOperation:
            problems.append(f"unit_price {price!r} is not a number")
        if sku in seen:
            problems.append(f"sku {sku} repeats line {seen[sku]}")
        if problems:
            errors.append((n, "; ".join(problems)))
            continue
        seen[sku] = n
        assert amount is not None
        items.append(
            CatalogItem(
                sku=sku,
                name=name,
                unit=unit.lower(),
                unit_price=Money(amount, currency.upper()),
                supplier=supplier.upper(),
                category=cell("category"),
                aliases=tuple(a.strip().lower() for a in cell("aliases").split(";") if a.strip()),
            )
        )
    if errors:
        raise CatalogImportError(errors)
    return items


ItemVectors = Callable[[Sequence[CatalogItem]], Sequence[Sequence[float] | None]]
"""Computes one embedding per item (in order), or ``None`` for an item that gets none."""


async def upsert_catalog(
    engine: AsyncEngine, items: Sequence[CatalogItem], *, vectors: Sequence[Sequence[float] | None] | None = None
) -> tuple[int, int]:
    """Write catalogue items in one transaction: new SKUs are inserted, known SKUs updated.

    Args:
        engine: the database.
        items: validated items.
        vectors: one embedding per item (``core.db.EMBEDDING_DIM`` floats) or ``None``; omitted, stored
            embeddings are cleared for updated items (their text may have changed).

    Returns:
        ``(inserted, updated)`` counts.
    """
    if vectors is not None and len(vectors) != len(items):
        raise ValueError(f"{len(vectors)} vectors for {len(items)} items")
    async with engine.begin() as conn:
        known = set((await conn.execute(select(catalog_items.c.sku))).scalars())
        rows = [
            {
                "sku": it.sku,
                "name": it.name,
                "unit": it.unit,
                "unit_price": it.unit_price.amount,
                "currency": it.unit_price.currency,
                "supplier": it.supplier,
                "category": it.category,
                "aliases": list(it.aliases),
                "embedding": None if vectors is None or vectors[i] is None else list(vectors[i]),  # type: ignore[arg-type]
                "active": True,
            }
            for i, it in enumerate(items)
        ]
        if rows:
            stmt = pg_insert(catalog_items)
            stmt = stmt.on_conflict_do_update(
                index_elements=[catalog_items.c.sku],
                set_={**{k: stmt.excluded[k] for k in rows[0] if k != "sku"}, "updated_at": func.now()},
            )
            for start in range(0, len(rows), 1000):  # executemany, a thousand items per round
                await conn.execute(stmt, rows[start : start + 1000])
    updated = sum(1 for it in items if it.sku in known)
    return len(items) - updated, updated


async def import_catalog(
    engine: AsyncEngine, path: Path | str, *, embed: ItemVectors | None = None, default_currency: str = "USD"
) -> tuple[int, int]:
    """Import a catalogue CSV (our template or an ERP export) in one transaction.

    Args:
        engine: the database.
        path: the CSV file (UTF-8, with or without BOM).
        embed: computes item embeddings to store (``tools.catalog.store.item_vectors``); ``None``: none.
        default_currency: currency of rows when the file has no currency column.

    Returns:
        ``(inserted, updated)`` counts.

    Raises:
        CatalogImportError: bad rows (nothing is written).
        OSError: the file cannot be read.
    """
    items = parse_catalog_csv(Path(path).read_text(encoding="utf-8-sig"), default_currency=default_currency)
    vectors = embed(items) if embed is not None and items else None
    return await upsert_catalog(engine, items, vectors=vectors)


async def load_catalog(engine: AsyncEngine | AsyncConnection) -> list[CatalogItem]:
    """All active catalogue items, by SKU."""
    q = select(catalog_items).where(catalog_items.c.active).order_by(catalog_items.c.sku)
    if isinstance(engine, AsyncConnection):
        rows = (await engine.execute(q)).all()
    else:
        async with engine.connect() as conn:
            rows = (await conn.execute(q)).all()
    return [item_from_row(r) for r in rows]


def item_from_row(r: Any) -> CatalogItem:
    """A :class:`CatalogItem` from a ``catalog_items`` row (price in the row's currency)."""
    return CatalogItem(
        sku=r.sku,
        name=r.name,
        unit=r.unit,
        unit_price=Money(Decimal(r.unit_price), r.currency),
        supplier=r.supplier,
        category=r.category,
        aliases=tuple(r.aliases or ()),
    )


async def audit(
    conn: AsyncConnection,
    action: str,
    *,
    actor_id: int | None = None,
    request_id: int | None = None,
    inbox_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit-log entry inside the caller's transaction."""
    await conn.execute(
        insert(audit_log).values(
            action=action, actor_id=actor_id, request_id=request_id, inbox_id=inbox_id, details=details or {}
        )
    )


async def upsert_suppliers(engine: AsyncEngine, rows: Sequence[dict[str, Any]]) -> None:
    """Create or update supplier rows (``code, name, channel, portal, url, account``)."""
    async with engine.begin() as conn:
        for r in rows:
            stmt = pg_insert(suppliers).values(**r)
            await conn.execute(stmt.on_conflict_do_update(index_elements=[suppliers.c.code], set_=r))
