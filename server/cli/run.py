"""``procure serve``, ``procure worker`` and ``procure demo``: the processes of a deployment, and the demo.

Top-level commands, registered on ``procure`` itself by :mod:`server.cli.root`.
Each command imports what it runs (the web app, the worker's graphs, the demo's reference systems) when it runs,
so ``procure users list`` or ``procure --help`` never load them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

from core.config import get_settings
from core.migrate import upgrade
from server.cli.common import resolve_services, setup_logging

log = logging.getLogger("procure")
#: ``serve`` and ``worker`` wait this long for a database that is still starting (or restarting) before failing.
STARTUP_DB_WAIT_SECONDS = 60.0


def worker() -> None:
    """Run an arq worker (turns, fulfilment) against DATABASE_URL / REDIS_URL or the embedded default."""
    setup_logging()
    from arq.worker import Worker  # the worker's modules (graphs, models) load only for this command

    from server.worker.settings import worker_settings

    settings = get_settings()
    svc = resolve_services(settings)
    upgrade(svc.database_url, wait_seconds=STARTUP_DB_WAIT_SECONDS)
    kwargs = worker_settings(settings, svc.database_url, svc.redis_url)
    w = Worker(**kwargs)
    log.info("worker started (max_jobs=%s)", settings.WORKER_MAX_JOBS)
    w.run()


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="arq worker processes to start beside the web server")] = 1,
) -> None:
    """Run the web server and arq worker(s) as one process group (embedded PostgreSQL/Redis when no URLs are set)."""
    setup_logging()
    import uvicorn  # the web app's modules load only for this command

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


def demo(
    keep: Annotated[bool, typer.Option(help="keep the data folder's previous demo data")] = False,
) -> None:
    """Replay a realistic conversation as signed Cloud API webhooks through the real HTTP endpoint, and print it."""
    setup_logging("WARNING")
    from server.demo import run_demo  # the demo's reference systems load only for this command

    raise typer.Exit(asyncio.run(run_demo(get_settings(), keep=keep)))
