"""Ordering on supplier websites with a real browser: the portal interface, the browser pool, page objects.

Typical use in a worker job::

    pool = BrowserPool.from_settings(settings)            # once per worker process (start-up hook)
    portal_for = lambda run: SandboxShopPortal.for_run(run, base_url=url, account=account)
    result = await place_order_in_browser(pool, portal_for, "PR-12", lines, account_key="TONERWEB:" + user)
"""

from tools.supplier_portal.base import (
    OrderLine,
    PortalAccount,
    PortalCheckoutFailed,
    PortalError,
    PortalLoginFailed,
    PortalProductNotFound,
    PortalRateLimited,
    PortalResult,
    PortalSessionExpired,
    PortalTimeout,
    Product,
    SupplierPortal,
)
from tools.supplier_portal.browser import BrowserPool, BrowserRun, Pacing, Timeouts, place_order_in_browser

__all__ = [
    "BrowserPool",
    "BrowserRun",
    "OrderLine",
    "Pacing",
    "PortalAccount",
    "PortalCheckoutFailed",
    "PortalError",
    "PortalLoginFailed",
    "PortalProductNotFound",
    "PortalRateLimited",
    "PortalResult",
    "PortalSessionExpired",
    "PortalTimeout",
    "Product",
    "SupplierPortal",
    "Timeouts",
    "place_order_in_browser",
]
