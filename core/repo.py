"""Data access shared by every layer: users, catalogue import and lookup, audit log.

All functions take an ``AsyncEngine`` (or connection) and return plain dataclasses; money is ``Decimal``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
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


def parse_catalog_csv(text: str) -> list[CatalogItem]:
    """Parse and validate a catalogue CSV (header ``sku,name,unit,unit_price,currency,supplier,category,aliases``).

    Aliases are separated by ``;``. Every row is checked before anything is returned.

    Raises:
        CatalogImportError: with every bad row's line number.
    """
    reader = csv.reader(io.StringIO(text))
    errors: list[tuple[int, str]] = []
    items: list[CatalogItem] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CatalogImportError([(1, "empty file")]) from None
    if header != CATALOG_HEADER:
        raise CatalogImportError([(1, f"header must be {','.join(CATALOG_HEADER)}")])
    seen: dict[str, int] = {}
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(CATALOG_HEADER):
            errors.append((n, f"expected {len(CATALOG_HEADER)} fields, got {len(row)}"))
            continue
        sku, name, unit, price, currency, supplier, category, aliases = (c.strip() for c in row)
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
            amount = Decimal(price)
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
                unit_price=Money(amount, currency),
                supplier=supplier.upper(),
                category=category,
                aliases=tuple(a.strip().lower() for a in aliases.split(";") if a.strip()),
            )
        )
    if errors:
        raise CatalogImportError(errors)
    return items


async def import_catalog(engine: AsyncEngine, path: Path | str) -> tuple[int, int]:
    """Import a catalogue CSV in one transaction: new SKUs are inserted, known SKUs updated.

    Returns:
        ``(inserted, updated)`` counts.

    Raises:
        CatalogImportError: bad rows (nothing is written).
        OSError: the file cannot be read.
    """
    items = parse_catalog_csv(Path(path).read_text(encoding="utf-8-sig"))
    async with engine.begin() as conn:
        known = set((await conn.execute(select(catalog_items.c.sku))).scalars())
        for it in items:
            values = {
                "sku": it.sku,
                "name": it.name,
                "unit": it.unit,
                "unit_price": it.unit_price.amount,
                "currency": it.unit_price.currency,
                "supplier": it.supplier,
                "category": it.category,
                "aliases": list(it.aliases),
                "active": True,
            }
            stmt = pg_insert(catalog_items).values(**values)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[catalog_items.c.sku], set_={**values, "updated_at": func.now()}
                )
            )
    updated = sum(1 for it in items if it.sku in known)
    return len(items) - updated, updated


async def load_catalog(engine: AsyncEngine | AsyncConnection) -> list[CatalogItem]:
    """All active catalogue items, by SKU."""
    q = select(catalog_items).where(catalog_items.c.active).order_by(catalog_items.c.sku)
    if isinstance(engine, AsyncConnection):
        rows = (await engine.execute(q)).all()
    else:
        async with engine.connect() as conn:
            rows = (await conn.execute(q)).all()
    return [
        CatalogItem(
            sku=r.sku,
            name=r.name,
            unit=r.unit,
            unit_price=Money(Decimal(r.unit_price), r.currency),
            supplier=r.supplier,
            category=r.category,
            aliases=tuple(r.aliases or ()),
        )
        for r in rows
    ]


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
