"""Reference supplier shop, assembly: one shop (its own state) as an ASGI app, and serving it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from core.domain import CatalogItem
from sandboxes.supplier_shop import routes_account, routes_admin, routes_orders, routes_shop
from sandboxes.supplier_shop.model import DEFAULT_SUPPLIER, ShopProduct, Switches, load_products
from sandboxes.supplier_shop.state import ShopState
from sandboxes.supplier_shop.web import Pages, SwitchesMiddleware

logger = logging.getLogger("sandboxes.supplier_shop")

#: Accounts of a fresh shop: email -> password.
DEFAULT_ACCOUNTS: Mapping[str, str] = {"buyer@acme.test": "s3cret"}
#: Demo catalogue shipped with the repository (absent from an installed wheel).
DEFAULT_CATALOG_CSV = Path(__file__).resolve().parents[2] / "examples" / "catalog.csv"


def create_app(
    products: Iterable[ShopProduct | CatalogItem] | None = None,
    accounts: Mapping[str, str] | None = None,
    switches: Switches | Mapping[str, Any] | None = None,
    *,
    session_ttl_seconds: float = 1800.0,
    seed: int | None = None,
) -> FastAPI:
    """Build one shop (its own state) as an ASGI app.

    Args:
        products: the assortment; ``None`` reads the ``TONERWEB`` rows of ``examples/catalog.csv`` when the
            repository is present, else the shop is empty.
        accounts: email -> password; default :data:`DEFAULT_ACCOUNTS`.
        switches: initial switches, as :class:`Switches` or the mapping :meth:`Switches.apply` takes.
        session_ttl_seconds: session lifetime from sign-in (also the cookie's ``Max-Age``).
        seed: seed for the probabilistic rate limit, for reproducible tests.

    Returns:
        The FastAPI app; its state is ``app.state.shop`` (a :class:`ShopState`).

    Raises:
        ValueError: a switch mapping is malformed.
    """
    if products is None:
        products = load_products(DEFAULT_CATALOG_CSV) if DEFAULT_CATALOG_CSV.exists() else []
    shop_products = [p if isinstance(p, ShopProduct) else ShopProduct.from_catalog_item(p) for p in products]
    if isinstance(switches, Switches):
        initial = replace(switches)
    else:
        initial = Switches()
        initial.apply(switches or {})
    state = ShopState(
        shop_products, DEFAULT_ACCOUNTS if accounts is None else accounts, initial, session_ttl_seconds, seed
    )

    app = FastAPI(title="TonerWeb sandbox shop", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.shop = state
    app.add_middleware(SwitchesMiddleware, state=state)

    pages = Pages(state)
    app.include_router(routes_account.router(pages))
    app.include_router(routes_shop.router(pages))
    app.include_router(routes_orders.router(pages))
    app.include_router(routes_admin.router(state))
    return app


def run_supplier_sandbox(
    host: str = "127.0.0.1",
    port: int = 8090,
    catalog_csv: str | Path | None = None,
    *,
    supplier: str = DEFAULT_SUPPLIER,
    accounts: Mapping[str, str] | None = None,
    log_level: str = "info",
) -> None:
    """Serve the reference shop until interrupted (``procure sandbox supplier``).

    Args:
        host: interface to bind; keep ``127.0.0.1`` unless the shop must be reachable from elsewhere (its
            admin API has no authentication).
        port: TCP port.
        catalog_csv: catalogue whose ``supplier`` rows become the products; ``None`` uses the demo catalogue.
        supplier: supplier code to take from the catalogue.
        accounts: email -> password; default ``buyer@acme.test`` / ``s3cret``.
        log_level: uvicorn log level.

    Raises:
        OSError: the catalogue cannot be read or the port cannot be bound.
    """
    import uvicorn

    path = Path(catalog_csv) if catalog_csv is not None else DEFAULT_CATALOG_CSV
    products = load_products(path, supplier) if path.exists() or catalog_csv is not None else []
    app = create_app(products, accounts)
    logger.info("sandbox shop: %d products, accounts %s", len(products), sorted(accounts or DEFAULT_ACCOUNTS))
    uvicorn.run(app, host=host, port=port, log_level=log_level)
