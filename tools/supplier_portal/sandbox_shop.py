"""Page object of the reference supplier shop (``sandboxes/supplier_shop/``, supplier ``TONERWEB``).

Every selector is in :class:`Selectors`. The shop marks each page with ``<body data-page="...">``; after each
navigation the page object waits for a *new* marked body (the old one is flagged stale before a form submit)
and reacts to where it landed:

* ``interstitial`` (bot check): wait, within ``Timeouts.challenge_ms``, for the page's script to set its
  cookie and reload;
* ``rate-limited`` (HTTP 429): raise :class:`PortalRateLimited` with the page's ``Retry-After``;
* ``login`` where another page was expected: raise :class:`PortalSessionExpired` (``place_order`` signs in
  again once and resumes with the cart the shop kept);
* ``error`` (HTTP 5xx) or a connection dropped mid-response: raise a retryable error (after a checkout
  submission: :class:`PortalCheckoutFailed`, outcome unknown, which makes ``place_order`` look the order up).

Slowness is absorbed by generous explicit waits (:class:`Timeouts`), never by fixed sleeps.

About 450 lines, on purpose: one page object of one site, its selectors and the reaction to every page the
shop can land on, kept together so a change to the site is one file to read.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tools.supplier_portal.base import (
    PortalAccount,
    PortalCheckoutFailed,
    PortalError,
    PortalLoginFailed,
    PortalProductNotFound,
    PortalRateLimited,
    PortalSessionExpired,
    PortalTimeout,
    Product,
    SupplierPortal,
)
from tools.supplier_portal.browser import BrowserRun, Pacing, Timeouts

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Selectors:
    """CSS selectors of the reference shop, in one place (change them here when the site changes)."""

    #: In-page test of where the browser landed: ``{page, retryAfter}`` once a page marked
    #: ``body[data-page]`` is loaded that is not flagged stale and is not the page named by the argument.
    landing_js: str = """(skip) => {
        const b = document.body;
        const page = b && !b.dataset.stale && b.dataset.page;
        if (!page || page === skip) return null;
        const m = document.querySelector('#message-text[data-retry-after]');
        return {page, retryAfter: m ? m.dataset.retryAfter : null};
    }"""

    login_email: str = "#login-form input[name='email']"
    login_password: str = "#login-form input[name='password']"
    login_submit: str = "#login-form button[type='submit']"
    login_error: str = "#login-error"

    product_row: str = "table#results tbody tr.product"
    quantity: str = "#add-to-cart input[name='quantity']"
    add_submit: str = "#add-to-cart button[type='submit']"
    form_error: str = "#form-error"

    cart_line: str = "table#cart tbody tr.cart-line"
    clear_cart: str = "#clear-cart button[type='submit']"

    po_reference: str = "#checkout-form input[name='po_reference']"
    checkout_submit: str = "#checkout-form button[type='submit']"
    checkout_error: str = "#checkout-error"
    checkout_line: str = "table#checkout-lines tbody tr.checkout-line"
    order_number: str = "#order-number"
    order_po: str = "#order-po"

    order_row: str = "table#orders tbody tr.order"


SELECTORS = Selectors()

# Page markers (``body[data-page]``) of the shop.
_LOGIN, _ERROR, _FORBIDDEN, _RATE_LIMITED, _INTERSTITIAL = (
    "login",
    "error",
    "forbidden",
    "rate-limited",
    "interstitial",
)
_NOT_FOUND = "not-found"


class _NavigationFailed(Exception):
    """The document request failed at network level (connection reset, truncated response)."""


def _translated(
    what: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Turn Playwright errors escaping a primitive into portal errors (timeouts and network: retryable)."""

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await fn(*args, **kwargs)
            except PlaywrightTimeoutError as exc:
                raise PortalTimeout(f"{what}: timed out: {exc.message.splitlines()[0]}") from exc
            except _NavigationFailed as exc:
                raise PortalError(f"{what}: {exc}", retryable=True) from exc
            except PlaywrightError as exc:
                raise PortalError(f"{what}: browser error: {exc.message.splitlines()[0]}", retryable=True) from exc

        return wrapper

    return decorate


