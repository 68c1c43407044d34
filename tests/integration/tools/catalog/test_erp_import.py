"""``procure catalog import --from-erp`` against the REAL reference Tryton (session fixture, tests/support/erp_fixtures.py)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from core.db import catalog_items
from core.repo import parse_catalog_csv
from tests.integration.server.test_cli import procure
from tests.support.erp_fixtures import ERP_SUPPLIERS, RunningTryton
from tests.support.paths import CATALOG_CSV
from tools.catalog.store import items_from_erp


async def test_items_from_erp_match_the_reference_catalogue(tryton_server: RunningTryton) -> None:
    expected = {i.sku: i for i in parse_catalog_csv(CATALOG_CSV.read_text()) if i.supplier in ERP_SUPPLIERS}
    async with tryton_server.client() as client:
        items = {i.sku: i for i in await items_from_erp(client, currency="USD")}
    assert set(expected) <= set(items)
    for sku, want in expected.items():
        got = items[sku]
        assert (got.name, got.unit, got.unit_price, got.supplier) == (
            want.name, want.unit, want.unit_price, want.supplier,
        ), sku  # fmt: skip


async def test_cli_import_from_erp(engine, clean, database_url, redis_url, tryton_server: RunningTryton, monkeypatch):
    for key, value in {
        "ERP_URL": tryton_server.url,
        "ERP_DATABASE": tryton_server.database,
        "ERP_USER": tryton_server.login,
        "ERP_PASSWORD": tryton_server.password,
    }.items():
        monkeypatch.setenv(key, value)
    r = procure(["catalog", "import", "--from-erp"], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(catalog_items.c.unit, catalog_items.c.unit_price, catalog_items.c.supplier).where(
                    catalog_items.c.sku == "PAP-A4-80"
                )
            )
        ).one()
    assert (row.unit, row.unit_price, row.supplier) == ("box", Decimal("24.50"), "OFFICEMART")
    r = procure(["catalog", "import"], database_url, redis_url)
    assert r.returncode == 2 and "give a CSV file or --from-erp" in r.stderr
