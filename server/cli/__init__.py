"""The ``procure`` command line: ``procure = "server.cli:main"`` (see :mod:`server.cli.root`)."""

from server.cli.root import app, main

__all__ = ["app", "main"]
