"""The fault suite at full size, on demand: outages of Redis and PostgreSQL, 20 worker SIGKILLs, 5x duplicates.

The same scenarios as ``tests/e2e/faults/`` (they live in ``tests/support/fault_scenarios.py``), at the sizes of
issue 11: ``procure serve`` on its own embedded PostgreSQL and Redis, traffic through the signed webhook, then per
scenario messages sent, processed once, replies per turn (each outbox key received once by the provider stand-in)
and the recovery time after the service came back (target <= 15 s, no manual step). Exit status 1 when a
scenario breaks "processed once, one reply per turn" or does not heal within its liveness timeout.

Usage::

    python -m bench.faults                       # every scenario, full size
    python -m bench.faults redis kill --small    # some scenarios, CI size
    python -m bench.faults --turn-timeout 120    # the production turn timeout (SIGKILL recovery waits on it)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from bench.common import ROOT  # noqa: F401  (puts the repository on sys.path)
from tests.support.fault_scenarios import FULL, SCENARIOS, SMALL, Result
from tests.support.fault_stack import FaultStack


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--small", action="store_true", help="the CI sizes")
    ap.add_argument("--kills", type=int, help="override the number of worker SIGKILLs")
    ap.add_argument("--outage", type=float, help="override the outage length, seconds")
    ap.add_argument("--turn-timeout", type=int, default=10, help="TURN_TIMEOUT_SECONDS (default 10, as the tests)")
    ap.add_argument("--workers", type=int, default=1, help="procure serve --workers")
    args = ap.parse_args(argv)
    size = SMALL if args.small else FULL
    if args.kills is not None:
        size = dataclasses.replace(size, kills=args.kills)
    if args.outage is not None:
        size = dataclasses.replace(size, outage=args.outage)
    names = args.scenarios or list(SCENARIOS)
    if unknown := [n for n in names if n not in SCENARIOS]:
        ap.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    env = {"TURN_TIMEOUT_SECONDS": str(args.turn_timeout), "SWEEP_INTERVAL_SECONDS": "2"}
    print(f"size: {size}\nenv: {env}, workers={args.workers}", flush=True)
    results: list[Result] = []
    failed: list[str] = []
    t0 = time.monotonic()
    with FaultStack(size.chats, workers=args.workers, env=env) as stack:
        print(f"stack up in {time.monotonic() - t0:.1f} s (procure serve on {stack.url})", flush=True)
        for name in names:
            t = time.monotonic()
            try:
                result = SCENARIOS[name](stack, size)
            except AssertionError as exc:  # did not heal within the liveness timeout
                failed.append(name)
                print(f"[{name}] FAIL (liveness): {str(exc)[:2000]}", flush=True)
                continue
            results.append(result)
            failed += [name] if result.ledger.problems() else []
            print(f"{result.line()}  ({time.monotonic() - t:.0f} s)", flush=True)
    print("\nscenario            sent  processed_once  replies/key  duplicated  recovery_s  verdict")
    for r in results:
        rec = "n/a" if r.recovery is None else f"{r.recovery:.1f}"
        led = r.ledger
        verdict = "FAIL" if led.problems() else "ok"
        print(
            f"{r.name:18} {led.sent:5} {led.processed:15} {led.replies_per_turn:>12} {led.duplicated:11} "
            f"{rec:>11}  {verdict}"
        )
    print(f"total {time.monotonic() - t0:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
