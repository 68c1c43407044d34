"""Benchmark: time to place one fulfilment through the whole job path, ERP and website; Chromium memory.

    python -m bench.bench_fulfilment                 # 20 ERP + 20 website orders, one after the other
    python -m bench.bench_fulfilment -n 40 --pacing  # with the human-like pauses of production

Starts everything real in a scratch folder: the embedded PostgreSQL and Redis, a bundled Tryton on a copy of the
test template, the reference shop in its own process, one Chromium. Each order is an approved request whose
fulfilment is timed from ``Fulfiller.place`` entry to return, i.e. what one arq job does: lock session and
advisory lock(s), claim, look-up at the destination by our reference, order, record, audit, mark the request
ordered. WhatsApp notifications are excluded (a no-op outbox). The first website order includes Chromium's
start; it is reported apart, as a worker pays it once. Switches are off.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.bench_portal import MemorySampler, start_shop
from bench.common import ROOT, free_port, pct
from core.config import Settings
from core.db import make_engine
from core.domain import Line
from core.embedded import ensure_services
from core.migrate import upgrade
from core.repo import add_user, get_user, import_catalog, load_catalog, upsert_suppliers
from sandboxes.tryton.server import TrytonServer
from sandboxes.tryton.setup import load_catalog_csv, setup_database
from tools import requests as R
from tools.fulfilment import Fulfiller

ERP_ITEMS = [("PAP-A4-80", "20"), ("STP-STD", "3"), ("PEN-BLU", "4")]
WEB_ITEMS = [("TON-CF226A", "2"), ("USB-32", "5")]
PASSWORD = "procure-bench-pw"


async def _request(engine: Any, requester: Any, items: list[tuple[str, str]]) -> int:
    catalog = {c.sku: c for c in await load_catalog(engine)}
    lines = [Line(catalog[s].name, Decimal(q), catalog[s].unit, s, catalog[s].unit_price) for s, q in items]
    sub = await R.submit_request(
        engine,
        requester=requester,
        lines=lines,
        site="Nairobi",
        needed_by=date.today() + timedelta(days=3),
        currency="USD",
        chat_id=requester.wa_id,
        provider="meta",
    )
    approver = await get_user(engine, id=sub.approver.id)
    await R.decide(engine, sub.request_id, revision=1, decision="approve", actor=approver)  # type: ignore[arg-type]
    return sub.request_id


async def run(args: argparse.Namespace, database_url: str, erp_url: str, shop_url: str, tmp: Path) -> None:
    settings = Settings(
        ENVIRONMENT="test",
        DATA_DIR=tmp,
        ERP_URL=erp_url,
        ERP_DATABASE="bench",
        ERP_USER="admin",
        ERP_PASSWORD=PASSWORD,  # type: ignore[arg-type]
        SUPPLIER_PORTAL_PASSWORD="s3cret",  # type: ignore[arg-type]
        BROWSER_PACING=args.pacing,
        BROWSER_MAX_CONTEXTS=1,
    )
    engine = make_engine(database_url)
    await import_catalog(engine, ROOT / "examples" / "catalog.csv")
    requester = await add_user(engine, phone="+254700000001", name="Amina", role="requester", site="Nairobi")
    await add_user(engine, phone="+254700000002", name="Brian", role="approver", site="Nairobi",
                   approval_limit=Decimal("100000"))  # fmt: skip
    await upsert_suppliers(
        engine,
        [{"code": "TONERWEB", "name": "TonerWeb", "channel": "website", "portal": "sandbox_shop",
          "url": shop_url, "account": "buyer@acme.test"}],
    )  # fmt: skip

    async def no_outbox(provider: str, key: str, messages: list[dict[str, Any]]) -> None:
        return None

    fulfiller = Fulfiller(engine, settings, database_url=database_url, notify=no_outbox)
    sampler = MemorySampler()
    times: dict[str, list[float]] = {"erp": [], "website": []}
    first_website = 0.0
    try:
        for n in range(args.n * 2):
            channel = "erp" if n % 2 == 0 else "website"  # interleaved: a growing database penalises both
            rid = await _request(engine, requester, ERP_ITEMS if channel == "erp" else WEB_ITEMS)
            [f] = await fulfiller.create_for_request(rid)
            t0 = time.perf_counter()
            state = await fulfiller.place(f.id)
            elapsed = time.perf_counter() - t0
            assert state == "placed", (f, state)
            if channel == "website" and not first_website:
                first_website = elapsed
                sampler.start()
                continue
            times[channel].append(elapsed)
        await sampler.stop()
        rss, pss, procs = sampler.sample()
    finally:
        await fulfiller.aclose()
        await engine.dispose()
    print(f"orders: {args.n} ERP + {args.n} website, serial, pacing {'on' if args.pacing else 'off'}, switches off")
    for channel, values in times.items():
        print(
            f"{channel:8s} n={len(values):3d}  median {statistics.median(values):6.3f} s  "
            f"p95 {pct(values, 95):6.3f} s  max {max(values):6.3f} s"
        )
    print(f"first website order (includes Chromium start): {first_website:.3f} s")
    print(
        f"chromium: {procs} processes after the run, RSS {rss / 1024:.0f} MiB (peak {sampler.peak_rss / 1024:.0f}), "
        f"PSS {pss / 1024:.0f} MiB (peak {sampler.peak_pss / 1024:.0f}) per worker (one browser, 1 context at a time)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="orders per channel (default 20)")
    parser.add_argument("--pacing", action="store_true", help="human-like pauses between browser actions")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pb-ful-", dir="/tmp"))
    svc = ensure_services(None, None, tmp / "data")
    shop = None
    try:
        upgrade(svc.database_url)
        setup_database(
            "bench",
            load_catalog_csv(ROOT / "examples" / "catalog.csv"),
            company_name="Bench Co",
            admin_password=PASSWORD,
            data_dir=Settings().DATA_DIR,
            db_dir=tmp / "tryton" / "db",
            suppliers=("OFFICEMART", "CLEANCO", "BUILDMART", "SAFEGEAR", "FUELCO"),
        )
        port = free_port()
        shop = start_shop(port, {"buyer@acme.test": "s3cret"})
        with TrytonServer("bench", data_dir=tmp, db_dir=tmp / "tryton" / "db") as server:
            asyncio.run(run(args, svc.database_url, server.url, f"http://127.0.0.1:{port}", tmp))
    finally:
        if shop is not None:
            shop.terminate()
            shop.wait(10)
        svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
