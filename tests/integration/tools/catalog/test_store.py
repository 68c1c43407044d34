"""The catalogue index stored in PostgreSQL: item vectors written at import and loaded, learned aliases."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from core.db import catalog_items
from tests.unit.tools.catalog.test_index import EMBEDDER, ITEMS
from tools.catalog import CatalogCache
from tools.catalog.aliases import learn, list_aliases, remove_alias
from tools.catalog.store import import_items, load_index, nearest


async def test_import_stores_vectors_and_index_loads_them(engine, clean) -> None:
    ins, upd = await import_items(engine, ITEMS, EMBEDDER)
    assert (ins, upd) == (63, 0)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).where(catalog_items.c.embedding.is_not(None)))).scalar_one()
    assert stored == 63

    class NoPassages:
        name, dim, floor, span = "no-passages", EMBEDDER.dim, EMBEDDER.floor, EMBEDDER.span

        def passages(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("items must not be re-embedded at start-up")

        def queries(self, texts: list[str]) -> np.ndarray:
            return EMBEDDER.queries(texts)

    index = await load_index(engine, NoPassages())
    assert index.match("toilet paper").skus[:1] == ["CL-00520"]
    # the pgvector path gives the same nearest item as the in-process vectors
    hits = await nearest(engine, EMBEDDER.queries(["toilet paper"])[0].tolist(), limit=3)
    assert hits[0][0] == "CL-00520" and 0 < hits[0][1] <= 1 and hits[0][1] >= hits[1][1]


async def test_learned_aliases_on_postgres(engine, clean) -> None:
    from core.repo import add_user

    await import_items(engine, ITEMS, None)
    amina = await add_user(engine, phone="+254700000001", name="Amina Requester", role="requester", site="Nairobi")
    cache = CatalogCache(check_seconds=0)
    assert (await cache.get(engine)).match("blue biros").status != "match"
    await learn(engine, "Blue Biros", "ST-00120", amina.id)
    await learn(engine, "blue biro", "ST-00120", None)
    rows = await list_aliases(engine)
    assert [(a.phrase, a.sku, a.uses, a.created_by) for a in rows] == [("blue biro", "ST-00120", 2, amina.id)]
    index = await cache.get(engine)
    assert index.match("blue biros").skus == ["ST-00120"] and index.match("blue biros").status == "match"
    with pytest.raises(ValueError, match="no active catalogue item"):
        await learn(engine, "gadget", "NOPE-1", None)
    with pytest.raises(ValueError, match="no words"):
        await learn(engine, "the", "ST-00120", None)
    assert await remove_alias(engine, rows[0].id)
    assert not await remove_alias(engine, rows[0].id)
    assert (await cache.get(engine)).match("blue biros").status != "match"
