"""``procure erp setup|serve``, ``procure sandbox supplier`` and ``procure suppliers add|list``.

Defines its Typer apps (``erp_app``, ``sandbox_app``, ``suppliers_app``); :mod:`server.cli.root` adds them to
``procure``. Reference systems live in :mod:`sandboxes`, imported inside the commands: they are optional
heavy dependencies (trytond, proteus) that the agent itself never needs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from core.config import get_settings
from core.db import suppliers
from core.repo import upsert_suppliers
from server.cli.common import migrated_engine, setup_logging

#: Demo catalogue shipped with the repository.
DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.csv"

erp_app = typer.Typer(help="The ERP (Tryton) the orders go to.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Reference third-party systems for development and tests.", no_args_is_help=True)
suppliers_app = typer.Typer(help="Suppliers and where they take orders (ERP or website).", no_args_is_help=True)


@erp_app.command("setup")
def erp_setup(
    catalog: Annotated[Path, typer.Option(help="catalogue CSV whose suppliers and products go into the ERP")] = (
        DEFAULT_CATALOG
    ),
    company: Annotated[str, typer.Option(help="the buying company's name")] = "Procure Demo Company",
    supplier: Annotated[
        list[str] | None, typer.Option("--supplier", help="only this supplier code (repeatable); default all")
    ] = None,
    database_uri: Annotated[
        str | None, typer.Option(help="PostgreSQL server URI for Tryton (default: SQLite under DATA_DIR)")
    ] = None,
) -> None:
    """Prepare the bundled Tryton database ERP_DATABASE (company, accounts, suppliers, products); safe to re-run."""
    setup_logging()
    from sandboxes.tryton.processes import ErpSetupError
    from sandboxes.tryton.server import erp_setup_command

    settings = get_settings()
    try:
        result = erp_setup_command(settings, catalog, company, database_uri=database_uri, suppliers=supplier or None)
    except (ValueError, OSError, ErpSetupError) as exc:
        typer.echo(f"erp setup failed: {exc}", err=True)
        raise typer.Exit(1) from None
    where = result.sqlite_path or result.database_uri
    how = "copied from template" if result.from_template else ("created" if result.created else "updated")
    typer.echo(
        f"Tryton database {result.database!r} {how} in {result.seconds:.1f} s at {where}: "
        f"{len(result.suppliers)} suppliers ({', '.join(result.suppliers)}), {result.products} products"
    )
    typer.echo("Next: procure erp serve, then set ERP_URL to the address it prints.")


@erp_app.command("serve")
def erp_serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    database_uri: Annotated[str | None, typer.Option(help="PostgreSQL server URI (as given to erp setup)")] = None,
) -> None:
    """Serve the bundled Tryton (database ERP_DATABASE) over JSON-RPC until interrupted."""
    setup_logging()
    from sandboxes.tryton.server import TrytonServerError, erp_serve_command

    try:
        code = erp_serve_command(get_settings(), host, port, database_uri=database_uri)
    except FileNotFoundError as exc:
        typer.echo(f"{exc}", err=True)
        raise typer.Exit(1) from None
    except TrytonServerError as exc:
        typer.echo(f"trytond did not start: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@sandbox_app.command("supplier")
def sandbox_supplier(
    host: Annotated[str, typer.Option(help="address to listen on (its admin API has no authentication)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8090,
    catalog: Annotated[Path | None, typer.Option(help="catalogue CSV (TONERWEB rows become products)")] = None,
) -> None:
    """Serve the reference supplier shop (TONERWEB; account buyer@acme.test / s3cret) until interrupted."""
    setup_logging()
    from sandboxes.supplier_shop import run_supplier_sandbox

    if catalog is not None and not catalog.exists():
        raise typer.BadParameter(f"{catalog} does not exist", param_hint="--catalog")
    typer.echo(f"reference shop on http://{host}:{port} (register it: procure suppliers add --channel website ...)")
    run_supplier_sandbox(host, port, catalog)


@suppliers_app.command("add")
def suppliers_add(
    code: Annotated[str, typer.Option(help="supplier code, as in the catalogue (e.g. TONERWEB)")],
    name: Annotated[str, typer.Option(help="display name")],
    channel: Annotated[str, typer.Option(help="erp|website: where the supplier takes orders")],
    portal: Annotated[str | None, typer.Option(help="website page object (sandbox_shop)")] = None,
    url: Annotated[str | None, typer.Option(help="website base URL (default SUPPLIER_PORTAL_URL)")] = None,
    account: Annotated[str | None, typer.Option(help="website login; the password is SUPPLIER_PORTAL_PASSWORD")] = None,
) -> None:
    """Register a supplier, or update the one with this code."""
    from tools.fulfilment import CHANNELS, portal_factories  # heavy (ERP and website clients): on use

    code = code.strip().upper()
    if not code:
        raise typer.BadParameter("empty code", param_hint="--code")
    if channel not in CHANNELS:
        raise typer.BadParameter("channel must be erp or website", param_hint="--channel")
    if channel == "website":
        if portal is None:
            portal = "sandbox_shop"
        if portal not in portal_factories():
            raise typer.BadParameter(
                f"unknown page object; known: {', '.join(portal_factories())}", param_hint="--portal"
            )
        if not account:
            raise typer.BadParameter("a website supplier needs --account", param_hint="--account")
    row: dict[str, Any] = {
        "code": code,
        "name": name.strip() or code,
        "channel": channel,
        "portal": portal if channel == "website" else None,
        "url": url.rstrip("/") if url else None,
        "account": account if channel == "website" else None,
    }

    async def go() -> None:
        engine = await migrated_engine(get_settings())
        try:
            await upsert_suppliers(engine, [row])
        finally:
            await engine.dispose()

    asyncio.run(go())
    typer.echo(
        f"supplier {code}: {row['name']} via {channel}"
        + (f" ({portal}, {url or 'SUPPLIER_PORTAL_URL'})" if channel == "website" else "")
    )


@suppliers_app.command("list")
def suppliers_list() -> None:
    """List registered suppliers (unregistered catalogue suppliers order through the ERP)."""

    async def go() -> list[Any]:
        engine = await migrated_engine(get_settings())
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(select(suppliers).order_by(suppliers.c.code))).all())
        finally:
            await engine.dispose()

    for r in asyncio.run(go()):
        typer.echo(f"{r.code}\t{r.name}\t{r.channel}\t{r.portal or '-'}\t{r.url or '-'}\t{r.account or '-'}")
