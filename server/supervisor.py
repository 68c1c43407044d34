"""Supervision of ``procure serve``'s worker processes: restart with backoff, logged, state shown by ``/readyz``.

A worker that exits (crash, SIGKILL, out of memory) is started again after a pause: ``BACKOFF_MIN_SECONDS``
doubling per quick exit up to ``BACKOFF_MAX_SECONDS``, back to the minimum once a worker has run for
``HEALTHY_SECONDS``. Every exit and restart is logged. The supervisor is a thread of the web process, so the
web app reads its state directly (``app.state.supervisor``, see :mod:`server.routes.health`).

Each child gets ``PROCURE_PARENT_PID``; ``procure worker`` then asks the kernel to send it SIGTERM when this
process dies (``prctl(PR_SET_PDEATHSIG)``), so even a SIGKILLed ``serve`` leaves no worker behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("procure.supervisor")

#: First restart delay in seconds; doubled per quick exit.
BACKOFF_MIN_SECONDS = 1.0
#: Longest restart delay in seconds.
BACKOFF_MAX_SECONDS = 30.0
#: A worker that ran this many seconds was healthy: its next restart waits ``BACKOFF_MIN_SECONDS`` again.
HEALTHY_SECONDS = 60.0


@dataclass
class Child:
    """One supervised worker slot.

    Attributes:
        index: slot number (0-based), stable across restarts.
        proc: the running process, or ``None`` while waiting to restart.
        restarts: how many times this slot was started again after an exit.
        last_exit_code: exit code of the previous process (negative: killed by that signal), or ``None``.
        started_at: ``time.monotonic()`` of the current process's start.
        restart_at: ``time.monotonic()`` when the next start is due (while ``proc`` is ``None``).
        delay: the pause before the next restart, in seconds.
    """

    index: int
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    delay: float = BACKOFF_MIN_SECONDS


class Supervisor:
    """Start ``count`` copies of ``argv`` and keep them running until :meth:`stop`.

    Args:
        argv: the worker command line (``[sys.executable, "-m", "server.cli", "worker"]``).
        env: its environment (``PROCURE_PARENT_PID`` is added).
        count: how many workers.
        poll_seconds: how often exits are noticed.
    """

    def __init__(self, argv: list[str], env: dict[str, str], count: int, *, poll_seconds: float = 0.2) -> None:
        self.argv = argv
        self.env = dict(env, PROCURE_PARENT_PID=str(os.getpid()))
        self.children = [Child(i) for i in range(max(0, count))]
        self.poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)

    def start(self) -> Supervisor:
        """Start every worker and the supervising thread; returns ``self``."""
        with self._lock:
            for child in self.children:
                self._spawn(child)
        self._thread.start()
        return self

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(self.argv, env=self.env)
        child.started_at = time.monotonic()
        log.info("worker %d started (pid %d)", child.index, child.proc.pid)

    def _check(self, child: Child, now: float) -> None:
        if child.proc is not None:
            code = child.proc.poll()
            if code is None:
                return
            uptime = now - child.started_at
            if uptime >= HEALTHY_SECONDS:
                child.delay = BACKOFF_MIN_SECONDS
            child.last_exit_code, child.proc = code, None
            child.restart_at = now + child.delay
            log.warning(
                "worker %d exited with code %s after %.1f s; restarting in %.0f s",
                child.index,
                code,
                uptime,
                child.delay,
            )
            child.delay = min(child.delay * 2, BACKOFF_MAX_SECONDS)
        elif now >= child.restart_at:
            child.restarts += 1
            self._spawn(child)
            log.warning("worker %d restarted (restart %d)", child.index, child.restarts)

    def _run(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            with self._lock:
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                for child in self.children:
                    try:
                        self._check(child, now)
                    except OSError as exc:  # could not start the process (fork failed): try again later
                        child.restart_at = now + child.delay
                        log.error("worker %d could not be started: %s", child.index, exc)

    def stop(self, timeout: float = 6.0) -> None:
        """Stop supervising and stop every worker: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self._stopping.set()
        with self._lock:
            procs = [c.proc for c in self.children if c.proc is not None]
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in procs:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("worker pid %d did not stop within %.0f s: killed", proc.pid, timeout)
                    proc.kill()
                    proc.wait()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(self.poll_seconds * 5)

    def state(self) -> list[dict[str, object]]:
        """Each slot's ``{"pid", "alive", "restarts", "last_exit_code"}`` (for ``/readyz``)."""
        out: list[dict[str, object]] = []
        for c in self.children:
            proc = c.proc
            alive = proc is not None and proc.poll() is None
            out.append(
                {
                    "pid": proc.pid if alive and proc is not None else None,
                    "alive": alive,
                    "restarts": c.restarts,
                    "last_exit_code": c.last_exit_code,
                }
            )
        return out
