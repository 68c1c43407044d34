"""``python -m server.cli ...``: the ``procure`` command (``procure serve`` starts its workers this way)."""

from server.cli.root import main

main()
