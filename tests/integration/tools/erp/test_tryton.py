"""The Tryton ERP adapter against a REAL trytond (session fixture from tests/support/erp_fixtures.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from core.domain import Money
from sandboxes.tryton.server import free_port
from sandboxes.tryton.setup import load_catalog_csv, setup_database
from tests.support.erp_fixtures import (
    CATALOG_CSV,
    ERP_SUPPLIERS,
    ERP_TEST_COMPANY,
    ERP_TEST_PASSWORD,
    RunningTryton,
    prepare_test_database,
    template_cache_dir,
)
from tools.erp.base import (
    PLACED_STATES,
    ErpAuthError,
    ErpDuplicate,
    ErpLine,
    ErpNotFound,
    ErpProtocolError,
    ErpRejected,
    ErpUnavailable,
)
from tools.erp.tryton import TrytonClient, TrytonErp, dumps, loads, map_tryton_error

OFFICE_LINES = [
    ErpLine("PAP-A4-80", Decimal("20"), Decimal("24.50"), "box"),
    ErpLine("STP-STD", Decimal("3"), Decimal("7.80"), "piece", description="Desk stapler for Nairobi"),
]


def new_ref(tag: str = "PR") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}-OFFICEMART"


@pytest.fixture(scope="session")
async def erp(tryton_server: RunningTryton) -> AsyncIterator[TrytonErp]:
    """One logged-in adapter shared by the tests (a Tryton login costs ~0.2 s of password hashing)."""
    adapter = tryton_server.adapter()
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def fresh_erp(tryton_server: RunningTryton) -> AsyncIterator[TrytonErp]:
    """An adapter of its own, for tests that tamper with the client or patch methods."""
    adapter = tryton_server.adapter()
    yield adapter
    await adapter.aclose()


async def count_refs(erp: TrytonErp, reference: str) -> int:
    return int(await erp.client.model("purchase.purchase", "search_count", [["reference", "=", reference]]))


# --------------------------------------------------------------------------------------- protocol, no server


def test_json_codec_decimal_and_dates() -> None:
    payload = {"p": Decimal("3.50"), "d": dt.date(2025, 1, 31), "t": dt.datetime(2025, 1, 31, 8, 5, 1, 7)}
    raw = json.loads(dumps(payload))
    assert raw["p"] == {"__class__": "Decimal", "decimal": "3.50"}
    assert raw["d"] == {"__class__": "date", "year": 2025, "month": 1, "day": 31}
    assert loads(dumps(payload)) == payload


def test_error_mapping() -> None:
    sqlite_dup = ["UNIQUE constraint failed: purchase_purchase.reference", "Traceback..."]
    pg_dup = ['duplicate key value violates unique constraint "purchase_reference_uniq"\nDETAIL: ...', ""]
    assert isinstance(map_tryton_error("m", sqlite_dup), ErpDuplicate)
    assert isinstance(map_tryton_error("m", pg_dup), ErpDuplicate)
    assert isinstance(map_tryton_error("m", ["database is locked", ""]), ErpUnavailable)
    access = ["UserError", ['You are not allowed to access "Purchase".', "", None]]
    assert isinstance(map_tryton_error("m", access), ErpAuthError)
    rule = ["UserError", ['The value "x" for field "Unit" is not valid.', "details", None]]
    err = map_tryton_error("m", rule)
    assert isinstance(err, ErpRejected) and not err.retryable and "details" in err.message
    assert isinstance(map_tryton_error("m", ["KeyError: 'x'", "tb"]), ErpProtocolError)
    assert ErpUnavailable("x").retryable and not ErpNotFound("x").retryable


async def test_relogin_once_then_auth_error() -> None:
    """401 on a model call: one re-login and one retry; a second 401 is an ErpAuthError (no loop)."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        calls.append(method)
        if method == "common.db.login":
            return httpx.Response(200, json={"id": 1, "result": [1, f"s{len(calls)}", None]})
        if method == "model.res.user.get_preferences":
            return httpx.Response(200, json={"id": 1, "result": {"company": 1}})
        return httpx.Response(401)

    client = TrytonClient("http://erp.test", "db", "admin", "pw", transport=httpx.MockTransport(handler))
    with pytest.raises(ErpAuthError):
        await client.model("purchase.purchase", "search_count", [])
    assert calls.count("common.db.login") == 2
    assert calls.count("model.purchase.purchase.search_count") == 2
    await client.aclose()


async def test_http_5xx_is_retryable() -> None:
    client = TrytonClient(
        "http://erp.test", "db", "admin", "pw", transport=httpx.MockTransport(lambda r: httpx.Response(503))
    )
    with pytest.raises(ErpUnavailable) as info:
        await client.login()
    assert info.value.retryable
    await client.aclose()


# ---------------------------------------------------------------------------------------- real Tryton server


