"""Idle resident memory of ``procure serve`` on the embedded default: the web and worker processes only.

PostgreSQL and Redis (started by the program) are reported separately and excluded from the figure, as the
target says. Target: web + worker idle under 400 MB. Also times how long ``procure serve`` takes to be ready.

Usage: python -m bench.bench_memory [--idle 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psutil

from bench.common import ROOT, free_port, scratch_dir, wait_http


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=10.0)
    args = ap.parse_args()
    port = free_port()
    env = dict(os.environ, DATA_DIR=str(scratch_dir()), LOG_LEVEL="WARNING")
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)], env=env, cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
        ready = time.perf_counter() - t0
        time.sleep(args.idle)
        root = psutil.Process(proc.pid)
        ours, services = {}, {}
        for p in [root, *root.children(recursive=True)]:
            try:
                name = p.name()
                rss = p.memory_info().rss
                cmd = " ".join(p.cmdline()[:4])
            except psutil.NoSuchProcess:
                continue
            (services if ("redis" in name or "postgres" in name) else ours)[f"{p.pid} {cmd}"] = rss
        for p in psutil.process_iter(["name", "cmdline"]):
            if p.info["name"] == "postgres" and env["DATA_DIR"] in " ".join(p.info["cmdline"] or []):
                services[f"{p.pid} postgres"] = p.memory_info().rss
        print(f"ready after {ready:.1f} s (embedded PostgreSQL + Redis start, migrations, web + worker)")
        for k, v in ours.items():
            print(f"  {v / 2**20:7.1f} MB  {k}")
        total = sum(ours.values()) / 2**20
        print(f"web + worker resident memory after {args.idle:.0f} s idle: {total:.1f} MB (target < 400 MB)")
        print(f"excluded (PostgreSQL, Redis): {sum(services.values()) / 2**20:.1f} MB in {len(services)} processes")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
