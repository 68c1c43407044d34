"""Webhook ingest throughput and latency vs a bare FastAPI endpoint, in the same run on this machine.

The real endpoint verifies the signature, inserts the message durably in PostgreSQL and schedules the chat's
turn in Redis; the baseline (a FastAPI route) only reads the body and returns 200. Each runs as one uvicorn
process; the load generator runs in this process. Targets: real >= 0.5x baseline requests/s; p99 <= 50 ms at 200
requests/s. For reference the run also measures a plain ASGI app that returns 200 (``--no-asgi`` skips it): the
webhook POST is answered by a plain ASGI layer in front of FastAPI, so that is its floor.

Usage: python bench/bench_ingest.py [--seconds 10] [--concurrency 32] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.common import closed_loop, free_port, open_loop, scratch_dir, start_uvicorn, wait_http


def payloads(n: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    from sandboxes.whatsapp.meta_payloads import envelope, signed, text_message

    out = []
    for i in range(n):
        sender = f"2547{10000000 + i % 500:08d}"  # 500 different chats
        out.append(
            signed(
                envelope([text_message(sender, f"need {i % 40 + 1} boxes a4 paper", mid=f"wamid.BENCH{i:08d}")]), secret
            )
        )
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--no-asgi", action="store_true", help="skip the plain ASGI reference")
    args = ap.parse_args()

    from core.embedded import ensure_services
    from core.migrate import upgrade

    d = scratch_dir()
    svc = ensure_services(None, None, d)
    upgrade(svc.database_url)
    secret = "bench-secret"
    env = {
        "DATABASE_URL": svc.database_url,
        "REDIS_URL": svc.redis_url,
        "META_APP_SECRET": secret,
        "QUEUE_NAME": "procure:bench",
        "LOG_LEVEL": "WARNING",
        "ENVIRONMENT": "test",
    }
    n = int(max(args.seconds * 3000, args.rate * args.seconds) * 2)
    bodies = payloads(n, secret)
    results = {}
    try:
        for name in ("bare", "webhook") + (() if args.no_asgi else ("bare_asgi",)):
            port = free_port()
            proc = start_uvicorn(f"bench.apps:{name}", port, env)
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz")
                url = f"http://127.0.0.1:{port}/webhooks/meta"
                # warm-up with bodies not reused later
                await closed_loop(url, bodies[-200:], 1.0, 8)
                if name == "webhook":
                    import psycopg

                    with psycopg.connect(svc.database_url, autocommit=True) as c:
                        c.execute("TRUNCATE inbox, turns RESTART IDENTITY CASCADE")
                thr = await closed_loop(url, bodies[: n // 2], args.seconds, args.concurrency)
                if name == "webhook":
                    with psycopg.connect(svc.database_url, autocommit=True) as c:
                        c.execute("TRUNCATE inbox, turns RESTART IDENTITY CASCADE")
                if name == "bare_asgi":
                    results[name] = {"throughput": thr}
                    continue
                lat = await open_loop(url, bodies[n // 2 :], args.rate, args.seconds)
                results[name] = {"throughput": thr, "at_rate": lat}
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        svc.stop()
    b, w = results["bare"], results["webhook"]
    print(json.dumps(results, indent=2, default=str))
    print(
        f"\nthroughput: bare {b['throughput']['rps']:.0f} req/s, webhook {w['throughput']['rps']:.0f} req/s, "
        f"ratio {w['throughput']['rps'] / b['throughput']['rps']:.2f}x (target >= 0.5x)"
    )
    print(
        f"at {args.rate:.0f} req/s: webhook p50 {w['at_rate']['p50_ms']:.1f} ms, p99 {w['at_rate']['p99_ms']:.1f} ms "
        f"(target <= 50 ms); bare p99 {b['at_rate']['p99_ms']:.1f} ms; statuses {w['at_rate']['codes']}"
    )
    if "bare_asgi" in results:
        a = results["bare_asgi"]["throughput"]["rps"]
        print(f"reference: plain ASGI 200 {a:.0f} req/s; webhook / plain ASGI {w['throughput']['rps'] / a:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
