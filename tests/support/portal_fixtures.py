"""Reusable pytest fixtures: the reference supplier shop served by uvicorn, a moto S3 server, a browser pool.

Import them into a test module (or a conftest) with ``from tests.support.portal_fixtures import *``.

* ``sandbox_shop`` (session): the shop on ``127.0.0.1:<free port>`` in a background thread; ``shop`` is the
  same shop reset (orders, carts, sessions, switches) before the test.
* ``moto_s3`` (session): ``moto_server`` in a subprocess; yields its endpoint URL. ``s3_storage`` gives an
  :class:`S3Storage` on a fresh bucket; ``evidence_storage`` (session) the bucket browser runs upload to.
* ``browser_pool`` (session): one Chromium for the session, pacing off, evidence to ``evidence_storage``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from sandboxes.supplier_shop import ShopState, create_app
from tools.storage import S3Storage
from tools.supplier_portal.browser import BrowserPool, Pacing

__all__ = [
    "RunningShop",
    "browser_pool",
    "evidence_storage",
    "free_port",
    "moto_s3",
    "run_moto_server",
    "s3_storage",
    "sandbox_shop",
    "serve_app",
    "shop",
]

MOTO_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningShop:
    """A served sandbox shop and a JSON client for its admin API."""

    base_url: str
    app: FastAPI
    admin: httpx.Client

    @property
    def state(self) -> ShopState:
        """The shop's in-memory state (same process)."""
        return self.app.state.shop  # type: ignore[no-any-return]

    def orders(self, po: str | None = None) -> list[dict[str, Any]]:
        """``GET /_admin/orders`` (exact PO match when ``po`` is given)."""
        response = self.admin.get("/_admin/orders", params={"po": po} if po else None)
        response.raise_for_status()
        return list(response.json())

    def set_switches(self, **switches: Any) -> dict[str, Any]:
        """``POST /_admin/switches``; returns all switches."""
        response = self.admin.post("/_admin/switches", json=switches)
        response.raise_for_status()
        return dict(response.json())

    def reset(self) -> None:
        """``POST /_admin/reset``."""
        self.admin.post("/_admin/reset").raise_for_status()


@contextlib.contextmanager
def serve_app(app: FastAPI, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a daemon thread; yields its base URL; stops it on exit."""
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def sandbox_shop() -> Iterator[RunningShop]:
    """The reference shop with the demo catalogue's TONERWEB products and ``buyer@acme.test`` / ``s3cret``."""
    app = create_app(seed=7)
    with serve_app(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as admin:
        yield RunningShop(base_url, app, admin)


@pytest.fixture
def shop(sandbox_shop: RunningShop) -> RunningShop:
    """The session's shop, reset: no orders, carts, sessions; switches off."""
    sandbox_shop.reset()
    return sandbox_shop


@contextlib.contextmanager
def run_moto_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Run ``moto_server -H host -p port`` until exit; yields its endpoint URL.

    Raises:
        RuntimeError: moto_server is not installed or did not answer within 30 s.
    """
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(exe).exists():
        raise RuntimeError("moto_server not found; install moto[server]")
    port = port or free_port(host)
    proc = subprocess.Popen(
        [exe, "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}")
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """Endpoint URL of a moto S3 server for the session."""
    with run_moto_server() as url:
        yield url


@pytest.fixture
def s3_storage(moto_s3: str) -> S3Storage:
    """S3 storage on a fresh (not yet created) bucket of the moto server."""
    return S3Storage(f"test-{uuid.uuid4().hex[:12]}", endpoint_url=moto_s3, **MOTO_CREDENTIALS)


@pytest.fixture(scope="session")
def evidence_storage(moto_s3: str) -> S3Storage:
    """The bucket browser runs of the session upload their evidence to."""
    return S3Storage("procure-evidence", endpoint_url=moto_s3, **MOTO_CREDENTIALS)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser_pool(
    tmp_path_factory: pytest.TempPathFactory, evidence_storage: S3Storage
) -> AsyncIterator[BrowserPool]:
    """One Chromium for the session (Debian's, headless), pacing off, sessions in a temporary folder."""
    pool = BrowserPool(
        state_dir=tmp_path_factory.mktemp("browser_state"),
        storage=evidence_storage,
        pacing=Pacing.off(),
        max_contexts=8,
    )
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()