async def test_login_loads_user_context(tryton_server: RunningTryton) -> None:
    async with tryton_server.client() as client:
        await client.login()
        assert client.user_id and client.context["company"]
        assert client.context["language"] == "en"


async def test_create_quote_confirm(erp: TrytonErp) -> None:
    ref = new_ref()
    order = await erp.create_purchase(ref, "OFFICEMART", OFFICE_LINES, "PR test: paper and staplers")
    assert (order.state, order.number, order.supplier_code) == ("draft", None, "OFFICEMART")
    found = await erp.find_by_reference(ref)
    assert found == order
    await erp.quote(order.id)
    quoted = await erp.get_order(order.id)
    assert quoted.state == "quotation" and quoted.number
    await erp.confirm(order.id)
    assert await erp.get_state(order.id) in PLACED_STATES
    (row,) = await erp.client.model(
        "purchase.purchase", "read", [order.id], ["untaxed_amount", "description", "invoice_address", "lines"]
    )
    assert row["untaxed_amount"] == Decimal("513.40")  # 20 x 24.50 + 3 x 7.80, exact Decimal
    assert row["description"] == "PR test: paper and staplers" and row["invoice_address"]
    lines = await erp.client.model(
        "purchase.line", "read", row["lines"], ["quantity", "unit_price", "unit.symbol", "description"]
    )
    by_price = {ln["unit_price"]: ln for ln in lines}
    assert by_price[Decimal("24.50")]["unit."]["symbol"] == "box"
    assert by_price[Decimal("7.80")]["description"] == "Desk stapler for Nairobi"


async def test_find_unknown_reference_is_none(erp: TrytonErp) -> None:
    assert await erp.find_by_reference(new_ref("NOPE")) is None


async def test_place_order_is_idempotent(erp: TrytonErp) -> None:
    ref = new_ref()
    first = await erp.place_order(ref, "OFFICEMART", OFFICE_LINES, "idempotent")
    second = await erp.place_order(ref, "OFFICEMART", OFFICE_LINES, "idempotent")
    assert first.state in PLACED_STATES and first.number
    assert second == first
    assert await count_refs(erp, ref) == 1


async def test_concurrent_place_order_creates_one_purchase(tryton_server: RunningTryton, erp: TrytonErp) -> None:
    ref = new_ref("RACE")
    adapters = [tryton_server.adapter() for _ in range(8)]
    try:
        orders = await asyncio.gather(*(a.place_order(ref, "OFFICEMART", OFFICE_LINES, "race") for a in adapters))
    finally:
        await asyncio.gather(*(a.aclose() for a in adapters))
    assert len({o.id for o in orders}) == 1
    assert await count_refs(erp, ref) == 1
    assert await erp.get_state(orders[0].id) in PLACED_STATES


@pytest.mark.parametrize("left_in", ["draft", "quotation"])
async def test_half_done_order_is_confirmed_not_duplicated(erp: TrytonErp, left_in: str) -> None:
    ref = new_ref("CRASH")
    draft = await erp.create_purchase(ref, "OFFICEMART", OFFICE_LINES, "crashed attempt")
    if left_in == "quotation":
        await erp.quote(draft.id)
    order = await erp.place_order(ref, "OFFICEMART", OFFICE_LINES, "retry after crash")
    assert order.id == draft.id and order.state in PLACED_STATES
    assert await count_refs(erp, ref) == 1


async def test_wrong_password_is_auth_error(tryton_server: RunningTryton) -> None:
    client = TrytonClient(tryton_server.url, tryton_server.database, tryton_server.login, "not-the-password")
    erp = TrytonErp(client)
    with pytest.raises(ErpAuthError) as info:
        await erp.find_by_reference("anything")
    assert not info.value.retryable
    assert "not-the-password" not in str(info.value)
    await erp.aclose()


async def test_unknown_database_is_protocol_error(tryton_server: RunningTryton) -> None:
    async with TrytonClient(tryton_server.url, "no_such_db", "admin", "whatever-pw") as client:
        with pytest.raises(ErpProtocolError):
            await client.login()


async def test_server_down_is_unavailable() -> None:
    erp = TrytonErp(TrytonClient(f"http://127.0.0.1:{free_port()}", "db", "admin", "pw", timeout=2))
    with pytest.raises(ErpUnavailable) as info:
        await erp.place_order(new_ref(), "OFFICEMART", OFFICE_LINES, "down")
    assert info.value.retryable
    await erp.aclose()


async def test_unknown_codes_are_not_found_and_leave_nothing(erp: TrytonErp) -> None:
    ref = new_ref("BAD")
    bad_product = [*OFFICE_LINES, ErpLine("NO-SUCH-SKU", Decimal("1"), Decimal("1.00"), "piece")]
    with pytest.raises(ErpNotFound, match="NO-SUCH-SKU") as info:
        await erp.place_order(ref, "OFFICEMART", bad_product, "unknown product")
    assert not info.value.retryable
    with pytest.raises(ErpNotFound, match="NOSUCHSUPPLIER"):
        await erp.place_order(ref, "NOSUCHSUPPLIER", OFFICE_LINES, "unknown supplier")
    assert await count_refs(erp, ref) == 0


