"""Run the bundled reference Tryton (``trytond``) as a child process, and the ``procure erp`` commands.

``trytond -c FILE -d DB`` loads the database's pool before it listens (``trytond/cli/__init__.py``), so once
JSON-RPC answers, logins work. ``-d`` is required: without it every login fails. SQLite by default (one file
under ``DATA_DIR/tryton/db``); PostgreSQL with a server URI.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import httpx

from sandboxes.tryton.processes import child_env, pg_server_uri, trytond_tool, write_trytond_config
from sandboxes.tryton.setup import SetupResult, load_catalog_csv, setup_database

if TYPE_CHECKING:
    from core.config import Settings

logger = logging.getLogger(__name__)


class TrytonServerError(RuntimeError):
    """The Tryton server did not start (the message holds the tail of its log)."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class TrytonServer:
    """A ``trytond`` child process serving one database over JSON-RPC.

    Usage::

        with TrytonServer("acme", data_dir=settings.DATA_DIR) as server:
            client = TrytonClient(server.url, "acme", "admin", password)

    Args:
        database: Tryton database name (for SQLite, the file ``{db_dir}/{database}.sqlite`` must exist: see
            :func:`sandboxes.tryton.setup.setup_database`).
        data_dir: ``DATA_DIR``; the config file goes to ``data_dir/tryton/``, the log to
            ``data_dir/tryton/logs``.
        db_dir: SQLite directory (default ``data_dir/tryton/db``).
        database_uri: PostgreSQL server URI (``postgresql://user:pw@host:port/``) instead of SQLite.
        host: interface to listen on (``127.0.0.1``: the reference ERP is not meant to face a network).
        port: TCP port; a free one is picked when ``None``.
        startup_timeout: seconds to wait for JSON-RPC to answer (pool loading takes 2-5 s).
        session_timeout: Tryton ``[session] timeout``: seconds of inactivity before a session expires.
    """

    def __init__(
        self,
        database: str,
        *,
        data_dir: Path,
        db_dir: Path | None = None,
        database_uri: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 60.0,
        session_timeout: int | None = None,
    ) -> None:
        self.database = database
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        tryton_dir = data_dir.resolve() / "tryton"
        self.db_dir = None if database_uri else (db_dir or tryton_dir / "db").resolve()
        self.database_uri = pg_server_uri(database_uri) if database_uri else None
        self.config_path = tryton_dir / f"trytond-{database}-{self.port}.conf"
        self.log_path = tryton_dir / "logs" / f"trytond-{database}-{self.port}.log"
        extra = {"session": {"timeout": str(session_timeout)}} if session_timeout else None
        self._extra = extra
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL (``http://host:port``); the JSON-RPC endpoint is ``{url}/{database}/rpc/``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running trytond, or ``None``."""
        return self._proc.pid if self._proc else None

    def start(self) -> TrytonServer:
        """Start trytond and wait until JSON-RPC answers.

        Raises:
            FileNotFoundError: the SQLite database file does not exist.
            TrytonServerError: the process exited or did not answer within ``startup_timeout``.
        """
        if self._proc is not None:
            return self
        if self.db_dir is not None and not (self.db_dir / f"{self.database}.sqlite").exists():
            raise FileNotFoundError(f"{self.db_dir / (self.database + '.sqlite')} (run `procure erp setup` first)")
        write_trytond_config(
            self.config_path,
            db_dir=self.db_dir,
            database_uri=self.database_uri,
            listen=f"{self.host}:{self.port}",
            extra=self._extra,
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [trytond_tool("trytond"), "-c", str(self.config_path), "-d", self.database]
        logger.info("starting trytond for %s on %s (log %s)", self.database, self.url, self.log_path)
        # Own session: a Ctrl-C meant for the parent does not reach trytond before stop() does.
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        body = {"id": 0, "method": "common.server.version", "params": []}
        with httpx.Client(timeout=2.0) as http:
            while True:
                if proc.poll() is not None:
                    raise TrytonServerError(f"trytond exited with {proc.returncode} during startup:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.post(f"{self.url}/rpc/", json=body).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TrytonServerError(
                        f"trytond did not answer on {self.url} within {self.startup_timeout:.0f} s:\n" + self.log_tail()
                    )
                time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        """Last ``lines`` lines of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop trytond (SIGTERM, then SIGKILL after ``timeout`` seconds); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        # The config may hold a PostgreSQL password; it is rewritten at each start.
        self.config_path.unlink(missing_ok=True)

    def wait(self) -> int:
        """Block until trytond exits; return its exit code."""
        proc = self._proc
        return 0 if proc is None else proc.wait()

    def terminate(self) -> None:
        """Ask trytond to exit (SIGTERM) without waiting; safe in a signal handler. Then call :meth:`stop`."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def __enter__(self) -> TrytonServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -------------------------------------------------------------------------------------------------- commands


def erp_setup_command(
    settings: Settings,
    catalog_csv: str | Path,
    company_name: str,
    *,
    currency: str | None = None,
    database_uri: str | None = None,
    suppliers: list[str] | None = None,
) -> SetupResult:
    """``procure erp setup``: create or update the bundled Tryton database from a catalogue CSV.

    The database is ``ERP_DATABASE`` (SQLite under ``DATA_DIR/tryton/db`` unless ``database_uri``), the user
    ``ERP_USER`` with ``ERP_PASSWORD`` (Tryton's policy: 8+ characters, not the login). Safe to run again: it
    updates suppliers, products and prices.

    Args:
        settings: process settings.
        catalog_csv: catalogue CSV path.
        company_name: the buying company's name.
        currency: company currency; ``DEFAULT_CURRENCY`` when ``None``.
        database_uri: PostgreSQL server URI instead of SQLite.
        suppliers: restrict to these supplier codes (all suppliers of the catalogue when ``None``).

    Returns:
        The :class:`~sandboxes.tryton.setup.SetupResult` (the CLI prints it).

    Raises:
        ValueError: password refused by the policy, bad catalogue.
        ErpSetupError: trytond-admin or populate failed.
    """
    return setup_database(
        settings.ERP_DATABASE,
        load_catalog_csv(catalog_csv),
        company_name=company_name,
        admin_password=settings.ERP_PASSWORD.get_secret_value(),
        admin_login=settings.ERP_USER,
        data_dir=settings.DATA_DIR,
        currency=currency or settings.DEFAULT_CURRENCY,
        database_uri=database_uri,
        suppliers=suppliers,
    )


def erp_serve_command(
    settings: Settings, host: str = "127.0.0.1", port: int = 8000, *, database_uri: str | None = None
) -> int:
    """``procure erp serve``: run the bundled Tryton in the foreground until SIGINT/SIGTERM.

    Serves ``ERP_DATABASE`` (prepared by ``procure erp setup``); point ``ERP_URL`` at ``http://host:port``.

    Returns:
        Exit code: 0 after a signal, trytond's code if it exits on its own.

    Raises:
        FileNotFoundError: the database was not set up.
        TrytonServerError: trytond did not start.
    """
    server = TrytonServer(
        settings.ERP_DATABASE, data_dir=settings.DATA_DIR, database_uri=database_uri, host=host, port=port
    )
    stopping = False

    def _on_signal(signum: int, frame: object) -> None:
        # Only signal trytond here: waiting inside a handler would deadlock with the wait() it interrupted.
        nonlocal stopping
        stopping = True
        server.terminate()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except TrytonServerError:
            if stopping:  # interrupted while starting
                return 0
            raise
        if stopping:
            return 0
        print(
            f"Tryton serving database {settings.ERP_DATABASE!r} at {server.url} (pid {server.pid})",
            flush=True,
        )
        print(f"Set ERP_URL={server.url}; log: {server.log_path}", flush=True)
        code = server.wait()
        return 0 if stopping else code
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
