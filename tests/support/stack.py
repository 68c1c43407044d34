"""A running stack for end-to-end tests: the real web app on a TCP port, arq worker processes, the Graph stand-in."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.payloads import envelope, signed

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-app-secret"
VERIFY = "test-verify-token"
TOKEN = "test-access-token"
ADMIN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_env(database_url: str, redis_url: str, graph_url: str, data_dir: Path, **extra: Any) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "META_APP_SECRET": SECRET,
        "META_VERIFY_TOKEN": VERIFY,
        "META_ACCESS_TOKEN": TOKEN,
        "META_PHONE_NUMBER_ID": "000000000000000",
        "META_GRAPH_URL": graph_url,
        "ADMIN_API_TOKEN": ADMIN,
        "DEBOUNCE_SECONDS": "0.4",
        "DEBOUNCE_MAX_SECONDS": "2",
        "TURN_TIMEOUT_SECONDS": "20",
        "SWEEP_INTERVAL_SECONDS": "1",
        "LANGSMITH_TRACING": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WebServer:
    """uvicorn serving ``create_app`` in a thread (its own event loop)."""

    def __init__(self, env: dict[str, str]) -> None:
        from core.config import Settings

        self.settings = Settings(**{k: v for k, v in env.items() if k in Settings.model_fields})  # type: ignore[arg-type]
        self.port = free_port()
        from server.app import create_app

        app = create_app(self.settings, env["DATABASE_URL"], env["REDIS_URL"])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebServer:
        self.thread.start()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("web server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class WorkerProcess:
    """``python -m server.cli worker`` as a real process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(os.environ, **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> WorkerProcess:
        """Start the process; with ``wait``, return once it polls the queue (arq writes its health-check key)."""
        import redis

        from core.config import Settings

        key = self.env.get("QUEUE_NAME", Settings.model_fields["QUEUE_NAME"].default) + ":health-check"
        r = redis.Redis.from_url(self.env["REDIS_URL"])
        r.delete(key)  # another worker on the same queue may have written it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=None,
        )
        deadline = time.time() + 60
        try:
            while wait and not r.exists(key):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {self.proc.returncode} before it was ready")
                if time.time() > deadline:
                    raise RuntimeError("worker not ready after 60 s")
                time.sleep(0.05)
        finally:
            r.close()
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def post(url: str, payload: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body, headers = signed(payload, secret)
    return httpx.post(url + "/webhooks/meta", content=body, headers=headers, timeout=10)


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("condition not met in time")


async def await_for(cond: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


__all__ = ["envelope", "post", "wait_for", "WebServer", "WorkerProcess", "stack_env"]


class Chat:
    """One person's WhatsApp chat with the agent, through the real webhook and the Graph API stand-in."""

    def __init__(self, web: WebServer, graph_api: Any, wa_id: str) -> None:
        self.web, self.graph_api, self.wa_id = web, graph_api, wa_id

    def _settle(self, before: int, timeout: float = 25.0, quiet: float = 0.8) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.graph_api.sent_messages()) > before, timeout=timeout)
        last, since = len(self.graph_api.sent_messages()), time.time()
        while time.time() - since < quiet:
            time.sleep(0.1)
            n = len(self.graph_api.sent_messages())
            if n != last:
                last, since = n, time.time()
        return self.graph_api.sent_messages()[before:]

    def say(self, *texts: str, gap: float = 0.05) -> list[dict[str, Any]]:
        """Send a burst of text messages; returns every message the agent sent (to anyone) in reply."""
        from tests.support.payloads import text_message

        before = len(self.graph_api.sent_messages())
        for t in texts:
            assert post(self.web.url, envelope([text_message(self.wa_id, t)])).status_code == 200
            time.sleep(gap)
        return self._settle(before)

    def press(self, reply_id: str, *, list_row: bool = False) -> list[dict[str, Any]]:
        """Press a reply button (or pick a list row) with this id."""
        from tests.support.payloads import button_reply, list_reply

        before = len(self.graph_api.sent_messages())
        msg = list_reply(self.wa_id, reply_id) if list_row else button_reply(self.wa_id, reply_id)
        assert post(self.web.url, envelope([msg])).status_code == 200
        return self._settle(before)


def body_of(msg: dict[str, Any]) -> str:
    """The visible text of a Graph API send payload."""
    if msg.get("type") == "text":
        return str(msg["text"]["body"])
    if msg.get("type") == "interactive":
        return str(msg["interactive"]["body"]["text"])
    return ""


def button_ids(msg: dict[str, Any]) -> list[str]:
    """Reply-button or list-row ids in a Graph API send payload."""
    inter = msg.get("interactive") or {}
    if inter.get("type") == "button":
        return [b["reply"]["id"] for b in inter["action"]["buttons"]]
    if inter.get("type") == "list":
        return [r["id"] for sec in inter["action"]["sections"] for r in sec["rows"]]
    return []
