"""``procure users add|list``: the people who may use the agent, their role, site and approval limit."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from core.config import get_settings
from core.domain import Role
from core.repo import add_user, list_users
from server.cli.common import migrated_engine

users_app = typer.Typer(help="People who may use the agent.", no_args_is_help=True)


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
        engine = await migrated_engine(settings)
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

    async def go() -> None:
        engine = await migrated_engine(get_settings())
        try:
            for u in await list_users(engine):
                typer.echo(
                    f"{u.id}\t{u.phone}\t{u.display_name}\t{u.role.value}\t{u.site or '-'}\t{u.approval_limit or '-'}"
                )
        finally:
            await engine.dispose()

    asyncio.run(go())
