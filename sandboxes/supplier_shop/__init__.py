"""Reference supplier website (``procure sandbox supplier``): a small B2B web shop that supplier-portal automation is tested against.

It stands in for a third-party site (the ``TONERWEB`` supplier of the demo catalogue), so it behaves like one:
server-rendered HTML forms, a login form with a CSRF token, a session cookie that expires, a cart kept on the
server per account, a checkout that asks for the customer's PO reference, an order history searchable by that
reference, and switches that make it misbehave the way real shops do (slowness, HTTP 429, a session that
expires mid-checkout, a JavaScript bot check, a checkout that records the order and then fails).

State lives in memory, per app instance, behind one lock (the app may be served by several threads).

Pages carry ``<body data-page="...">`` (``login``, ``search``, ``product``, ``cart``, ``checkout``, ``order``,
``orders``, ``interstitial``, ``rate-limited``, ``error``, ``not-found``, ``forbidden``) so automation can
tell where it landed without parsing prose.

A JSON admin API for tests, exempt from every switch, lives under ``/_admin``:

* ``GET /_admin/orders[?po=...]``: all orders (number, account, po_reference, lines, total).
* ``GET /_admin/switches`` / ``POST /_admin/switches``: read / change switches (see :meth:`Switches.apply`).
* ``POST /_admin/reset``: forget orders, carts, sessions and restore the switches the app was created with.
* ``GET /_admin/health``: readiness probe.


Modules: :mod:`~.model` (records), :mod:`~.state` (what the shop remembers), :mod:`~.web` (templates,
middleware, page helpers), ``routes_*`` (account, shop, orders, admin), :mod:`~.app` (assembly, serving).
"""

from sandboxes.supplier_shop.app import DEFAULT_ACCOUNTS, create_app, run_supplier_sandbox
from sandboxes.supplier_shop.model import (
    DEFAULT_SUPPLIER,
    DuplicatePoReference,
    ShopOrder,
    ShopOrderLine,
    ShopProduct,
    Switches,
    load_products,
)
from sandboxes.supplier_shop.state import ShopState

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_SUPPLIER",
    "DuplicatePoReference",
    "ShopOrder",
    "ShopOrderLine",
    "ShopProduct",
    "ShopState",
    "Switches",
    "create_app",
    "load_products",
    "run_supplier_sandbox",
]
