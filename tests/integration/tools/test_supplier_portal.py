"""Supplier-website ordering against the reference shop, with Debian's Chromium (integration tests)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal

import httpx
import pytest

from core.domain import Line, Money
from tests.support.portal_fixtures import RunningShop
from tools.storage import S3Storage
from tools.supplier_portal import (
    BrowserPool,
    OrderLine,
    PortalAccount,
    PortalCheckoutFailed,
    PortalError,
    PortalLoginFailed,
    PortalProductNotFound,
    PortalRateLimited,
    PortalResult,
    place_order_in_browser,
)
from tools.supplier_portal.sandbox_shop import SandboxShopPortal

ACCOUNT = PortalAccount("buyer@acme.test", "s3cret")
LINES = [OrderLine("TON-CF226A", 2), OrderLine("USB-32", 5)]
EXPECTED_LINES = {"TON-CF226A": 2, "USB-32": 5}


def new_po() -> str:
    return f"PO-{uuid.uuid4().hex[:10].upper()}"


async def place(
    pool: BrowserPool,
    shop: RunningShop,
    po: str,
    lines: Sequence[OrderLine | Line] = LINES,
    *,
    account: PortalAccount = ACCOUNT,
    account_key: str | None = None,
    reuse_session: bool = True,
) -> PortalResult:
    return await place_order_in_browser(
        pool,
        lambda run: SandboxShopPortal.for_run(run, base_url=shop.base_url, account=account),
        po,
        lines,
        account_key=account_key or f"TONERWEB:{account.username}",
        reuse_session=reuse_session,
    )


def assert_one_order(
    shop: RunningShop, po: str, result: PortalResult, expected: dict[str, int] = EXPECTED_LINES
) -> None:
    orders = shop.orders(po)
    assert len(orders) == 1, orders
    assert orders[0]["number"] == result.order_number
    assert {line["sku"]: line["quantity"] for line in orders[0]["lines"]} == expected


async def test_happy_path_places_one_order_found_by_po(browser_pool: BrowserPool, shop: RunningShop) -> None:
    po = new_po()
    result = await place(browser_pool, shop, po)
    assert result.status == "placed"
    assert result.order_number.startswith("SO-")
    assert result.supplier == "TONERWEB"
    assert result.evidence_keys == ()  # success: trace discarded
    assert_one_order(shop, po, result)
    assert browser_pool.state_path("TONERWEB:buyer@acme.test").exists()  # session saved for the next run

    async with browser_pool.run(account_key="TONERWEB:buyer@acme.test", reference=po) as run:
        portal = SandboxShopPortal.for_run(run, base_url=shop.base_url, account=ACCOUNT)
        assert await portal.find_order(po) == result.order_number
        assert await portal.find_order(po[:-1]) is None  # the site's substring match is not trusted
        toners = await portal.search("toner")
        assert {p.sku for p in toners} == {"TON-CF226A", "TON-CF226X", "TON-CE285A"}
        assert next(p for p in toners if p.sku == "TON-CF226A").unit_price == Decimal("89.00")


async def test_domain_lines_and_leftover_cart(browser_pool: BrowserPool, shop: RunningShop) -> None:
    # A cart left over by an earlier, interrupted attempt must not end up in the order.
    async with browser_pool.run(account_key="TONERWEB:buyer@acme.test", reference="leftover") as run:
        portal = SandboxShopPortal.for_run(run, base_url=shop.base_url, account=ACCOUNT)
        await portal.login()
        await portal.add_to_cart("KBD-USB", 7)
        assert await portal.cart_contents() == {"KBD-USB": 7}
        # The checkout summary is compared with what we mean to order: a difference submits nothing.
        with pytest.raises(PortalCheckoutFailed) as info:
            await portal.checkout("PO-NEVER", {"KBD-USB": 1})
        assert info.value.retryable
        assert shop.orders("PO-NEVER") == []
    po = new_po()
    usd = "USD"
    lines = [
        Line("HP 26A", Decimal("1"), "piece", "TON-CF226A", Money(Decimal("89"), usd)),
        Line("flash disks", Decimal("5"), "piece", "USB-32", Money(Decimal("6.90"), usd)),
        Line("one more 26A", Decimal("1"), "piece", "TON-CF226A", Money(Decimal("89"), usd)),
    ]
    result = await place(browser_pool, shop, po, lines)
    assert_one_order(shop, po, result)


async def test_place_order_twice_gives_one_order(browser_pool: BrowserPool, shop: RunningShop) -> None:
    po = new_po()
    first = await place(browser_pool, shop, po)
    second = await place(browser_pool, shop, po)
    assert (first.status, second.status) == ("placed", "already_placed")
    assert second.order_number == first.order_number
    assert_one_order(shop, po, first)


async def test_concurrent_calls_same_po_give_one_order(browser_pool: BrowserPool, shop: RunningShop) -> None:
    po = new_po()
    results = await asyncio.gather(*(place(browser_pool, shop, po) for _ in range(8)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    placed = [r for r in results if isinstance(r, PortalResult)]
    assert sorted(r.status for r in placed) == ["already_placed"] * 7 + ["placed"]
    assert len({r.order_number for r in placed}) == 1
    assert_one_order(shop, po, placed[0])
    assert browser_pool.launches == 1  # one Chromium for all runs


async def test_slow_shop(browser_pool: BrowserPool, shop: RunningShop) -> None:
    # Sign in first (a saved session is the usual case) so that the slow part is the order itself.
    async with browser_pool.run(account_key="TONERWEB:buyer@acme.test", reference="warm-up") as run:
        await SandboxShopPortal.for_run(run, base_url=shop.base_url, account=ACCOUNT).login()
    shop.set_switches(slow=True)  # 1500 ms on every response
    po = new_po()
    started = time.monotonic()
    result = await place(browser_pool, shop, po, [OrderLine("TON-CE285A", 3)])
    assert time.monotonic() - started > 8 * 1.5  # eight responses, each really delayed
    assert result.status == "placed"
    assert_one_order(shop, po, result, {"TON-CE285A": 3})


async def test_rate_limit_short_wait_is_retried(browser_pool: BrowserPool, shop: RunningShop) -> None:
    shop.set_switches(rate_limit={"next": 2, "retry_after": 1})
    po = new_po()
    result = await place(browser_pool, shop, po)
    assert result.status == "placed"
    assert_one_order(shop, po, result)
    assert shop.set_switches()["rate_limit_next"] == 0  # both 429s were met and waited out


async def test_rate_limit_long_wait_is_raised_retryable(
    browser_pool: BrowserPool, shop: RunningShop, evidence_storage: S3Storage
) -> None:
    shop.set_switches(rate_limit={"next": 1000, "retry_after": 120})
    po = new_po()
    with pytest.raises(PortalRateLimited) as info:
        await place(browser_pool, shop, po)
    assert info.value.retryable
    assert info.value.retry_after == 120
    assert len(info.value.evidence_keys) == 2
    assert shop.orders(po) == []
    # The job layer retries later; the same call then succeeds.
    shop.set_switches(rate_limit=0)
    assert_one_order(shop, po, await place(browser_pool, shop, po))


async def test_session_expiry_mid_checkout(browser_pool: BrowserPool, shop: RunningShop) -> None:
    shop.set_switches(session_expiry=True)
    po = new_po()
    result = await place(browser_pool, shop, po)
    assert result.status == "placed"
    assert_one_order(shop, po, result)
    assert shop.set_switches()["session_expiry"] == 0  # the expiry did happen


async def test_interstitial_bot_check(browser_pool: BrowserPool, shop: RunningShop) -> None:
    shop.set_switches(interstitial={"delay_ms": 300})
    po = new_po()
    # A clean browser (no clearance cookie) must pass the JavaScript check on its own.
    result = await place(browser_pool, shop, po, account_key="TONERWEB:interstitial", reuse_session=False)
    assert result.status == "placed"
    assert_one_order(shop, po, result)


async def test_interstitial_is_impassable_without_javascript(shop: RunningShop) -> None:
    shop.set_switches(interstitial=True)
    async with httpx.AsyncClient(base_url=shop.base_url) as client:
        response = await client.get("/login")
    assert response.status_code == 503
    assert 'data-page="interstitial"' in response.text


@pytest.mark.parametrize("mode", ["500", "drop"])
async def test_fail_after_record_is_recovered_not_repeated(
    browser_pool: BrowserPool, shop: RunningShop, evidence_storage: S3Storage, mode: str
) -> None:
    shop.set_switches(fail_after_record={"mode": mode, "count": 1})
    po = new_po()
    result = await place(browser_pool, shop, po)
    assert result.status == "recovered"
    assert_one_order(shop, po, result)
    # The recovered failure is worth a look: its evidence is kept.
    assert [k.rsplit("/", 1)[1] for k in result.evidence_keys] == ["screenshot.png", "trace.zip"]
    assert all(evidence_storage.exists(k) for k in result.evidence_keys)
    again = await place(browser_pool, shop, po)
    assert (again.status, again.order_number) == ("already_placed", result.order_number)
    assert len(shop.orders(po)) == 1


async def test_unknown_sku_is_not_retryable(browser_pool: BrowserPool, shop: RunningShop) -> None:
    po = new_po()
    with pytest.raises(PortalProductNotFound) as info:
        await place(browser_pool, shop, po, [OrderLine("NOPE-1", 1)])
    assert not info.value.retryable
    assert shop.orders(po) == []


async def test_login_failure_uploads_screenshot_and_trace(
    browser_pool: BrowserPool, shop: RunningShop, evidence_storage: S3Storage
) -> None:
    po = new_po()
    wrong = PortalAccount("buyer@acme.test", "not-the-password")
    with pytest.raises(PortalLoginFailed) as info:
        await place(browser_pool, shop, po, account=wrong, account_key="TONERWEB:wrong", reuse_session=False)
    error = info.value
    assert isinstance(error, PortalError) and not error.retryable
    assert "not-the-password" not in str(error) and "not-the-password" not in repr(wrong)
    names = [key.rsplit("/", 1)[1] for key in error.evidence_keys]
    assert names == ["screenshot.png", "trace.zip"]
    assert all(key.startswith(f"evidence/{po}/1/") for key in error.evidence_keys)
    # Really in the moto S3 bucket, and really a PNG and a zip.
    screenshot = await evidence_storage.aget(error.evidence_keys[0])
    trace = await evidence_storage.aget(error.evidence_keys[1])
    assert screenshot.startswith(b"\x89PNG") and trace.startswith(b"PK")
    assert evidence_storage.head(error.evidence_keys[0]).content_type == "image/png"
    assert not browser_pool.state_path("TONERWEB:wrong").exists()  # a refused sign-in leaves no session
    assert shop.orders(po) == []


# -- the sandbox shop itself, over plain HTTP -------------------------------------------------------------


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _signed_in(shop: RunningShop) -> httpx.Client:
    client = httpx.Client(base_url=shop.base_url)
    token = _csrf(client.get("/login").text)
    response = client.post("/login", data={"email": ACCOUNT.username, "password": "s3cret", "csrf_token": token})
    assert response.status_code == 303
    return client


def test_sandbox_login_checks_csrf_and_credentials(shop: RunningShop) -> None:
    with httpx.Client(base_url=shop.base_url) as client:
        token = _csrf(client.get("/login").text)
        no_csrf = client.post("/login", data={"email": ACCOUNT.username, "password": "s3cret"})
        assert no_csrf.status_code == 403 and 'data-error="csrf"' in no_csrf.text
        token = _csrf(no_csrf.text)
        wrong = client.post("/login", data={"email": ACCOUNT.username, "password": "x", "csrf_token": token})
        assert wrong.status_code == 401 and 'data-error="credentials"' in wrong.text
        # A token is good for one submission only.
        replay = client.post("/login", data={"email": ACCOUNT.username, "password": "s3cret", "csrf_token": token})
        assert replay.status_code == 403
        assert client.get("/cart").status_code == 303  # still signed out


def test_sandbox_rate_limit_unique_po_and_switch_validation(shop: RunningShop) -> None:
    with contextlib.closing(_signed_in(shop)) as client:
        shop.set_switches(rate_limit={"next": 1, "retry_after": 7})
        limited = client.get("/search")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
        assert client.get("/search").status_code == 200
        shop.set_switches(unique_po=True)
        csrf = _csrf(client.get("/product/USB-32").text)
        for expected_status in (303, 409):
            client.post("/cart/add", data={"sku": "USB-32", "quantity": "1", "csrf_token": csrf})
            response = client.post("/checkout", data={"po_reference": "PO-UNIQ", "csrf_token": csrf})
            assert response.status_code == expected_status
        assert len(shop.orders("PO-UNIQ")) == 1
        assert client.post("/cart/add", data={"sku": "USB-32", "quantity": "1"}).status_code == 403  # no CSRF
    assert shop.admin.post("/_admin/switches", json={"nope": 1}).status_code == 422
    assert shop.admin.post("/_admin/switches", json={"fail_after_record": "maybe"}).status_code == 422
