"""Catalogue storage around the index: embeddings at import, loading the index, pgvector search, ERP pull.

Item vectors are computed once, when items are imported, and stored in ``catalog_items.embedding`` (pgvector,
HNSW cosine index from migration 0003). A process builds its :class:`CatalogIndex` from the stored vectors; only
queries are embedded at run time. For catalogues too large to hold in memory, :func:`nearest` asks PostgreSQL
(``ORDER BY embedding <=> :q LIMIT k``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import EMBEDDING_DIM, catalog_items
from core.domain import CatalogItem, Money
from core.repo import UNASSIGNED_SUPPLIER, CatalogImportError, item_from_row, upsert_catalog
from tools.catalog.aliases import load_aliases
from tools.catalog.embeddings import Embedder, item_text
from tools.catalog.index import CatalogIndex

log = logging.getLogger(__name__)

#: Items embedded per call at import (bounded memory, progress in the log).
EMBED_BATCH = 256


def item_vectors(embedder: Embedder, items: Sequence[CatalogItem]) -> list[list[float]]:
    """Embed catalogue items (name, aliases, category) for storage.

    Returns:
        One list of ``core.db.EMBEDDING_DIM`` floats per item, in order.

    Raises:
        ValueError: the model's dimension is not ``EMBEDDING_DIM`` (the column cannot store it).
    """
    if embedder.dim != EMBEDDING_DIM:
        raise ValueError(f"model {embedder.name} gives {embedder.dim} dimensions; the column holds {EMBEDDING_DIM}")
    out: list[list[float]] = []
    texts = [item_text(i) for i in items]
    for start in range(0, len(texts), EMBED_BATCH):
        out.extend(embedder.passages(texts[start : start + EMBED_BATCH]).tolist())
        log.info("embedded %d/%d catalogue items", min(start + EMBED_BATCH, len(texts)), len(texts))
    return out


async def import_items(engine: AsyncEngine, items: Sequence[CatalogItem], embedder: Embedder | None) -> tuple[int, int]:
    """Store items with their embeddings (none without a model), in one transaction.

    Returns:
        ``(inserted, updated)`` counts.
    """
    vectors = item_vectors(embedder, items) if embedder is not None and items else None
    return await upsert_catalog(engine, items, vectors=vectors)


async def load_index(conn: AsyncConnection | AsyncEngine, embedder: Embedder | None) -> CatalogIndex:
    """Build the index from the active items, their stored vectors and the learned aliases.

    Items stored without a vector (imported before a model was configured) are embedded here, in memory only.
    """
    q = select(catalog_items).where(catalog_items.c.active).order_by(catalog_items.c.sku)
    if isinstance(conn, AsyncEngine):
        async with conn.connect() as c:
            rows = (await c.execute(q)).all()
            learned = await load_aliases(c)
    else:
        rows = (await conn.execute(q)).all()
        learned = await load_aliases(conn)
    items = [item_from_row(r) for r in rows]
    vectors = None
    if embedder is not None and items:
        vectors = np.zeros((len(items), embedder.dim), dtype=np.float32)
        missing = []
        for i, r in enumerate(rows):
            if r.embedding is not None and len(r.embedding) == embedder.dim:
                vectors[i] = np.asarray(r.embedding, dtype=np.float32)
            else:
                missing.append(i)
        if missing:
            log.warning("%d catalogue items have no stored embedding; embedding them in memory", len(missing))
            texts = [item_text(items[i]) for i in missing]
            vectors[missing] = embedder.passages(texts)
    return CatalogIndex(items, embed=embedder, item_vectors=vectors, aliases=learned)


async def nearest(
    engine: AsyncEngine | AsyncConnection, vector: Sequence[float], limit: int = 20
) -> list[tuple[str, float]]:
    """The active items nearest to a vector by cosine, through pgvector's HNSW index.

    Args:
        engine: the database.
        vector: a query vector of ``EMBEDDING_DIM`` floats.
        limit: how many items.

    Returns:
        ``(sku, cosine similarity)`` pairs, nearest first (items without a stored vector are skipped).
    """
    dist = catalog_items.c.embedding.cosine_distance(list(vector))
    q = (
        select(catalog_items.c.sku, dist.label("d"))
        .where(catalog_items.c.active, catalog_items.c.embedding.is_not(None))
        .order_by(dist)
        .limit(limit)
    )
    if isinstance(engine, AsyncConnection):
        rows = (await engine.execute(q)).all()
    else:
        async with engine.connect() as conn:
            rows = (await conn.execute(q)).all()
    return [(r.sku, 1.0 - float(r.d)) for r in rows]


async def items_from_erp(client: Any, *, currency: str) -> list[CatalogItem]:
    """Read the purchasable products of Tryton as catalogue items.

    Reads ``product.product`` (code, name, purchase or default UoM, cost and list price) and the products'
    ``purchase.product_supplier`` links with their ``purchase.product_supplier.price`` rows: the item's supplier
    is the first supplier's party code and its price that supplier's price for the smallest quantity; without a
    supplier price, the cost price, then the list price. UoM symbols become our units (``u`` -> ``piece``).

    Args:
        client: a ``tools.erp.tryton.TrytonClient`` (logs in on first call).
        currency: currency of cost and list prices (the company's); supplier prices carry their own.

    Returns:
        Items with a code, in code order (supplier ``UNASSIGNED`` when a product has none).

    Raises:
        CatalogImportError: products without a unit or a price, with their codes (nothing is imported).
    """
    from tools.erp.tryton import canonical_unit

    rows = await client.model(
        "product.product",
        "search_read",
        [["code", "!=", None], ["purchasable", "=", True]],
        0,
        None,
        [["code", "ASC"]],
        ["code", "name", "template", "default_uom.symbol", "purchase_uom.symbol", "cost_price", "list_price"],
    )
    templates = sorted({int(r["template"]) for r in rows if r.get("template") is not None})
    links = await client.model(
        "purchase.product_supplier",
        "search_read",
        [["template", "in", templates]],
        0,
        None,
        [["sequence", "ASC"], ["id", "ASC"]],
        ["template", "party.code", "currency.code"],
    )
    supplier_of: dict[int, dict[str, Any]] = {}
    for link in links:
        supplier_of.setdefault(int(link["template"]), link)
    prices = await client.model(
        "purchase.product_supplier.price",
        "search_read",
        [["product_supplier", "in", [int(link["id"]) for link in supplier_of.values()]]],
        0,
        None,
        [["quantity", "ASC"], ["id", "ASC"]],
        ["product_supplier", "unit_price"],
    )
    price_of: dict[int, Decimal] = {}
    for p in prices:
        price_of.setdefault(int(p["product_supplier"]), Decimal(str(p["unit_price"])))
    items: list[CatalogItem] = []
    errors: list[tuple[int, str]] = []
    for n, row in enumerate(rows, start=1):
        code = str(row.get("code") or "").strip()
        if not code:
            continue
        uom = (row.get("purchase_uom.") or {}).get("symbol") or (row.get("default_uom.") or {}).get("symbol")
        link = supplier_of.get(int(row["template"])) if row.get("template") is not None else None
        price, cur = None, currency
        if link is not None and int(link["id"]) in price_of:
            price = price_of[int(link["id"])]
            cur = (link.get("currency.") or {}).get("code") or currency
        else:
            for key in ("cost_price", "list_price"):
                if row.get(key):
                    price = Decimal(str(row[key]))
                    break
        if not uom or price is None:
            errors.append((n, f"product {code}: no unit or price"))
            continue
        supplier = str((link.get("party.") or {}).get("code") or "") if link is not None else ""
        items.append(
            CatalogItem(
                sku=code,
                name=str(row.get("name") or code),
                unit=canonical_unit(str(uom)),
                unit_price=Money(price, cur),
                supplier=supplier.upper() or UNASSIGNED_SUPPLIER,
            )
        )
    if errors:
        raise CatalogImportError(errors)
    return items
