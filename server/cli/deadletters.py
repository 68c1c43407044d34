"""``procure deadletters list|replay``: inbound messages that could not be stored, and storing them again.

A dead letter is written when a webhook's message is refused by validation or by the database (see
:mod:`server.ingest.deadletters`); the provider got a 200 and will not send it again, so this is where an operator
sees it and, once the code or the data is fixed, replays it: the raw body is parsed again with the current code
and the messages go to the inbox and are scheduled as a webhook's would be.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from core.config import get_settings
from core.migrate import upgrade
from server.cli.common import resolve_services
from server.ingest import deadletters as DL
from server.services import Services

deadletters_app = typer.Typer(help="Inbound messages that could not be stored.", no_args_is_help=True)


async def _services() -> Services:
    settings = get_settings()
    svc = resolve_services(settings)
    await asyncio.to_thread(upgrade, svc.database_url)
    services = await Services.create(settings, svc.database_url, svc.redis_url, pool_size=2, chat_model=False)
    await services.pg.wait()
    return services


@deadletters_app.command("list")
def deadletters_list(
    all_: Annotated[bool, typer.Option("--all", help="also the ones already replayed")] = False,
    limit: Annotated[int, typer.Option(help="at most this many", min=1)] = 100,
) -> None:
    """Pending dead letters, oldest first: id, received, provider, reason, the body's first 80 characters."""

    async def go() -> None:
        services = await _services()
        try:
            letters = await DL.list_letters(services.pg, include_replayed=all_, limit=limit)
        finally:
            await _close(services)
        for d in letters:
            state = f"\treplayed {d.replayed_at:%Y-%m-%d %H:%M:%S}" if d.replayed_at else ""
            typer.echo(f"{d.id}\t{d.received_at:%Y-%m-%d %H:%M:%S}\t{d.provider}\t{d.reason}\t{d.preview()}{state}")
        if not letters:
            typer.echo("no dead letters" if all_ else "no pending dead letters")

    asyncio.run(go())


@deadletters_app.command("replay")
def deadletters_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids (see `procure deadletters list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every pending dead letter")] = False,
) -> None:
    """Parse the letters' raw bodies again and store their messages; exit 1 when any still fails.

    A replayed letter is marked (``replayed_at``, ``replay_result``); one that fails again stays pending with
    the new reason.
    """
    if bool(ids) == all_:
        raise typer.BadParameter("give dead letter ids or --all (not both)")

    async def go() -> int:
        services = await _services()
        failed = 0
        try:
            if all_:
                letters = await DL.list_letters(services.pg, limit=1_000_000)
            else:
                letters = await DL.get_letters(services.pg, ids or [])
                missing = sorted(set(ids or []) - {d.id for d in letters})
                for i in missing:
                    typer.echo(f"{i}\tno such dead letter", err=True)
                failed += len(missing)
            assert services.ingest is not None
            for d in letters:
                if d.replayed_at is not None:
                    typer.echo(f"{d.id}\talready replayed: {d.replay_result}")
                    continue
                ok, outcome = await DL.replay(
                    services.pg, services.channels, services.ingest, d, services.settings.MAX_TEXT_CHARS
                )
                typer.echo(f"{d.id}\t{'replayed' if ok else 'failed'}\t{outcome}")
                failed += not ok
        finally:
            await _close(services)
        return failed

    raise typer.Exit(1 if asyncio.run(go()) else 0)


async def _close(services: Services) -> None:
    if services.ingest is not None and services.ingest._tasks:
        await services.ingest.drain()  # the replayed messages' turns are scheduled before the process exits
    await services.aclose()
