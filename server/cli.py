"""The ``procure`` command line (typer): serve, worker, db, users, catalog, demo, eval, erp, sandbox."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from core.config import get_settings
from server.cli_catalog import catalog_app
from server.cli_common import migrated_engine as _engine
from server.cli_common import resolve_services, setup_logging
from server.cli_fulfilment import erp_app, sandbox_app, suppliers_app

app = typer.Typer(help="WhatsApp procurement agent.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="People who may use the agent.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(catalog_app, name="catalog")
app.add_typer(erp_app, name="erp")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(suppliers_app, name="suppliers")

log = logging.getLogger("procure")
#: ``serve`` and ``worker`` wait this long for a database that is still starting (or restarting) before failing.
STARTUP_DB_WAIT_SECONDS = 60.0


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (and the LangGraph checkpointer's tables)."""
    setup_logging()
    from core.migrate import upgrade

    svc = resolve_services(get_settings())
    upgrade(svc.database_url)
    typer.echo("database is up to date")


@users_app.command("add")
def users_add(
    phone: Annotated[str, typer.Option(help="E.164 number, e.g. +254700000001")],
    name: Annotated[str, typer.Option(help="display name")],
    role: Annotated[str, typer.Option(help="requester|approver|buyer|admin")],
    site: Annotated[str | None, typer.Option(help="usual delivery site")] = None,
    approval_limit: Annotated[
        str | None, typer.Option("--approval-limit", help="largest total they may approve")
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="currency of the approval limit (default DEFAULT_CURRENCY)")
    ] = None,
) -> None:
    """Add a user, or update the one with this phone number."""
    from core.domain import Role
    from core.repo import add_user

    settings = get_settings()
    try:
        Role(role)
    except ValueError:
        raise typer.BadParameter("role must be requester, approver, buyer or admin", param_hint="--role") from None
    limit = None
    if approval_limit is not None:
        try:
            limit = Decimal(approval_limit)
        except InvalidOperation:
            raise typer.BadParameter("not a number", param_hint="--approval-limit") from None

    async def go() -> None:
        engine = await _engine(settings)
        try:
            u = await add_user(
                engine,
                phone=phone,
                name=name,
                role=role,
                site=site,
                approval_limit=limit,
                currency=currency or settings.DEFAULT_CURRENCY,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        finally:
            await engine.dispose()
        typer.echo(
            f"user {u.id}: {u.display_name} {u.phone} {u.role.value} site={u.site or '-'} limit={u.approval_limit or '-'}"
        )

    asyncio.run(go())


@users_app.command("list")
def users_list() -> None:
    """List users."""
    from core.repo import list_users

    async def go() -> None:
        engine = await _engine(get_settings())
        try:
            for u in await list_users(engine):
                typer.echo(
                    f"{u.id}\t{u.phone}\t{u.display_name}\t{u.role.value}\t{u.site or '-'}\t{u.approval_limit or '-'}"
                )
        finally:
            await engine.dispose()

    asyncio.run(go())


@app.command()
def worker() -> None:
    """Run an arq worker (turns, fulfilment) against DATABASE_URL / REDIS_URL or the embedded default."""
    setup_logging()
    from arq.worker import Worker

    from core.migrate import upgrade
    from server.worker import worker_settings

    settings = get_settings()
    svc = resolve_services(settings)
    upgrade(svc.database_url, wait_seconds=STARTUP_DB_WAIT_SECONDS)
    kwargs = worker_settings(settings, svc.database_url, svc.redis_url)
    w = Worker(**kwargs)
    log.info("worker started (max_jobs=%s)", settings.WORKER_MAX_JOBS)
    w.run()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="arq worker processes to start beside the web server")] = 1,
) -> None:
    """Run the web server and arq worker(s) as one process group (embedded PostgreSQL/Redis when no URLs are set)."""
    setup_logging()
    import uvicorn

    from core.migrate import upgrade
    from server.app import create_app

    settings = get_settings()
    svc = resolve_services(settings)
    upgrade(svc.database_url, wait_seconds=STARTUP_DB_WAIT_SECONDS)
    env = dict(os.environ, DATABASE_URL=svc.database_url, REDIS_URL=svc.redis_url)
    children = [
        subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env) for _ in range(max(0, workers))
    ]
    log.info(
        "serving on http://%s:%s (database %s, redis %s)",
        host,
        port,
        "embedded" if svc.postgres else "external",
        "embedded" if svc.redis else "external",
    )
    try:
        uvicorn.run(create_app(settings, svc.database_url, svc.redis_url), host=host, port=port, log_level="info")
    finally:
        for c in children:
            c.send_signal(signal.SIGTERM)
        for c in children:
            try:
                c.wait(15)
            except subprocess.TimeoutExpired:
                c.kill()
        svc.stop()


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="keep the data folder's previous demo data")] = False,
) -> None:
    """Replay a realistic conversation as signed Cloud API webhooks through the real HTTP endpoint, and print it."""
    setup_logging("WARNING")
    from server.demo import run_demo

    raise typer.Exit(asyncio.run(run_demo(get_settings(), keep=keep)))


@app.command(name="eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def eval_(ctx: typer.Context) -> None:
    """Run the evaluation suites: ``procure eval [--dataset NAME] [--model MODEL|none] [--repeat K] [--compare A B]``."""
    from evals.runner import main as eval_main

    raise typer.Exit(eval_main(list(ctx.args)))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
