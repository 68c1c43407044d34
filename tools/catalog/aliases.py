"""Learned aliases: the words a person used for an item when they picked it, kept per company (per database).

When a person answers "which one?" by picking an item, the dialogue calls :func:`learn` with their phrase; the
next index (``CatalogCache`` reloads when the table changes) treats the phrase as one more key of the item, so
the same words match it outright. Admins see and undo them with ``procure catalog aliases list|remove``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import catalog_aliases, catalog_items
from tools.catalog.text import tokens

#: Longest phrase kept, in characters (the column's size).
PHRASE_MAX = 200


@dataclass(frozen=True, slots=True)
class Alias:
    """One learned alias.

    Attributes:
        id: row id (what ``procure catalog aliases remove`` takes).
        phrase: normalised words (lower case, singular, no stopwords).
        sku: the item.
        created_by: ``users.id`` of the person whose choice taught it, or ``None``.
        created_at: when it was first learned (UTC).
        uses: how many times people confirmed it.
    """

    id: int
    phrase: str
    sku: str
    created_by: int | None
    created_at: datetime
    uses: int


def normalise_phrase(phrase: str) -> str:
    """The stored form of a phrase: the index's tokens joined by spaces (``"Blue Biros!"`` -> ``"blue biro"``)."""
    return " ".join(tokens(phrase))[:PHRASE_MAX].strip()


async def learn(engine: AsyncEngine, phrase: str, sku: str, user_id: int | None) -> None:
    """Remember that ``phrase`` names the item ``sku`` (insert, or count one more use).

    Args:
        engine: the company's database.
        phrase: the person's words for the item (any case or plural).
        sku: the item they picked.
        user_id: ``users.id`` of the person, or ``None``.

    Raises:
        ValueError: the phrase has no words, or no active item has this SKU.
    """
    norm = normalise_phrase(phrase)
    if not norm:
        raise ValueError(f"phrase {phrase!r} has no words to learn")
    async with engine.begin() as conn:
        known = (
            await conn.execute(select(catalog_items.c.sku).where(catalog_items.c.sku == sku, catalog_items.c.active))
        ).scalar_one_or_none()
        if known is None:
            raise ValueError(f"no active catalogue item {sku}")
        stmt = pg_insert(catalog_aliases).values(phrase=norm, sku=sku, created_by=user_id, uses=1)
        await conn.execute(
            stmt.on_conflict_do_update(
                constraint="uq_catalog_aliases_phrase", set_={"uses": catalog_aliases.c.uses + 1}
            )
        )


async def list_aliases(engine: AsyncEngine | AsyncConnection, sku: str | None = None) -> list[Alias]:
    """Learned aliases, newest first (only those of ``sku`` when given)."""
    q = select(catalog_aliases).order_by(catalog_aliases.c.id.desc())
    if sku is not None:
        q = q.where(catalog_aliases.c.sku == sku)
    if isinstance(engine, AsyncConnection):
        rows = (await engine.execute(q)).all()
    else:
        async with engine.connect() as conn:
            rows = (await conn.execute(q)).all()
    return [Alias(r.id, r.phrase, r.sku, r.created_by, r.created_at, r.uses) for r in rows]


async def remove_alias(engine: AsyncEngine, alias_id: int) -> bool:
    """Forget one learned alias; returns ``False`` when no alias has this id."""
    async with engine.begin() as conn:
        result = await conn.execute(delete(catalog_aliases).where(catalog_aliases.c.id == alias_id))
    return bool(result.rowcount)


async def load_aliases(conn: AsyncConnection) -> dict[str, list[str]]:
    """Learned phrases by SKU (lower case), for :class:`~tools.catalog.index.CatalogIndex`'s ``aliases``."""
    out: dict[str, list[str]] = {}
    for r in (await conn.execute(select(catalog_aliases.c.sku, catalog_aliases.c.phrase))).all():
        out.setdefault(r.sku.lower(), []).append(r.phrase)
    return out
