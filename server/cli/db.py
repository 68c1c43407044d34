"""``procure db upgrade``: apply the database migrations and the LangGraph checkpointer's tables."""

from __future__ import annotations

import typer

from core.config import get_settings
from core.migrate import upgrade
from server.cli.common import resolve_services, setup_logging

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (and the LangGraph checkpointer's tables)."""
    setup_logging()
    svc = resolve_services(get_settings())
    upgrade(svc.database_url)
    typer.echo("database is up to date")
