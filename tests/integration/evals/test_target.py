"""The evaluation target on the session's PostgreSQL: one database per conversation's catalogue, built once.

No network: the evaluation suite's autouse socket guard (``no_network``) runs here too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.unit.evals.test_evals import CATALOG, HOSPITALITY, HOSPITALITY_ITEMS, no_network  # noqa: F401 - guard


def test_target_loads_each_conversations_catalogue(
    database_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real target: one database per catalogue, loaded with exactly that CSV, built once and reused."""
    from sqlalchemy import text

    from core.config import get_settings
    from evals import target as tgt
    from evals.catalogs import CATALOG_PATH, catalog_path_of

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    env = tgt._Env()
    monkeypatch.setattr(tgt, "_env", env)

    def conversation(cid: str, text_: str, catalog: str | None) -> dict[str, Any]:
        conv: dict[str, Any] = {
            "id": cid,
            "dataset": "unseen_dev",
            "now": "2026-11-30T09:15:00+03:00",
            "user": {"role": "requester", "site": "Nairobi"},
            "turns": [[{"text": text_}]],
        }
        if catalog:
            conv["catalog"] = catalog
        return conv

    async def scenario() -> tuple[list[dict[str, Any]], dict[Path, set[str]]]:
        outputs = [
            await tgt.run_conversation(
                conversation("t-1", "6 gloves nitrile medium boxes by friday", HOSPITALITY), model=None
            ),
            await tgt.run_conversation(conversation("t-2", "need 20 boxes a4 paper by friday", None), model=None),
        ]
        first = env.dbs[catalog_path_of(HOSPITALITY)]
        outputs.append(
            await tgt.run_conversation(conversation("t-3", "2 boxes surgical masks by friday", HOSPITALITY), model=None)
        )
        assert env.dbs[catalog_path_of(HOSPITALITY)] is first, "built once per catalogue, then cached"
        skus: dict[Path, set[str]] = {}
        for path, db in env.dbs.items():
            async with db.engine.connect() as conn:
                rows = await conn.execute(text("SELECT sku FROM catalog_items WHERE active"))
                skus[path] = set(rows.scalars())
            await db.engine.dispose()
        return outputs, skus

    try:
        outputs, skus = asyncio.run(scenario())
    finally:
        get_settings.cache_clear()
    assert set(skus) == {catalog_path_of(HOSPITALITY), CATALOG_PATH}
    assert skus[catalog_path_of(HOSPITALITY)] == set(HOSPITALITY_ITEMS)
    assert skus[CATALOG_PATH] == set(CATALOG)
    assert tgt.database_name(catalog_path_of(HOSPITALITY)) == "procure_eval_item_master_hospitality_health"
    assert tgt.database_name(CATALOG_PATH) == "procure_eval"
    seen = [{ln["sku"] for ln in (out["request"] or {}).get("lines") or []} - {None} for out in outputs]
    for skus_of_run, items in zip(seen, (HOSPITALITY_ITEMS, CATALOG, HOSPITALITY_ITEMS), strict=True):
        assert skus_of_run <= set(items), "every SKU comes from the conversation's own catalogue"
    assert seen[1] == {"PAP-A4-80"}, "the demo catalogue (with its aliases) serves conversations naming none"
    assert seen[0] | seen[2], "the hospitality item master's index served its conversations"
