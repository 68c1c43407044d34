"""Benchmark: orders placed on the reference shop with a real Chromium; prints seconds per order and memory.

    python bench/bench_portal.py                      # 20 orders, one account, switches off
    python bench/bench_portal.py --orders 40 --concurrency 4 --pacing

The shop runs in a separate process (as a remote site would), started here unless ``--url`` points at one
(``procure sandbox supplier``). Each order is a full ``place_order_in_browser`` run: fresh context with the saved
session, trace recording, look-up, cart, checkout, context closed. Memory is the resident set of the Chromium
processes this process started (sum of RSS, which counts shared pages once per process, and PSS, which splits
them), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.storage import LocalStorage  # noqa: E402
from tools.supplier_portal import (  # noqa: E402
    BrowserPool,
    OrderLine,
    Pacing,
    PortalAccount,
    place_order_in_browser,
)
from tools.supplier_portal.sandbox_shop import SandboxShopPortal  # noqa: E402

LINES = [OrderLine("TON-CF226A", 2), OrderLine("USB-32", 5)]


def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def chromium_pids() -> list[int]:
    """Descendants of this process whose command is Chromium (the Playwright driver's children)."""
    tree = _children(os.getpid())
    found: list[int] = []
    stack = list(tree.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        stack.extend(tree.get(pid, []))
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0", 1)[0]
        except OSError:
            continue
        if b"chrom" in os.path.basename(cmd):
            found.append(pid)
    return found


def memory_kib(pids: list[int]) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in KiB over ``pids``."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


class MemorySampler:
    def __init__(self) -> None:
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> tuple[int, int, int]:
        pids = chromium_pids()
        rss, pss = memory_kib(pids)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(pids))
        return rss, pss, len(pids)

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def start_shop(port: int, accounts: dict[str, str]) -> subprocess.Popen[bytes]:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from sandboxes.supplier_shop import run_supplier_sandbox\n"
        f"run_supplier_sandbox('127.0.0.1', {port}, None, accounts={accounts!r}, log_level='warning')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_admin/health", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the sandbox shop did not start")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


async def bench(args: argparse.Namespace) -> None:
    accounts = {f"buyer{i}@acme.test": "s3cret" for i in range(1, args.concurrency + 1)}
    proc = None
    url = args.url
    if url is None:
        port = args.port
        proc = start_shop(port, accounts)
        url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    pool = BrowserPool(
        state_dir=tmp / "state",
        storage=LocalStorage(tmp / "objects"),
        pacing=Pacing() if args.pacing else Pacing.off(),
        trace=not args.no_trace,
        max_contexts=max(1, args.concurrency),
    )
    sampler = MemorySampler()
    idle: tuple[int, int, int] = (0, 0, 0)
    try:
        started = time.monotonic()
        await pool.start()
        launch = time.monotonic() - started
        idle = sampler.sample()
        sampler.start()
        durations: list[float] = []
        statuses: dict[str, int] = {}
        run_id = int(time.time())
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(args.orders):
            queue.put_nowait(n)

        async def worker(account: PortalAccount) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                t0 = time.monotonic()
                result = await place_order_in_browser(
                    pool,
                    lambda run: SandboxShopPortal.for_run(run, base_url=url, account=account),
                    f"BENCH-{run_id}-{n:04d}",
                    LINES,
                    account_key=f"TONERWEB:{account.username}",
                )
                durations.append(time.monotonic() - t0)
                statuses[result.status] = statuses.get(result.status, 0) + 1

        wall = time.monotonic()
        await asyncio.gather(*(worker(PortalAccount(user, pw)) for user, pw in accounts.items()))
        wall = time.monotonic() - wall
        await sampler.stop()
        end = sampler.sample()
    finally:
        await pool.close()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)

    first, rest = durations[0], durations[1:] or durations
    print(
        f"orders: {len(durations)} ({statuses}), concurrency {args.concurrency}, "
        f"pacing {'on' if args.pacing else 'off'}, trace {'off' if args.no_trace else 'on'}"
    )
    print(f"chromium launch: {launch:.2f} s")
    print(f"first order (signs in): {first:.2f} s")
    print(
        f"per order: median {statistics.median(durations):.2f} s, p95 {pct(durations, 95):.2f} s, "
        f"min {min(durations):.2f} s, max {max(durations):.2f} s (without the first: median "
        f"{statistics.median(rest):.2f} s, p95 {pct(rest, 95):.2f} s)"
    )
    print(f"throughput: {len(durations) / wall:.2f} orders/s over {wall:.1f} s")
    print(f"chromium memory idle: RSS {idle[0] / 1024:.0f} MiB, PSS {idle[1] / 1024:.0f} MiB, {idle[2]} processes")
    print(
        f"chromium memory peak: RSS {sampler.peak_rss / 1024:.0f} MiB, PSS {sampler.peak_pss / 1024:.0f} MiB, "
        f"{sampler.peak_procs} processes"
    )
    print(f"chromium memory end:  RSS {end[0] / 1024:.0f} MiB, PSS {end[1] / 1024:.0f} MiB, {end[2]} processes")
    target = pct(durations, 95) < 10
    print(f"target p95 < 10 s: {'met' if target else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1, help="accounts ordering in parallel")
    parser.add_argument("--pacing", action="store_true", help="human-like pauses between actions")
    parser.add_argument("--no-trace", action="store_true", help="do not record Playwright traces")
    parser.add_argument("--url", help="use a running shop (its accounts must match) instead of starting one")
    parser.add_argument("--port", type=int, default=8097)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