async def test_wrong_unit_is_rejected(erp: TrytonErp) -> None:
    ref = new_ref("UNIT")
    with pytest.raises(ErpRejected, match="PAP-A4-80"):
        await erp.place_order(ref, "OFFICEMART", [ErpLine("PAP-A4-80", Decimal("2"), Decimal("24.50"), "kg")], "x")
    assert await count_refs(erp, ref) == 0


async def test_permanent_failure_after_create_deletes_the_draft(
    fresh_erp: TrytonErp, monkeypatch: pytest.MonkeyPatch
) -> None:
    erp = fresh_erp

    async def failing_quote(order_id: int) -> None:
        raise ErpRejected("quote refused (simulated)")

    monkeypatch.setattr(erp, "quote", failing_quote)
    ref = new_ref("PARTIAL")
    with pytest.raises(ErpRejected):
        await erp.place_order(ref, "OFFICEMART", OFFICE_LINES, "partial")
    assert await count_refs(erp, ref) == 0


async def test_reference_of_another_supplier_is_refused(erp: TrytonErp) -> None:
    ref = new_ref("OTHER")
    await erp.place_order(ref, "OFFICEMART", OFFICE_LINES, "first")
    lines = [ErpLine("CLN-SOAP", Decimal("5"), Decimal("2.10"), "litre")]
    with pytest.raises(ErpDuplicate):
        await erp.place_order(ref, "CLEANCO", lines, "same key, other supplier")


async def test_invalidated_session_logs_in_again(fresh_erp: TrytonErp) -> None:
    erp = fresh_erp
    client = erp.client
    await client.login()
    first_user = client.user_id
    # Logged out server-side while the client still holds the session.
    await client.rpc("common.db.logout", [])
    assert await erp.find_by_reference(new_ref("NOPE")) is None
    # A corrupted session token is refused (HTTP 401) and replaced the same way.
    client._auth = "Session " + "Y29ycnVwdDoxOmJhZA=="  # "corrupt:1:bad"
    assert await erp.find_by_reference(new_ref("NOPE")) is None
    assert client.user_id == first_user and client.logged_in


def test_setup_twice_updates_not_duplicates(tmp_path: Path) -> None:
    first = prepare_test_database(tmp_path, "procure_setup_twice")
    assert first.from_template and first.sqlite_path is not None
    counts_sql = [
        "SELECT COUNT(*) FROM party_party",
        "SELECT COUNT(*) FROM party_address",
        "SELECT COUNT(*) FROM product_template",
        "SELECT COUNT(*) FROM purchase_product_supplier",
        "SELECT COUNT(*) FROM purchase_product_supplier_price",
        "SELECT COUNT(*) FROM product_uom",
        "SELECT COUNT(*) FROM account_fiscalyear",
        "SELECT COUNT(*) FROM company_company",
    ]
    price_sql = (
        "SELECT pr.unit_price FROM purchase_product_supplier_price pr"
        " JOIN purchase_product_supplier ps ON pr.product_supplier = ps.id"
        " JOIN product_template t ON ps.template = t.id WHERE t.code = 'PAP-A4-80'"
    )

    def query(sql: str) -> list[tuple[object, ...]]:
        with contextlib.closing(sqlite3.connect(str(first.sqlite_path))) as conn:
            return conn.execute(sql).fetchall()

    def counts() -> list[object]:
        return [query(q)[0][0] for q in counts_sql]

    def price() -> Decimal:
        (value,) = query(price_sql)[0]  # Tryton keeps Numeric values as text blobs in SQLite
        return Decimal(value.decode() if isinstance(value, bytes) else str(value))

    before = counts()
    assert price() == Decimal("24.50")
    # Second run on the same database, with one price changed in the catalogue: updated in place.
    catalog = [
        dataclasses.replace(it, unit_price=Money(Decimal("25.10"), "USD")) if it.sku == "PAP-A4-80" else it
        for it in load_catalog_csv(CATALOG_CSV)
    ]
    second = setup_database(
        "procure_setup_twice",
        catalog,
        company_name=ERP_TEST_COMPANY,
        admin_password=ERP_TEST_PASSWORD,
        data_dir=template_cache_dir(),
        db_dir=tmp_path,
        suppliers=ERP_SUPPLIERS,
    )
    assert not second.created and counts() == before
    assert price() == Decimal("25.10")
    assert set(second.suppliers) == set(ERP_SUPPLIERS)
    ((sql,),) = query("SELECT sql FROM sqlite_master WHERE name = 'purchase_reference_uniq'")
    assert "UNIQUE" in str(sql)
