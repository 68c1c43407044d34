"""Shared helpers for the benchmarks: embedded services in a scratch folder, a uvicorn process, a load generator."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pb-", dir="/tmp"))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def wait_http(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start_uvicorn(app_spec: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Serve ``module:factory`` with uvicorn (one process, no access log) on 127.0.0.1."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app_spec,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=dict(os.environ, **env),
        cwd=ROOT,
    )


async def closed_loop(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Requests as fast as ``concurrency`` clients can send them; returns rps, latencies and status counts."""
    import aiohttp

    lat: list[float] = []
    codes: dict[int, int] = {}
    i = 0
    stop = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal i
        while time.perf_counter() < stop:
            body, headers = bodies[i % len(bodies)]
            i += 1
            t = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                codes[r.status] = codes.get(r.status, 0) + 1
            lat.append(time.perf_counter() - t)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"rps": len(lat) / elapsed, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "codes": codes}


async def open_loop(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], rate: float, seconds: float
) -> dict[str, Any]:
    """Requests at a fixed arrival rate (req/s) regardless of answers; latency includes any queueing."""
    import aiohttp

    lat: list[float] = []
    codes: dict[int, int] = {}

    async def one(session: aiohttp.ClientSession, k: int) -> None:
        body, headers = bodies[k % len(bodies)]
        t = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as r:
            await r.read()
            codes[r.status] = codes.get(r.status, 0) + 1
        lat.append(time.perf_counter() - t)

    n = int(rate * seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        t0 = time.perf_counter()
        tasks = []
        for k in range(n):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, k)))
        await asyncio.gather(*tasks)
    return {
        "sent": n,
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
        "mean_ms": statistics.mean(lat) * 1000,
        "codes": codes,
    }
