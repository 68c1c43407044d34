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
import sys
from typing import Annotated

import typer

from core.config import get_settings
from core.migrate import upgrade
from server.cli.common import resolve_services, setup_logging

log = logging.getLogger("procure")
#: ``serve`` and ``worker`` wait this long for a database that is still starting (or restarting) before failing.
STARTUP_DB_WAIT_SECONDS = 60.0
#: On SIGTERM, seconds uvicorn gives open requests, then the workers get to stop (then SIGKILL): stop is < 10 s.
GRACEFUL_SECONDS = 3
WORKER_STOP_SECONDS = 5.0


def worker() -> None:
    """Run an arq worker (turns, fulfilment) against DATABASE_URL / REDIS_URL or the embedded default.

    The worker rides out Redis and PostgreSQL outages (:mod:`server.worker.resilient`) and stops on SIGTERM/SIGINT.
    """
    setup_logging()
    die_with_parent()
    from server.worker.resilient import run_worker  # the worker's modules (graphs, models) load only for this command
    from server.worker.settings import worker_settings

    settings = get_settings()
    svc = resolve_services(settings)
    try:
        upgrade(svc.database_url, wait_seconds=STARTUP_DB_WAIT_SECONDS)
        log.info("worker started (max_jobs=%s)", settings.WORKER_MAX_JOBS)
        run_worker(lambda: worker_settings(settings, svc.database_url, svc.redis_url))
    finally:
        svc.stop()  # embedded servers this command started for itself (none under `procure serve`)


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(help="arq worker processes to start and supervise beside the web server (0: web only)")
    ] = 1,
) -> None:
    """Run the web server and supervised arq worker(s) (embedded PostgreSQL/Redis when no URLs are set).

    A worker that exits is restarted with backoff (:mod:`server.supervisor`; state in ``/readyz``). SIGTERM or
    SIGINT stops the web server, the workers and the embedded servers this command started, within 10 s.
    """
    setup_logging()
    import uvicorn  # the web app's modules load only for this command

    from server.app import create_app
    from server.supervisor import Supervisor

    settings = get_settings()
    svc = resolve_services(settings)
    supervisor: Supervisor | None = None
    try:
        upgrade(svc.database_url, wait_seconds=STARTUP_DB_WAIT_SECONDS)
        env = dict(os.environ, DATABASE_URL=svc.database_url, REDIS_URL=svc.redis_url)
        supervisor = Supervisor([sys.executable, "-m", "server.cli", "worker"], env, workers).start()
        app = create_app(settings, svc.database_url, svc.redis_url)
        if workers > 0:  # web only (--workers 0): /readyz has no worker fields
            app.state.supervisor = supervisor
        log.info(
            "serving on http://%s:%s (database %s, redis %s, %d worker(s))",
            host,
            port,
            "embedded" if svc.postgres else "external",
            "embedded" if svc.redis else "external",
            workers,
        )
        # uvicorn re-raises the signal it caught once it has shut down; the CLI's handler turns SIGTERM into
        # SystemExit (server.cli.root.main), so this `finally` runs.
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=GRACEFUL_SECONDS)
    finally:
        if supervisor is not None:
            supervisor.stop(timeout=WORKER_STOP_SECONDS)
        svc.stop()
        log.info("stopped")


def die_with_parent() -> None:
    """Under ``procure serve`` (``PROCURE_PARENT_PID`` set): ask Linux for SIGTERM when the parent dies.

    ``prctl(PR_SET_PDEATHSIG)``; a parent already gone (the race before the call) ends this process at once.
    """
    parent = os.environ.get("PROCURE_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() != int(parent):
        raise SystemExit("the supervising process is gone")


def demo(
    keep: Annotated[bool, typer.Option(help="keep the data folder's previous demo data")] = False,
) -> None:
    """Replay a realistic conversation as signed Cloud API webhooks through the real HTTP endpoint, and print it."""
    setup_logging("WARNING")
    from server.demo import run_demo  # the demo's reference systems load only for this command

    raise typer.Exit(asyncio.run(run_demo(get_settings(), keep=keep)))
