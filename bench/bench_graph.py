"""The procurement graph's own time per turn with the Postgres checkpointer (no LLM), and checkpoint bytes.

Replays the demo conversation (burst, ambiguity, pick, correction, confirm, approval) for many chats through
the compiled graphs exactly as the worker runs them (AsyncPostgresSaver on a pool, the worker's checkpoint
durability ``server.worker.turns.DURABILITY``), timing each ``ainvoke``.
Baseline in the same run: the same turns with an in-memory checkpointer. Targets: p95 <= 150 ms per turn with
Postgres; checkpoint bytes written per turn < 20 KB.

Usage: python -m bench.bench_graph [--chats 30]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench.common import ROOT, pct, scratch_dir

TURNS = [
    ["need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday"],
    [("list", "pick:1:TON-CF226X")],
    ["make the paper 30", "also 2 staplers"],
    ["drop the staplers"],
    [("button", "confirm")],
]


def msg(item: Any, wa: str, n: int) -> dict[str, Any]:
    base = {
        "sender": wa,
        "chat_id": wa,
        "timestamp": datetime.now(UTC).isoformat(),
        "provider_message_id": f"wamid.b{wa}{n}",
    }
    if isinstance(item, str):
        return {**base, "kind": "text", "text": item}
    kind, rid = item
    return {**base, "kind": kind, "reply_id": rid, "text": rid}


async def run(chats: int, saver_kind: str, engine: Any, catalog: Any, pool: Any, users: list[Any]) -> dict[str, Any]:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from sqlalchemy import text

    from graphs import procurement
    from graphs.context import Context
    from server.worker.turns import DURABILITY

    saver = AsyncPostgresSaver(pool) if saver_kind == "postgres" else InMemorySaver()
    graph = procurement.builder.compile(checkpointer=saver)
    times: list[float] = []
    sizes: list[int] = []
    n = 0
    for c in range(chats):
        user = users[c]
        thread = f"bench-{saver_kind}:{user.wa_id}"
        ctx = Context(
            user=user,
            chat_id=user.wa_id,
            engine=engine,
            catalog=catalog,
            sites=("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret"),
        )
        cfg = {"configurable": {"thread_id": thread}, "recursion_limit": 200}
        for turn in TURNS:
            n += 1
            msgs = [msg(item, user.wa_id, n * 10 + i) for i, item in enumerate(turn)]
            t0 = time.perf_counter()
            await graph.ainvoke({"inbound": msgs, "turn_id": n}, cfg, context=ctx, durability=DURABILITY)
            times.append(time.perf_counter() - t0)
        if saver_kind == "postgres":
            async with engine.connect() as conn:
                total = 0
                for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
                    total += (
                        await conn.execute(
                            text(f"SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t WHERE thread_id = :t"),
                            {"t": thread},
                        )
                    ).scalar_one()
            sizes.append(total // len(TURNS))
    return {
        "turns": len(times),
        "p50_ms": pct(times, 50) * 1000,
        "p95_ms": pct(times, 95) * 1000,
        "max_ms": max(times) * 1000,
        "bytes_per_turn": (sum(sizes) // len(sizes)) if sizes else None,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chats", type=int, default=30)
    args = ap.parse_args()

    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from core.db import make_engine
    from core.embedded import ensure_services, libpq_url
    from core.migrate import upgrade
    from core.repo import add_user, import_catalog, load_catalog
    from tools.catalog import CatalogIndex

    svc = ensure_services(None, "redis://unused", scratch_dir())
    upgrade(svc.database_url)
    engine = make_engine(svc.database_url)
    await import_catalog(engine, ROOT / "examples" / "catalog.csv")
    await add_user(
        engine, phone="+254799100000", name="Approver", role="approver", site=None, approval_limit=Decimal("100000")
    )
    users = [
        await add_user(engine, phone=f"+2547991{i:05d}", name=f"Req {i}", role="requester", site="Nairobi")
        for i in range(1, 2 * args.chats + 1)
    ]
    catalog = CatalogIndex(await load_catalog(engine))
    pool = AsyncConnectionPool(
        libpq_url(svc.database_url),
        min_size=1,
        max_size=4,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    await pool.open()
    try:
        await run(2, "memory", engine, catalog, pool, users[-2:])  # warm-up (imports, caches)
        mem = await run(args.chats, "memory", engine, catalog, pool, users[: args.chats])
        pg = await run(args.chats, "postgres", engine, catalog, pool, users[args.chats :])
    finally:
        await pool.close()
        await engine.dispose()
        svc.stop()
    print(f"turns per run: {pg['turns']} ({args.chats} chats x {len(TURNS)} turns; no LLM)")
    print(
        f"in-memory checkpointer : p50 {mem['p50_ms']:.1f} ms  p95 {mem['p95_ms']:.1f} ms  max {mem['max_ms']:.1f} ms"
    )
    print(
        f"Postgres checkpointer  : p50 {pg['p50_ms']:.1f} ms  p95 {pg['p95_ms']:.1f} ms  max {pg['max_ms']:.1f} ms"
        f"  (target p95 <= 150 ms)"
    )
    print(f"ratio postgres/memory p95: {pg['p95_ms'] / mem['p95_ms']:.2f}x")
    print(
        f"checkpoint bytes written per turn (checkpoints + blobs + writes): {pg['bytes_per_turn']:,} (target < 20,000)"
    )


if __name__ == "__main__":
    asyncio.run(main())
