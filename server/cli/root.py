"""The root ``procure`` command (typer): the command groups of :mod:`server.cli` and the plug-in commands.

Groups, one module each: ``db`` (:mod:`~server.cli.db`), ``users`` (:mod:`~server.cli.users`), ``catalog``
(:mod:`~server.cli.catalog`), ``erp``, ``sandbox`` and ``suppliers`` (:mod:`~server.cli.fulfilment`); the
top-level ``serve``, ``worker`` and ``demo`` (:mod:`~server.cli.run`) and ``check`` (:mod:`~server.cli.check`).
Command modules import :mod:`server.cli.common` and never each other; only this module assembles them.

Plug-in commands come from the ``procure.commands`` entry-point group: ``name = "module:function"``, where the
function takes the remaining arguments (``list[str]``) and returns the exit code. ``procure eval`` is one (the
evaluation runner, ``evals.cli:main``, declared in ``pyproject.toml``): ``server`` never imports ``evals``
(the layer rule, ``tests/test_layers.py``), and an install without the evaluation suites simply has no ``eval``.
The plug-in's module is imported only when its command runs.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

import typer

from server.cli import check, run
from server.cli.catalog import catalog_app
from server.cli.db import db_app
from server.cli.deadletters import deadletters_app
from server.cli.fulfilment import erp_app, sandbox_app, suppliers_app
from server.cli.users import users_app

#: Entry-point group of plug-in commands (see the module docstring).
PLUGIN_GROUP = "procure.commands"

app = typer.Typer(help="WhatsApp procurement agent.", no_args_is_help=True, add_completion=False)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(catalog_app, name="catalog")
app.add_typer(erp_app, name="erp")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(suppliers_app, name="suppliers")
app.add_typer(deadletters_app, name="deadletters")
app.command()(run.worker)
app.command()(run.serve)
app.command()(run.demo)
app.command()(check.check)


def _plugin(entry: EntryPoint) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        raise typer.Exit(entry.load()(list(ctx.args)))

    return command


def add_plugins(target: typer.Typer, group: str = PLUGIN_GROUP) -> list[str]:
    """Add a command to ``target`` for every entry point of ``group``; returns their names.

    Each command passes all its arguments (``--help`` included) to the entry point's function and exits with
    the code it returns.
    """
    names = []
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        target.command(
            name=entry.name,
            help=f"Run {entry.value} (its own options; --help lists them).",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            add_help_option=False,
        )(_plugin(entry))
        names.append(entry.name)
    return names


add_plugins(app)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Console-script entry point.

    SIGTERM becomes ``SystemExit(143)``, like Ctrl-C becomes ``KeyboardInterrupt``: ``finally`` blocks and
    :mod:`atexit` handlers run, so a command stops the embedded servers it started (``core.embedded``) however it
    is stopped. Commands that handle signals themselves (uvicorn in ``serve``, arq in ``worker``) replace the
    handler while they run.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app()
