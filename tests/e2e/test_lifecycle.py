"""Process lifecycle: ``procure serve`` restarts a killed worker and SIGTERM stops everything it started;
``procure demo`` and ``procure eval`` leave no process behind (normal exit and Ctrl-C).

Each test runs the real command on its own, fresh data folder (embedded PostgreSQL and Redis) and counts the
processes that belong to it: any whose command line or environment names the data folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.paths import ROOT
from tests.support.stack import free_port, wait_for

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")), reason="embedded servers only"
)


@pytest.fixture
def data_folder() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lc-", dir="/tmp"))  # short: unix socket paths are limited
    yield d
    for pid in processes_of(d):  # never leave anything running, even when the test failed
        with_suppress_kill(pid)
    shutil.rmtree(d, ignore_errors=True)


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def processes_of(data_dir: Path) -> list[int]:
    """Live processes whose command line or environment names ``data_dir``."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(data_dir) in " ".join(p.info["cmdline"] or []) or p.environ().get("DATA_DIR") == str(data_dir):
                found.append(p.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def family(pid: int) -> set[int]:
    """``pid`` and all its descendants."""
    try:
        return {pid} | {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def peak_while_running(proc: subprocess.Popen[bytes], data_dir: Path, timeout: float) -> int:
    """Wait for ``proc`` to end; returns the most processes of ``data_dir`` seen meanwhile."""
    peak, deadline = 0, time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, len(processes_of(data_dir)))
        time.sleep(0.5)
    proc.wait(1)
    return peak


def command_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATA_DIR=str(data_dir), ENVIRONMENT="test", LANGSMITH_TRACING="false", LOG_LEVEL="WARNING")
    return env


def procure(*args: str, data_dir: Path, **kwargs) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=command_env(data_dir), **kwargs)


def test_serve_restarts_a_killed_worker_and_sigterm_stops_every_process_it_started(data_folder):
    port = free_port()
    serve = procure("serve", "--port", str(port), "--workers", "1", data_dir=data_folder)
    url = f"http://127.0.0.1:{port}/readyz"

    def ready() -> dict | None:
        try:
            r = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return None
        body = r.json()
        return body if r.status_code == 200 and body.get("worker") == "ok" else None

    try:
        body = wait_for(ready, timeout=120, interval=0.2)
        assert body["workers"][0]["restarts"] == 0 and body["workers"][0]["last_exit_code"] is None
        first = body["workers"][0]["pid"]
        started = family(serve.pid) | {pid for root in processes_of(data_folder) for pid in family(root)}
        print(f"\nprocesses of serve (web, worker, redis, postgres and its helpers): {len(started)}")

        os.kill(first, signal.SIGKILL)
        body = wait_for(lambda: (b := ready()) and b["workers"][0]["pid"] not in (None, first) and b, timeout=60)
        assert body["workers"][0] == {
            "pid": body["workers"][0]["pid"],
            "alive": True,
            "restarts": 1,
            "last_exit_code": -signal.SIGKILL,
        }
        started |= family(serve.pid)

        t = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
        print(f"serve stopped {time.monotonic() - t:.2f} s after SIGTERM, exit code {serve.returncode}")
        left = [pid for pid in started if alive(pid)]
        print(f"processes left after SIGTERM: {len(left)} of {len(started)}")
        assert left == [], f"left running: {left}"
        assert processes_of(data_folder) == []
    finally:
        if serve.poll() is None:
            serve.kill()


def test_demo_leaves_no_process_behind(data_folder):
    demo = procure("demo", data_dir=data_folder, stdout=subprocess.DEVNULL)
    peak = peak_while_running(demo, data_folder, 300)
    assert demo.returncode == 0
    left = processes_of(data_folder)
    print(f"\ndemo: {peak} processes at most while running, {len(left)} after")
    assert left == []


def test_demo_interrupted_with_ctrl_c_leaves_no_process_behind(data_folder):
    demo = procure("demo", data_dir=data_folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Interrupt once its worker runs (a process of its own beside the demo and the two servers).
        wait_for(lambda: len(processes_of(data_folder)) >= 4 or demo.poll() is not None, timeout=180)
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
    wait_for(lambda: processes_of(data_folder) == [], timeout=20)


def test_eval_leaves_no_process_behind(data_folder):
    run = procure(
        "eval",
        "--model",
        "none",
        "--dataset",
        "adversarial",
        "--results-dir",
        str(data_folder / "results"),
        data_dir=data_folder,
        stdout=subprocess.DEVNULL,
    )
    peak = peak_while_running(run, data_folder, 600)
    assert run.returncode == 0
    left = processes_of(data_folder)
    print(f"\neval: {peak} processes at most while running, {len(left)} after")
    assert left == []


@pytest.mark.parametrize("args", [("users", "list"), ("db", "upgrade")])
def test_short_commands_stop_the_servers_they_started(data_folder, args):
    cmd = procure(*args, data_dir=data_folder, stdout=subprocess.DEVNULL)
    peak = peak_while_running(cmd, data_folder, 180)
    assert cmd.returncode == 0
    assert peak >= 1 and processes_of(data_folder) == []


def test_short_command_leaves_the_servers_of_a_running_serve_alone(data_folder):
    port = free_port()
    serve = procure("serve", "--port", str(port), "--workers", "0", data_dir=data_folder)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), timeout=120, interval=0.2)
        servers = set(processes_of(data_folder)) - {serve.pid}
        assert procure("users", "list", data_dir=data_folder, stdout=subprocess.DEVNULL).wait(120) == 0
        assert all(alive(pid) for pid in servers)
        assert _answers(f"http://127.0.0.1:{port}/readyz")
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
        assert processes_of(data_folder) == []
    finally:
        if serve.poll() is None:
            serve.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