class SandboxShopPortal(SupplierPortal):
    """The reference shop driven through a Playwright page.

    Args:
        page: the tab to drive (from a :class:`BrowserRun`).
        base_url: the shop's root, e.g. ``http://127.0.0.1:8090``.
        account: sign-in credentials.
        pacing: pauses before typing and clicking.
        timeouts: explicit wait limits.
        rate_limit_max_wait: see :class:`SupplierPortal`.
        rate_limit_retries: see :class:`SupplierPortal`.
    """

    supplier = "TONERWEB"
    sel = SELECTORS

    def __init__(
        self,
        page: Page,
        *,
        base_url: str,
        account: PortalAccount,
        pacing: Pacing | None = None,
        timeouts: Timeouts | None = None,
        rate_limit_max_wait: float = 5.0,
        rate_limit_retries: int = 3,
    ) -> None:
        super().__init__(account, rate_limit_max_wait=rate_limit_max_wait, rate_limit_retries=rate_limit_retries)
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.pacing = Pacing.off() if pacing is None else pacing
        self.timeouts = Timeouts() if timeouts is None else timeouts
        # Marker of the page this object last landed on and has not left since: lets it use the page it
        # is on (a cart just shown, a sign-in page it was redirected to) instead of loading it again.
        self._current: str | None = None

    @classmethod
    def for_run(cls, run: BrowserRun, *, base_url: str, account: PortalAccount, **kwargs: Any) -> SandboxShopPortal:
        """The page object on a pool run, with the run's pacing and timeouts."""
        return cls(run.page, base_url=base_url, account=account, pacing=run.pacing, timeouts=run.timeouts, **kwargs)

    # -- navigation -----------------------------------------------------------------------------------------
    async def _goto(self, path: str) -> str:
        """Open a shop URL; returns the page marker of where the browser ended up (after any bot check)."""
        self._current = None
        try:
            await self.page.goto(self.base_url + path, wait_until="domcontentloaded")
        except PlaywrightTimeoutError:
            raise
        except PlaywrightError as exc:
            raise _NavigationFailed(f"loading {path} failed: {exc.message.splitlines()[0]}") from exc
        return await self._arrived(None)

    async def _submit(self, button: str) -> str:
        """Click a form's submit button; returns the page marker of the resulting page.

        Raises:
            _NavigationFailed: the response never completed (connection dropped).
        """
        self._current = None
        failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_request_failed(request: Request) -> None:
            if request.is_navigation_request() and request.frame == self.page.main_frame and not failed.done():
                failed.set_result(request.failure or "request failed")

        await self.pacing.pause()
        # Flag the current document, so that waiting for a marked body cannot match the page we are leaving.
        await self.page.evaluate("document.body && document.body.setAttribute('data-stale', '1')")
        self.page.on("requestfailed", on_request_failed)
        try:
            await self.page.click(button)
            return await self._arrived(failed)
        finally:
            self.page.remove_listener("requestfailed", on_request_failed)

    async def _arrived(self, failed: asyncio.Future[str] | None) -> str:
        """Wait for a fresh marked page (or a failed document load), pass a bot check, return the marker."""
        # One in-page wait (it survives navigations) instead of a selector wait plus attribute reads: each
        # round trip costs tens of milliseconds with tracing on.
        waiter = asyncio.ensure_future(
            self.page.wait_for_function(self.sel.landing_js, arg="", timeout=self.timeouts.navigation_ms, polling="raf")
        )
        if failed is not None:
            pending: set[asyncio.Future[Any]] = {waiter, failed}
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                # Swallow the cancelled wait's outcome so that it is not reported as never retrieved.
                waiter.add_done_callback(lambda t: t.cancelled() or t.exception())
                raise _NavigationFailed(f"the shop dropped the connection ({failed.result()})")
        landing: dict[str, Any] = await (await waiter).json_value()
        if landing["page"] == _INTERSTITIAL:
            logger.info("%s: bot check page, waiting for it to let the browser through", self.supplier)
            handle = await self.page.wait_for_function(
                self.sel.landing_js, arg=_INTERSTITIAL, timeout=self.timeouts.challenge_ms, polling="raf"
            )
            landing = await handle.json_value()
        kind = str(landing["page"])
        if kind == _RATE_LIMITED:
            retry_after = _seconds(landing.get("retryAfter"))
            raise PortalRateLimited(f"{self.supplier}: too many requests", retry_after=retry_after)
        self._current = kind
        return kind

    def _unexpected(self, kind: str, doing: str, expected: Collection[str]) -> PortalError:
        """The error for landing on ``kind`` while ``doing`` something that should lead to ``expected``."""
        if kind == _LOGIN:
            return PortalSessionExpired(f"{self.supplier}: sent to the sign-in page while {doing}")
        if kind == _ERROR:
            return PortalError(f"{self.supplier}: server error while {doing}", retryable=True)
        if kind == _FORBIDDEN:
            return PortalError(f"{self.supplier}: request refused (form expired?) while {doing}", retryable=True)
        # Anything else means the site changed under us: retrying won't help until the page object is fixed.
        return PortalError(
            f"{self.supplier}: landed on {kind or 'an unknown page'!r} while {doing}, expected {sorted(expected)}"
        )

    async def _text(self, selector: str) -> str:
        locator = self.page.locator(selector)
        return (await locator.inner_text()).strip() if await locator.count() else ""

    # -- primitives -----------------------------------------------------------------------------------------
    @_translated("login")
    async def login(self) -> None:
        """Sign in (no-op when the saved session is still valid).

        Raises:
            PortalLoginFailed: the shop refused the credentials.
            PortalRateLimited, PortalTimeout, PortalError: the shop misbehaved.
        """
        # A session that expired has already brought the browser to the sign-in page: use it.
        kind = _LOGIN if self._current == _LOGIN else await self._goto("/login")
        if kind != _LOGIN:
            if kind in (_ERROR, _FORBIDDEN):
                raise self._unexpected(kind, "opening the sign-in page", {_LOGIN})
            return  # already signed in: the shop redirected past its sign-in page
        await self.pacing.pause()
        await self.page.fill(self.sel.login_email, self.account.username)
        await self.pacing.pause()
        await self.page.fill(self.sel.login_password, self.account.password)
        kind = await self._submit(self.sel.login_submit)
        if kind == _LOGIN:
            code = await self.page.get_attribute(self.sel.login_error, "data-error")
            text = await self._text(self.sel.login_error)
            if code == "csrf":
                raise PortalError(f"{self.supplier}: sign-in form expired: {text}", retryable=True)
            raise PortalLoginFailed(f"{self.supplier}: sign-in refused for {self.account.username}: {text}")
        if kind in (_ERROR, _FORBIDDEN):
            raise self._unexpected(kind, "signing in", {"search"})
        logger.info("%s: signed in as %s", self.supplier, self.account.username)

    @_translated("search")
    async def search(self, query: str) -> list[Product]:
        """Products whose SKU or name contains ``query``."""
        kind = await self._goto(f"/search?q={quote(query)}")
        if kind != "search":
            raise self._unexpected(kind, "searching", {"search"})
        rows: list[dict[str, str]] = await self.page.locator(self.sel.product_row).evaluate_all(
            """rows => rows.map(r => ({
                sku: r.dataset.sku,
                name: r.querySelector('.name').textContent.trim(),
                unit: r.querySelector('.unit').textContent.trim(),
                price: r.querySelector('.price').dataset.price,
                currency: r.querySelector('.price').dataset.currency,
                url: r.querySelector('.name a').href,
            }))"""
        )
        return [
            Product(
                sku=row["sku"],
                name=row["name"],
                unit_price=_decimal(row["price"]),
                currency=row["currency"] or None,
                unit=row["unit"] or None,
                url=row["url"],
            )
            for row in rows
        ]

    @_translated("add to cart")
    async def add_to_cart(self, sku: str, quantity: int) -> None:
        """Open the product page, type the quantity, add to the cart.

        Raises:
            PortalProductNotFound: the shop does not sell ``sku``.
            PortalError: the shop refused the quantity (not retryable).
        """
        kind = await self._goto(f"/product/{quote(sku, safe='')}")
        if kind == _NOT_FOUND:
            raise PortalProductNotFound(f"{self.supplier} does not sell {sku}")
        if kind != "product":
            raise self._unexpected(kind, f"opening product {sku}", {"product"})
        await self.pacing.pause()
        await self.page.fill(self.sel.quantity, str(quantity))
        kind = await self._submit(self.sel.add_submit)
        if kind == "cart":
            return
        if kind == _NOT_FOUND:
            raise PortalProductNotFound(f"{self.supplier} does not sell {sku}")
        if kind == "product":
            raise PortalError(f"{self.supplier} refused {quantity} x {sku}: {await self._text(self.sel.form_error)}")
        raise self._unexpected(kind, f"adding {sku} to the cart", {"cart"})

    async def _open_cart(self) -> None:
        if self._current == "cart":
            return
        kind = await self._goto("/cart")
        if kind != "cart":
            raise self._unexpected(kind, "opening the cart", {"cart"})

    @_translated("read cart")
    async def cart_contents(self) -> dict[str, int]:
        """The account's cart: SKU -> quantity."""
        await self._open_cart()
        rows: list[list[str]] = await self.page.locator(self.sel.cart_line).evaluate_all(
            "rows => rows.map(r => [r.dataset.sku, r.querySelector('.quantity').textContent.trim()])"
        )
        return {sku: int(qty) for sku, qty in rows}

    @_translated("clear cart")
    async def clear_cart(self) -> None:
        """Empty the cart (no request when it is already empty)."""
        await self._open_cart()
        if await self.page.locator(self.sel.cart_line).count() == 0:
            return
        kind = await self._submit(self.sel.clear_cart)
        if kind != "cart":
            raise self._unexpected(kind, "emptying the cart", {"cart"})

    @_translated("checkout")
    async def checkout(self, po_reference: str, expected: Mapping[str, int] | None = None) -> str:
        """Check out the cart with ``po_reference`` as customer PO reference; returns the order number.

        Raises:
            PortalCheckoutFailed: no confirmation; ``retryable`` when the outcome is unknown (server error,
                dropped connection), the cart was empty or differed from ``expected`` (nothing submitted),
                not when the shop refused the form.
            PortalSessionExpired: the submission bounced to the sign-in page.
        """
        kind = await self._goto("/checkout")
        if kind == "cart":
            raise PortalCheckoutFailed(f"{self.supplier}: the cart is empty at checkout", retryable=True)
        if kind != "checkout":
            raise self._unexpected(kind, "opening the checkout", {"checkout"})
        if expected is not None:
            rows: list[list[str]] = await self.page.locator(self.sel.checkout_line).evaluate_all(
                "rows => rows.map(r => [r.dataset.sku, r.querySelector('.quantity').textContent.trim()])"
            )
            summary = {sku: int(qty) for sku, qty in rows}
            if summary != dict(expected):
                raise PortalCheckoutFailed(
                    f"{self.supplier}: checkout shows {summary}, expected {dict(expected)}; not submitted",
                    retryable=True,
                )
        await self.pacing.pause()
        await self.page.fill(self.sel.po_reference, po_reference)
        try:
            kind = await self._submit(self.sel.checkout_submit)
        except _NavigationFailed as exc:
            raise PortalCheckoutFailed(f"{self.supplier}: checkout outcome unknown: {exc}", retryable=True) from exc
        except PlaywrightTimeoutError as exc:
            raise PortalCheckoutFailed(
                f"{self.supplier}: no answer to the checkout (outcome unknown)", retryable=True
            ) from exc
        if kind == "order":
            number = await self._text(self.sel.order_number)
            shown_po = await self._text(self.sel.order_po)
            if not number:
                raise PortalCheckoutFailed(f"{self.supplier}: confirmation without order number", retryable=True)
            if shown_po != po_reference:
                logger.warning("%s: order %s shows PO %r, expected %r", self.supplier, number, shown_po, po_reference)
            logger.info("%s: ordered %s as %s", self.supplier, po_reference, number)
            return number
        if kind == "checkout":
            code = await self.page.get_attribute(self.sel.checkout_error, "data-error")
            text = await self._text(self.sel.checkout_error)
            raise PortalCheckoutFailed(f"{self.supplier}: checkout refused ({code}): {text}", retryable=False)
        if kind == _ERROR:
            raise PortalCheckoutFailed(
                f"{self.supplier}: server error after checkout (outcome unknown)", retryable=True
            )
        if kind == "cart":
            raise PortalCheckoutFailed(f"{self.supplier}: the cart emptied during checkout", retryable=True)
        raise self._unexpected(kind, "checking out", {"order"})

    @_translated("find order")
    async def find_order(self, po_reference: str) -> str | None:
        """Search the order history for ``po_reference``: the oldest exact match's number, else ``None``."""
        kind = await self._goto(f"/orders?po={quote(po_reference, safe='')}")
        if kind != "orders":
            raise self._unexpected(kind, "searching the order history", {"orders"})
        rows: list[list[str]] = await self.page.locator(self.sel.order_row).evaluate_all(
            """rows => rows.map(r => [
                r.dataset.number,
                r.querySelector('.po-reference').textContent.trim(),
                r.querySelector('.created').textContent.trim(),
            ])"""
        )
        # The history search matches substrings ("PO-1" finds "PO-12"): keep exact matches only.
        wanted = po_reference.strip().casefold()
        matches = sorted((created, number) for number, po, created in rows if po.casefold() == wanted)
        return matches[0][1] if matches else None

    @property
    def current_path(self) -> str:
        """Path of the page the browser shows (for logs and tests)."""
        return urlsplit(self.page.url).path


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _decimal(value: str | None) -> Decimal | None:
    try:
        return None if not value else Decimal(value)
    except InvalidOperation:
        return None


__all__ = ["SELECTORS", "SandboxShopPortal", "Selectors"]
