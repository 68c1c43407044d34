"""A deployment to break on purpose: its own embedded PostgreSQL and Redis, the Graph stand-in, ``procure serve``.

The fault suite (``tests/e2e/faults/``, ``bench/faults.py``) stops and restarts the servers under a running
``procure serve`` and SIGKILLs its worker, so the stack is its own: a scratch data folder, servers nobody else
uses, ``procure serve`` as a real process group (web + supervised worker) pointed at them the way a production
deployment points at external PostgreSQL and Redis. Nothing here restarts the worker or sweeps for it: that is
the product's job, and what the suite measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.migrate import upgrade
from sandboxes.whatsapp.meta_graph_api import GraphAPIStandIn
from sandboxes.whatsapp.meta_payloads import envelope, sign
from sandboxes.whatsapp.status_webhooks import PostedStatus, StatusWebhooks
from tests.support.paths import CATALOG_CSV, ROOT
from tests.support.stack import ADMIN, SECRET, TOKEN, VERIFY, free_port

#: Requesters of the fault traffic: ``+2547<chat number padded to 8 digits>``.
PHONE_PREFIX = "2547"
#: Tables the suite empties between scenarios (every table a turn writes).
TABLES = (
    "audit_log, llm_usage, fulfilments, purchase_request_lines, purchase_requests, outbound_messages, inbox, "
    "turns, checkpoints, checkpoint_writes, checkpoint_blobs, dead_letters, unknown_sender_replies"
)


def wa_id(n: int) -> str:
    """The wa_id of fault-traffic chat ``n``."""
    return f"{PHONE_PREFIX}{n:08d}"


class CountingGraphAPI(GraphAPIStandIn):
    """The Graph API stand-in, counting message sends in flight (a kill can then land during a send)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self._flight_lock = threading.Lock()

    async def _messages(self, request: Any) -> Any:
        try:  # a message send, not a read receipt (``{"status": "read"}``)
            counted = "status" not in json.loads(await request.body())
        except (ValueError, TypeError):
            counted = False
        with self._flight_lock:
            self.in_flight += counted
        try:
            return await super()._messages(request)
        finally:
            with self._flight_lock:
                self.in_flight -= counted

    def slow_sends(self, seconds: float, n: int = 100_000) -> None:
        """Answer the next ``n`` requests after ``seconds`` (the message still counts as sent when answered)."""
        self.slow_next(n, seconds)

    def fast(self) -> None:
        """Answer at once again (requests already waiting keep their delay)."""
        with self._lock:
            self._delays.clear()


class RedeliveredStatusWebhooks(StatusWebhooks):
    """Status webhooks posted again until the app answers 200, as Meta does for every webhook.

    Meta: a webhook not answered 200 "will keep trying with decreasing frequency until the request succeeds, for
    up to 7 days" (https://developers.facebook.com/docs/graph-api/webhooks/getting-started). Here every 0.5 s
    doubling to 5 s: during a database outage the app answers 503, and the status must still arrive after it.
    """

    async def _post_all(self, base: dict[str, Any]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        async with httpx.AsyncClient(timeout=10.0) as client:
            for state in self.statuses:
                status = {**base, "status": state, "timestamp": str(int(time.time()))}
                body = json.dumps(envelope(statuses=[status], phone_number_id=self.phone_number_id)).encode()
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, self.app_secret)}
                pause = 0.5
                while True:
                    try:
                        answer: int | None = (await client.post(self.url, content=body, headers=headers)).status_code
                    except httpx.HTTPError:
                        answer = None
                    with self._lock:
                        self._posted.append(PostedStatus(status=status, http_status=answer))
                    if answer == 200:
                        break
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)


