"""Reference Tryton ERP for demos and tests: prepare a database (``procure erp setup``) and serve it (``erp serve``).

Modules: :mod:`~.setup` (create or update a database from a catalogue, SQLite templates), :mod:`~.populate`
(the proteus steps, run in a child process), :mod:`~.processes` (trytond configuration and child processes),
:mod:`~.server` (``trytond`` as a child process, and the CLI commands). The agent talks to any Tryton through
:mod:`tools.erp` (JSON-RPC over httpx) and never imports this package.
"""

from sandboxes.tryton.processes import ErpSetupError
from sandboxes.tryton.server import TrytonServer, TrytonServerError, erp_serve_command, erp_setup_command, free_port
from sandboxes.tryton.setup import SetupResult, load_catalog_csv, setup_database

__all__ = [
    "ErpSetupError",
    "SetupResult",
    "TrytonServer",
    "TrytonServerError",
    "erp_serve_command",
    "erp_setup_command",
    "free_port",
    "load_catalog_csv",
    "setup_database",
]
