"""Embedded servers shared between processes: the last live user stops them, an attached process never does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.embedded import EmbeddedRedis, Leases, ensure_services
from tests.support.paths import ROOT

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")), reason="embedded servers only"
)


def _servers(data_dir: Path) -> list[int]:
    """Pids of the postgres postmaster and redis-server of ``data_dir`` (their command lines name it)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if str(data_dir) in cmd and state != "Z" and ("postgres" in cmd or "redis-server" in cmd):
            out.append(int(entry.name))
    return out


def _attach_and_exit(data_dir: Path, how: str) -> subprocess.CompletedProcess[str]:
    """A second process that attaches to the embedded servers, then ends normally or with an exception."""
    end = "raise RuntimeError('boom')" if how == "raise" else "sys.exit(0)"
    code = (
        "import sys; from pathlib import Path; from core.embedded import ensure_services\n"
        f"svc = ensure_services(None, None, Path({str(data_dir)!r}))\n{end}\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_last_user_stops_servers_an_attached_process_leaves_them():
    data_dir = Path(tempfile.mkdtemp(prefix="lease-", dir="/tmp"))
    svc = ensure_services(None, None, data_dir)  # this test process plays `procure serve`
    try:
        assert len(_servers(data_dir)) == 2
        for how in ("exit", "raise"):
            done = _attach_and_exit(data_dir, how)
            assert done.returncode == (1 if how == "raise" else 0), done.stderr
            assert len(_servers(data_dir)) == 2, f"a process that attached ({how}) stopped the servers"
        assert Leases(data_dir).holders("pg") == [os.getpid()]
    finally:
        svc.stop()
    assert _servers(data_dir) == []
    svc.stop()  # idempotent (it also runs at exit)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_a_command_alone_stops_what_it_started_and_what_a_killed_process_left():
    data_dir = Path(tempfile.mkdtemp(prefix="lease-", dir="/tmp"))
    # A process killed with SIGKILL while holding the servers: its lease is stale, its servers orphaned.
    code = (
        "import os, signal; from pathlib import Path; from core.embedded import ensure_services\n"
        f"ensure_services(None, None, Path({str(data_dir)!r})); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120)
    assert len(_servers(data_dir)) == 2
    done = _attach_and_exit(data_dir, "exit")  # the next command attaches, is the last live user, stops them
    assert done.returncode == 0, done.stderr
    assert _servers(data_dir) == []
    shutil.rmtree(data_dir, ignore_errors=True)


def test_redis_stop_also_stops_a_server_it_attached_to():
    short = Path(tempfile.mkdtemp(prefix="rd-", dir="/tmp"))
    first = EmbeddedRedis(short)
    first.start()
    attached = EmbeddedRedis(short)
    attached.start()
    assert attached.server_pid() is not None
    attached.stop()
    assert first.server_pid() is None
    first.stop()
    shutil.rmtree(short, ignore_errors=True)
