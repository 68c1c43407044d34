"""The worker supervisor: exits are noticed, restarts back off (doubling, capped, reset after a healthy run)."""

from __future__ import annotations

import sys
import time

from server import supervisor as sup
from server.supervisor import Supervisor


def _wait(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_crashing_worker_is_restarted_and_its_exit_code_shown(monkeypatch):
    monkeypatch.setattr(sup, "BACKOFF_MIN_SECONDS", 0.05)
    s = Supervisor([sys.executable, "-c", "raise SystemExit(3)"], {}, 1, poll_seconds=0.01)
    s.children[0].delay = 0.05
    s.start()
    try:
        _wait(lambda: s.children[0].restarts >= 2)
    finally:
        s.stop(timeout=2)
    state = s.state()[0]
    assert state["last_exit_code"] == 3
    assert state["restarts"] >= 2


def test_quick_exits_double_the_delay_up_to_the_cap():
    s = Supervisor([sys.executable, "-c", "raise SystemExit(2)"], {}, 1)
    child = s.children[0]
    waits = []
    for _ in range(7):
        s._spawn(child)
        child.proc.wait()  # type: ignore[union-attr]
        now = time.monotonic()
        s._check(child, now)  # notices the exit and schedules the restart
        waits.append(round(child.restart_at - now, 3))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_resets_after_a_healthy_run(monkeypatch):
    monkeypatch.setattr(sup, "HEALTHY_SECONDS", 0.0)  # every run counts as healthy
    s = Supervisor([sys.executable, "-c", "raise SystemExit(1)"], {}, 1)
    child = s.children[0]
    child.delay = 16.0
    s._spawn(child)
    child.proc.wait()  # type: ignore[union-attr]
    s._check(child, time.monotonic())
    assert child.proc is None and child.last_exit_code == 1
    assert child.restart_at - time.monotonic() <= sup.BACKOFF_MIN_SECONDS  # the next start is due after 1 s, not 16


def test_stop_terminates_running_workers_and_reports_them_gone():
    s = Supervisor([sys.executable, "-c", "import time; time.sleep(60)"], {}, 2).start()
    pids = [c.proc.pid for c in s.children if c.proc is not None]
    assert len(pids) == 2 and all(w["alive"] for w in s.state())
    s.stop(timeout=5)
    assert not any(w["alive"] for w in s.state())
    assert all(c.proc is not None and c.proc.returncode is not None for c in s.children)
