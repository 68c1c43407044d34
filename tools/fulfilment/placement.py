"""Placement: make the ERP or a supplier's website hold exactly one order for a fulfilment's reference.

Each destination is searched for our reference before anything is ordered, so an attempt that follows a crash
records what it finds instead of ordering again. Nothing heavy starts before it is needed: the ERP client logs in
on the first ERP order, Chromium starts on the first website order (the browser pool is lazy), and Playwright is
imported only by website placements (ERP-only workers never load it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tools.erp.base import DRAFT, PLACED_STATES, QUOTATION, ErpError, ErpLine, ErpUnavailable
from tools.erp.tryton import TrytonErp
from tools.fulfilment.model import ERP, Fulfilment, FulfilmentError, Placed, Supplier
from tools.storage import ObjectStorage

if TYPE_CHECKING:
    from core.config import Settings
    from tools.erp.base import ErpAdapter
    from tools.supplier_portal.base import PortalAccount, SupplierPortal
    from tools.supplier_portal.browser import BrowserPool, BrowserRun

log = logging.getLogger(__name__)


def portal_factories() -> dict[str, Any]:
    """Page objects by ``suppliers.portal`` name (imported lazily: ERP-only workers never load Playwright)."""
    from tools.supplier_portal.sandbox_shop import SandboxShopPortal

    return {"sandbox_shop": SandboxShopPortal}


@dataclass(frozen=True, slots=True)
class WebsiteTarget:
    """Where and as whom a website order is placed.

    Attributes:
        factory: a ``SupplierPortal`` subclass with ``for_run(run, base_url=..., account=...)``.
        base_url: the site's base URL.
        account: login and password.
        lock_key: the site account's cross-process lock key (``TONERWEB:buyer@acme.test``).
    """

    factory: Any
    base_url: str
    account: PortalAccount
    lock_key: str

    def make(self, run: BrowserRun) -> SupplierPortal:
        """The page object for one browser run.

        Raises:
            RuntimeError: the page object's own lock key differs from :attr:`lock_key`.
        """
        portal: SupplierPortal = self.factory.for_run(run, base_url=self.base_url, account=self.account)
        if portal.lock_key != self.lock_key:  # the cross-process lock must be the page object's own key
            raise RuntimeError(f"portal lock key {portal.lock_key!r} != {self.lock_key!r}")
        return portal


class Placement:
    """The destinations' clients of one worker process (shared by its jobs) and the placement of one order.

    Args:
        settings: process settings (``ERP_*``, ``SUPPLIER_PORTAL_*``, ``BROWSER_*``).
        erp: an ERP adapter (tests); default ``TrytonErp.from_settings`` on first use, closed by :meth:`aclose`.
        browser_pool: a browser pool (tests); default ``BrowserPool.from_settings`` on first use.
        storage: evidence storage; default the browser pool's, else ``ObjectStorage.from_settings``.
        portals: page-object classes by ``suppliers.portal`` name; default :func:`portal_factories`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        erp: ErpAdapter | None = None,
        browser_pool: BrowserPool | None = None,
        storage: ObjectStorage | None = None,
        portals: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self._erp = erp
        self._owns_erp = erp is None
        self._browser = browser_pool
        self._owns_browser = browser_pool is None
        self._storage = storage
        self._portals = dict(portals) if portals is not None else None

    def erp(self) -> ErpAdapter:
        """The ERP adapter (created on first use).

        Raises:
            FulfilmentError: ``ERP_URL`` is not set.
        """
        if self._erp is None:
            if not self.settings.ERP_URL:
                raise FulfilmentError("no ERP is configured (ERP_URL is not set)")
            self._erp = TrytonErp.from_settings(self.settings)
        return self._erp

    def browser_pool(self) -> BrowserPool:
        """The worker's browser pool (created on first use; Chromium starts with the first run)."""
        if self._browser is None:
            from tools.supplier_portal.browser import BrowserPool, Pacing

            self._browser = BrowserPool.from_settings(
                self.settings,
                storage=self.storage,
                max_contexts=self.settings.BROWSER_MAX_CONTEXTS,
                pacing=Pacing() if self.settings.BROWSER_PACING else Pacing.off(),
            )
        return self._browser

    @property
    def storage(self) -> ObjectStorage:
        """Where evidence is (the browser pool's storage when one was given)."""
        if self._storage is None:
            if self._browser is not None and self._browser.storage is not None:
                self._storage = self._browser.storage
            else:
                self._storage = ObjectStorage.from_settings(self.settings)
        return self._storage

    def serves(self, channel: str) -> bool:
        """Whether this process is configured to place orders on ``channel`` (``erp`` or ``website``)."""
        if channel == ERP:
            return self._erp is not None or bool(self.settings.ERP_URL)
        return self.settings.SUPPLIER_PORTAL_PASSWORD is not None

    async def aclose(self) -> None:
        """Close the ERP client and Chromium if this object created them."""
        if self._erp is not None and self._owns_erp:
            await self._erp.aclose()
            self._erp = None
        if self._browser is not None and self._owns_browser:
            await self._browser.close()
            self._browser = None

    # -- ERP ----------------------------------------------------------------------------------------------
    async def in_erp(self, f: Fulfilment, description: str) -> Placed:
        """Look the reference up in the ERP; place the order only when it is absent.

        Args:
            f: the claimed fulfilment.
            description: the order's description (see :func:`tools.fulfilment.model.order_description`).

        Raises:
            FulfilmentError: a line has no SKU, no price or an unreadable amount; no ERP is configured.
            ErpError: the ERP refused or is unavailable (``retryable`` says which).
        """
        erp = self.erp()
        existing = await erp.find_by_reference(f.reference)
        if existing is not None and (existing.state in PLACED_STATES or existing.state == "cancelled"):
            log.info("fulfilment %s: %s already in the ERP as %s", f.id, f.reference, existing.number)
            return Placed(existing.number or str(existing.id), existing.state, "already_placed")
        lines = []
        for ln in f.lines:
            if not ln.get("sku"):
                raise FulfilmentError(f"line {ln['description']!r} has no SKU: the ERP needs a product code")
            if ln.get("unit_price") is None:
                raise FulfilmentError(f"line {ln['sku']} has no price")
            try:
                lines.append(
                    ErpLine(
                        product_code=ln["sku"],
                        quantity=Decimal(ln["quantity"]),
                        unit_price=Decimal(ln["unit_price"]),
                        unit=ln["unit"],
                        description=ln["description"],
                    )
                )
            except InvalidOperation as exc:
                raise FulfilmentError(f"line {ln['sku']}: unreadable amount") from exc
        order = await erp.place_order(f.reference, f.supplier, lines, description)
        if order.state not in PLACED_STATES and order.state != "cancelled":
            raise ErpUnavailable(f"ERP order {order.number or order.id} is still {order.state}")
        # An unconfirmed order found under our reference was an earlier attempt's, driven on now.
        how = "resumed" if existing is not None and existing.id == order.id else "placed"
        return Placed(order.number or str(order.id), order.state, how)

    async def discard_erp_leftover(self, f: Fulfilment) -> None:
        """After a final failure, delete a draft/quotation an earlier attempt left under our reference."""
        try:
            erp = self.erp()
            order = await erp.find_by_reference(f.reference)
            if order is not None and order.supplier_code == f.supplier and order.state in (DRAFT, QUOTATION):
                await erp.delete_draft(order.id)
                log.warning("fulfilment %s: deleted unconfirmed ERP order %s", f.id, order.id)
        except (ErpError, FulfilmentError) as exc:  # best effort: a later Retry finds and finishes it instead
            log.info("fulfilment %s: no clean-up of the ERP (%s)", f.id, exc)

    # -- websites -----------------------------------------------------------------------------------------
    def website_target(self, f: Fulfilment, supplier: Supplier | None) -> WebsiteTarget:
        """Resolve page object, URL and account of a website supplier.

        Raises:
            FulfilmentError: something is not configured.
        """
        from tools.supplier_portal.base import PortalAccount

        if supplier is None:
            raise FulfilmentError(f"supplier {f.supplier} is not registered (procure suppliers add)")
        portals = self._portals if self._portals is not None else portal_factories()
        factory = portals.get(supplier.portal or "")
        if factory is None:
            raise FulfilmentError(f"supplier {f.supplier}: unknown website page object {supplier.portal!r}")
        base_url = supplier.url or self.settings.SUPPLIER_PORTAL_URL
        if not base_url:
            raise FulfilmentError(f"supplier {f.supplier}: no website URL (suppliers.url or SUPPLIER_PORTAL_URL)")
        if not supplier.account:
            raise FulfilmentError(f"supplier {f.supplier}: no website account (procure suppliers add --account)")
        if self.settings.SUPPLIER_PORTAL_PASSWORD is None:
            raise FulfilmentError("no website password is configured (SUPPLIER_PORTAL_PASSWORD)")
        account = PortalAccount(supplier.account, self.settings.SUPPLIER_PORTAL_PASSWORD.get_secret_value())
        # SupplierPortal.lock_key's formula: the page object's site code and the account's login.
        lock_key = f"{factory.supplier or supplier.code}:{supplier.account.casefold()}"
        return WebsiteTarget(factory, base_url, account, lock_key)

    async def on_website(self, f: Fulfilment, target: WebsiteTarget) -> Placed:
        """Place the order in one browser run (the page object looks the PO up in the order history first).

        Raises:
            FulfilmentError: a line has no SKU or a quantity that is not a whole number of at least 1.
            PortalError: the site failed or refused (``retryable`` says which; evidence keys attached).
        """
        from tools.supplier_portal.base import OrderLine
        from tools.supplier_portal.browser import place_order_in_browser

        lines = []
        for ln in f.lines:
            if not ln.get("sku"):
                raise FulfilmentError(f"line {ln['description']!r} has no SKU: the website needs an article number")
            quantity = Decimal(ln["quantity"])
            if quantity != quantity.to_integral_value() or quantity < 1:
                raise FulfilmentError(f"line {ln['sku']}: the website sells whole units, not {ln['quantity']}")
            lines.append(OrderLine(ln["sku"], int(quantity)))
        result = await place_order_in_browser(
            self.browser_pool(),
            target.make,
            f.reference,
            lines,
            account_key=target.lock_key,
            attempt=f.attempts,
        )
        return Placed(result.order_number, "placed", result.status, tuple(result.evidence_keys))
