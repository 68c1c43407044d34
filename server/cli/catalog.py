"""``procure catalog ...``: import an item master (CSV or the ERP), search it with scores, manage learned aliases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from core.config import Settings, get_settings

catalog_app = typer.Typer(help="The product catalogue.", no_args_is_help=True)
aliases_app = typer.Typer(help="Aliases learned from people's choices.", no_args_is_help=True)
catalog_app.add_typer(aliases_app, name="aliases")


async def _engine(settings: Settings) -> Any:
    """An engine on the configured (or embedded) database, migrated."""
    from core.db import make_engine
    from core.embedded import ensure_services
    from core.migrate import upgrade

    svc = ensure_services(settings.DATABASE_URL, settings.REDIS_URL, Path(settings.DATA_DIR))
    await asyncio.to_thread(upgrade, svc.database_url)
    return make_engine(svc.database_url, pool_size=2)


def _embedder(settings: Settings) -> Any:
    from tools.catalog.embeddings import load_embedder

    return load_embedder(settings.EMBEDDING_MODEL)


@catalog_app.command("import")
def catalog_import(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV: our template or an ERP export (Item Code, Description, UoM, Price...)"),
    ] = None,
    from_erp: Annotated[bool, typer.Option("--from-erp", help="pull products from the configured Tryton")] = False,
) -> None:
    """Import an item master: new SKUs are added, known SKUs updated, embeddings computed; a bad row writes nothing."""
    from core.repo import CatalogImportError, parse_catalog_csv
    from tools.catalog.store import import_items, items_from_erp

    if (file is None) == (not from_erp):
        typer.echo("give a CSV file or --from-erp (one of them)", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    source = str(file) if file is not None else "erp"

    async def go() -> int:
        try:
            if file is not None:
                text = file.read_text(encoding="utf-8-sig")
                items = parse_catalog_csv(text, default_currency=settings.DEFAULT_CURRENCY)
            else:
                if not settings.ERP_URL:
                    typer.echo("ERP_URL is not set", err=True)
                    return 1
                from tools.erp.tryton import TrytonClient

                async with TrytonClient.from_settings(settings) as client:
                    items = await items_from_erp(client, currency=settings.DEFAULT_CURRENCY)
        except CatalogImportError as exc:
            for n, msg in exc.errors:
                typer.echo(f"{source}:{n}: {msg}", err=True)
            typer.echo("nothing was imported", err=True)
            return 1
        except OSError as exc:
            typer.echo(f"cannot read {file}: {exc.strerror}", err=True)
            return 1
        engine = await _engine(settings)
        try:
            ins, upd = await import_items(engine, items, _embedder(settings))
        finally:
            await engine.dispose()
        typer.echo(f"imported {ins + upd} items ({ins} new, {upd} updated)")
        return 0

    raise typer.Exit(asyncio.run(go()))


@catalog_app.command("search")
def catalog_search(
    text: Annotated[str, typer.Argument(help='what a person would write, e.g. "hard hats (yellow)"')],
    limit: Annotated[int, typer.Option(min=1, max=100, help="how many candidates")] = 10,
) -> None:
    """Rank catalogue items for a text, with each part of the score (for people tuning a catalogue)."""
    from tools.catalog.store import load_index

    settings = get_settings()

    async def go() -> int:
        engine = await _engine(settings)
        try:
            index = await load_index(engine, _embedder(settings))
        finally:
            await engine.dispose()
        result = index.match(text)
        typer.echo(f"{result.status}: {', '.join(result.skus) or '-'}")
        typer.echo(f"{'sku':<16} {'lexical':>7} {'semantic':>8} {'final':>6}  attributes  name")
        for s in index.explain(text, limit):
            attrs = " ".join(s.attributes) or "-"
            typer.echo(
                f"{s.item.sku:<16} {s.lexical:>7.1f} {s.semantic:>8.3f} {s.score:>6.1f}  {attrs:<10}  {s.item.name}"
            )
        return 0

    raise typer.Exit(asyncio.run(go()))


@aliases_app.command("list")
def aliases_list(sku: Annotated[str | None, typer.Option(help="only this item's aliases")] = None) -> None:
    """List learned aliases: id, phrase, item, uses, who taught it and when."""
    from tools.catalog.aliases import list_aliases

    async def go() -> None:
        engine = await _engine(get_settings())
        try:
            rows = await list_aliases(engine, sku)
        finally:
            await engine.dispose()
        if not rows:
            typer.echo("no learned aliases")
        for a in rows:
            who = f"user {a.created_by}" if a.created_by is not None else "-"
            typer.echo(f"{a.id}\t{a.phrase}\t{a.sku}\tuses={a.uses}\t{who}\t{a.created_at:%Y-%m-%d %H:%M}")

    asyncio.run(go())


@aliases_app.command("remove")
def aliases_remove(
    alias_id: Annotated[int, typer.Argument(help="the id shown by `procure catalog aliases list`")],
) -> None:
    """Forget one learned alias (the next match no longer uses it)."""
    from tools.catalog.aliases import remove_alias

    async def go() -> int:
        engine = await _engine(get_settings())
        try:
            removed = await remove_alias(engine, alias_id)
        finally:
            await engine.dispose()
        typer.echo(f"removed alias {alias_id}" if removed else f"no alias {alias_id}", err=not removed)
        return 0 if removed else 1

    raise typer.Exit(asyncio.run(go()))