class FaultStack:
    """Embedded PostgreSQL + Redis in a scratch folder, the Graph stand-in and ``procure serve`` on them.

    Args:
        chats: how many requesters to create (chat ``n`` is :func:`wa_id` ``(n)``).
        workers: ``procure serve --workers``.
        env: extra settings for ``procure serve`` (e.g. ``TURN_TIMEOUT_SECONDS``).
    """

    def __init__(self, chats: int, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))  # short: unix socket paths are limited
        self.chats = chats
        self.workers = workers
        self.pg = EmbeddedPostgres(self.root)
        self.redis = EmbeddedRedis(self.root)
        self.graph = CountingGraphAPI(access_token=TOKEN)
        self.port = free_port()
        self.extra = dict(env or {})
        self.serve: subprocess.Popen[bytes] | None = None
        self.database_url = ""
        self.log = self.root / "serve.log"

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> FaultStack:
        """Start the servers, migrate, seed the requesters and the catalogue, start ``procure serve``."""
        self.database_url = self.pg.start()
        self.redis.start()
        upgrade(self.database_url)
        asyncio.run(self._seed())
        self.graph.start()
        # Meta reports each sent message back (sent, delivered) with our key, redelivered until answered 200.
        self.graph.status_webhooks = RedeliveredStatusWebhooks(f"{self.url}/webhooks/meta", SECRET)
        self._start_serve()
        return self

    def stop(self) -> None:
        """Stop ``procure serve`` (and anything left in its process group), the stand-in and the servers."""
        if self.serve is not None:
            if self.serve.poll() is None:
                self.serve.send_signal(signal.SIGTERM)
                try:
                    self.serve.wait(20)
                except subprocess.TimeoutExpired:
                    pass
            try:  # serve runs in its own session: its group holds only what it started
                os.killpg(self.serve.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.serve.wait(10)
        self.graph.stop()
        self.redis.stop()
        self.pg.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FaultStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The environment ``procure serve`` runs with."""
        env = dict(os.environ)
        env.update(
            {
                "ENVIRONMENT": "test",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis.url,
                "DATA_DIR": str(self.root),
                "META_APP_SECRET": SECRET,
                "META_VERIFY_TOKEN": VERIFY,
                "META_ACCESS_TOKEN": TOKEN,
                "META_PHONE_NUMBER_ID": "000000000000000",
                "META_GRAPH_URL": self.graph.url,
                "ADMIN_API_TOKEN": ADMIN,
                "QUEUE_NAME": "procure:faults",
                "DEBOUNCE_SECONDS": "0.4",
                "DEBOUNCE_MAX_SECONDS": "2",
                "LANGSMITH_TRACING": "false",
                "LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.extra)
        return env

    def _start_serve(self) -> None:
        with self.log.open("ab") as out:
            self.serve = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
                + ["--workers", str(self.workers)],
                env=self.env(),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.serve.poll() is not None:
                raise RuntimeError(f"procure serve exited with {self.serve.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200 and self.worker_ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"procure serve not ready after 90 s: {self.log_tail()}")

    async def _seed(self) -> None:
        from core.db import make_engine
        from core.repo import add_user, import_catalog

        engine = make_engine(self.database_url, pool_size=2)
        try:
            await import_catalog(engine, CATALOG_CSV)
            for n in range(self.chats):
                await add_user(
                    engine, phone=f"+{wa_id(n)}", name=f"Fault Requester {n}", role="requester", site="Nairobi"
                )
        finally:
            await engine.dispose()

    def reset(self) -> None:
        """Empty the turn tables and Redis's turn state, forget the stand-in's requests (between scenarios)."""
        import redis

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")  # type: ignore[arg-type]
        r = redis.Redis.from_url(self.redis.url)
        try:
            for key in r.scan_iter("procure:*"):
                r.delete(key)
            for key in r.scan_iter("arq:*"):
                r.delete(key)
        finally:
            r.close()
        self.graph.reset()

    # -- what the faults act on -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The web server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of ``procure serve``'s output (for failure messages)."""
        if not self.log.exists():
            return ""
        lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if '" 200 OK' not in ln]
        return "\n".join(lines)[-chars:]

    def worker_pids(self) -> list[int]:
        """Live worker processes under ``procure serve`` (any depth), by their command line."""
        if self.serve is None:
            return []
        found, todo = [], [self.serve.pid]
        while todo:
            pid = todo.pop()
            for child in _children(pid):
                todo.append(child)
                cmd = _cmdline(child)
                if "worker" in cmd and _alive(child):
                    found.append(child)
        return sorted(found)

    def _health_key(self) -> str:
        return self.env()["QUEUE_NAME"] + ":health-check"

    def worker_ready(self) -> bool:
        """Whether a worker polls the queue: a live worker process and arq's health-check key in Redis."""
        import redis

        if not self.worker_pids():
            return False
        r = redis.Redis.from_url(self.redis.url, socket_timeout=2)
        try:
            return bool(r.exists(self._health_key()))
        except redis.RedisError:
            return False
        finally:
            r.close()

    def kill_worker(self) -> list[int]:
        """SIGKILL every worker process under ``procure serve``; returns their pids.

        arq's health-check key goes with them, so :meth:`worker_ready` turns true only once a new worker polls.
        """
        import redis

        pids = self.worker_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            while _alive(pid):
                time.sleep(0.01)
        r = redis.Redis.from_url(self.redis.url, socket_timeout=2)
        try:
            r.delete(self._health_key())
        finally:
            r.close()
        return pids

    def stop_redis(self) -> None:
        """Stop Redis (clean shutdown: its append-only file keeps queued jobs)."""
        self.redis.stop()

    def start_redis(self) -> None:
        """Start Redis again on the same socket and data."""
        self.redis.start()

    def stop_postgres(self) -> None:
        """Stop PostgreSQL (fast shutdown: open connections are cut)."""
        self.pg.stop()

    def start_postgres(self) -> None:
        """Start PostgreSQL again on the same data."""
        self.pg.restart()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped
    except (FileNotFoundError, ProcessLookupError):
        return False
