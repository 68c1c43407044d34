"""Benchmark: placing orders through the Tryton adapter vs. the same JSON-RPC calls made directly with httpx.

Run on demand (not a test)::

    python -m bench.bench_erp               # starts a bundled Tryton on a fresh copy of the test template
    python -m bench.bench_erp -n 50
    python -m bench.bench_erp --url http://127.0.0.1:8000 --database tryton --login admin --password ...

Per order, both paths make the same 5 calls: search by reference, create (header + lines), quote, confirm,
read back (number and state); ids of party, address, products, units, company, currency and warehouse are
resolved once beforehand (the adapter caches them the same way). Orders of the two paths are interleaved so
that a database growing during the run penalises both alike. Target: adapter median <= 1.2 x direct median.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from core.config import Settings
from sandboxes.tryton.server import TrytonServer
from sandboxes.tryton.setup import load_catalog_csv, setup_database
from tools.erp.base import ErpLine
from tools.erp.tryton import TrytonClient, TrytonErp

ROOT = Path(__file__).resolve().parents[1]
SUPPLIER = "OFFICEMART"
LINES = [
    ErpLine("PAP-A4-80", Decimal("20"), Decimal("24.50"), "box"),
    ErpLine("STP-STD", Decimal("3"), Decimal("7.80"), "piece"),
    ErpLine("PEN-BLU", Decimal("4"), Decimal("6.50"), "box"),
]
BENCH_PASSWORD = "procure-bench-pw"


def _enc(o: Any) -> Any:
    if isinstance(o, Decimal):
        return {"__class__": "Decimal", "decimal": str(o)}
    raise TypeError(type(o))


class Direct:
    """The same JSON-RPC calls, hand-written on a bare httpx.AsyncClient."""

    def __init__(self, url: str, database: str, login: str, password: str) -> None:
        self.endpoint = f"{url.rstrip('/')}/{database}/rpc/"
        self.login, self.password = login, password
        self.http = httpx.AsyncClient(timeout=60, headers={"Content-Type": "application/json"})
        self.headers: dict[str, str] = {}
        self.context: dict[str, Any] = {}
        self.n = 0
        self.timings: dict[str, list[float]] = {}
        self.record = False

    async def rpc(self, method: str, params: list[Any]) -> Any:
        self.n += 1
        body = json.dumps({"id": self.n, "method": method, "params": params}, default=_enc)
        t0 = time.perf_counter()
        r = await self.http.post(self.endpoint, content=body, headers=self.headers)
        if self.record:
            self.timings.setdefault(method.rsplit(".", 1)[-1], []).append(time.perf_counter() - t0)
        r.raise_for_status()
        data = r.json()
        if data.get("error"):
            raise RuntimeError(data["error"])
        return data["result"]

    async def model(self, name: str, method: str, *args: Any) -> Any:
        return await self.rpc(f"model.{name}.{method}", [*args, self.context])

    async def prepare(self) -> None:
        uid, session, *_ = await self.rpc("common.db.login", [self.login, {"password": self.password}, "en"])
        token = base64.b64encode(f"{self.login}:{uid}:{session}".encode()).decode()
        self.headers = {"Authorization": f"Session {token}"}
        self.context = await self.rpc("model.res.user.get_preferences", [True, {}])
        company = self.context["company"]
        (comp,) = await self.model("company.company", "read", [company], ["currency"])
        (warehouse,) = await self.model("stock.location", "search", [["type", "=", "warehouse"]], 0, 1, None)
        (party,) = await self.model("party.party", "search_read", [["code", "=", SUPPLIER]], 0, 1, None, ["addresses"])
        products = await self.model(
            "product.product",
            "search_read",
            [["code", "in", [ln.product_code for ln in LINES]]],
            0,
            None,
            None,
            ["code", "purchase_uom"],
        )
        self.ids = {
            "company": company,
            "currency": comp["currency"],
            "warehouse": warehouse,
            "party": party["id"],
            "address": party["addresses"][0],
            "products": {p["code"]: (p["id"], p["purchase_uom"]) for p in products},
        }

    async def place(self, reference: str) -> dict[str, Any]:
        fields = ["number", "reference", "state", "party.code"]
        found = await self.model(
            "purchase.purchase", "search_read", [["reference", "=", reference]], 0, 1, [["id", "ASC"]], fields
        )
        assert not found
        ids = self.ids
        lines = [
            {
                "type": "line",
                "product": ids["products"][ln.product_code][0],
                "quantity": float(ln.quantity),
                "unit": ids["products"][ln.product_code][1],
                "unit_price": ln.unit_price,
                "description": ln.product_code,
            }
            for ln in LINES
        ]
        values = {
            "company": ids["company"],
            "currency": ids["currency"],
            "party": ids["party"],
            "invoice_address": ids["address"],
            "warehouse": ids["warehouse"],
            "reference": reference,
            "description": "bench",
            "lines": [["create", lines]],
        }
        (pid,) = await self.model("purchase.purchase", "create", [values])
        await self.model("purchase.purchase", "quote", [pid])
        await self.model("purchase.purchase", "confirm", [pid])
        (row,) = await self.model("purchase.purchase", "search_read", [["id", "=", pid]], 0, 1, None, fields)
        return dict(row)


def _stats(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return statistics.median(xs) * 1000, p95 * 1000


async def run(url: str, database: str, login: str, password: str, n: int) -> None:
    erp = TrytonErp(TrytonClient(url, database, login, password))
    direct = Direct(url, database, login, password)
    tag = uuid.uuid4().hex[:6]
    try:
        await direct.prepare()
        # Warm-up (untimed): logs the adapter in and fills its id caches; the first order of each path
        # also warms the server's caches.
        await erp.place_order(f"BENCH-{tag}-warm-a", SUPPLIER, LINES, "bench")
        await direct.place(f"BENCH-{tag}-warm-d")
        t_adapter: list[float] = []
        t_direct: list[float] = []
        direct.record = True
        for i in range(n):
            t0 = time.perf_counter()
            order = await erp.place_order(f"BENCH-{tag}-a{i}", SUPPLIER, LINES, "bench")
            t1 = time.perf_counter()
            row = await direct.place(f"BENCH-{tag}-d{i}")
            t2 = time.perf_counter()
            assert order.state in ("confirmed", "processing") and row["state"] in ("confirmed", "processing")
            t_adapter.append(t1 - t0)
            t_direct.append(t2 - t1)
        # One ERP order end to end with a cold adapter (new client: login + lookups + 5 calls).
        cold: list[float] = []
        for i in range(min(n, 10)):
            fresh = TrytonErp(TrytonClient(url, database, login, password))
            t0 = time.perf_counter()
            await fresh.place_order(f"BENCH-{tag}-c{i}", SUPPLIER, LINES, "bench")
            cold.append(time.perf_counter() - t0)
            await fresh.aclose()
    finally:
        await erp.aclose()
        await direct.http.aclose()

    am, ap = _stats(t_adapter)
    dm, dp = _stats(t_direct)
    cm, cp = _stats(cold)
    print(f"orders per path: {n} (3 lines each, 5 JSON-RPC calls per order), server {url}")
    print(f"adapter place_order : median {am:7.1f} ms   p95 {ap:7.1f} ms")
    print(f"direct JSON-RPC     : median {dm:7.1f} ms   p95 {dp:7.1f} ms")
    steps = "  ".join(
        f"{name} {statistics.median(ts) * 1000:.0f}" for name, ts in direct.timings.items() if name != "search_read"
    )
    sr = direct.timings.get("search_read", [0.0])
    print(f"  direct per call, median ms: search_read {statistics.median(sr) * 1000:.0f}  {steps}")
    print(f"ratio adapter/direct: median {am / dm:5.2f}x   p95 {ap / dp:5.2f}x   (target <= 1.20x)")
    print(
        f"one ERP order, cold client (login + lookups + order), {len(cold)} runs: "
        f"median {cm:7.1f} ms   p95 {cp:7.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="orders per path (default 30)")
    parser.add_argument("--url", help="an already running Tryton; default: start a bundled one")
    parser.add_argument("--database", default="tryton")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password")
    args = parser.parse_args(argv)
    if args.url:
        if not args.password:
            parser.error("--password is required with --url")
        asyncio.run(run(args.url, args.database, args.login, args.password, args.n))
        return 0
    with tempfile.TemporaryDirectory(prefix="procure-bench-") as tmp:
        t0 = time.perf_counter()
        db = setup_database(
            "bench",
            load_catalog_csv(ROOT / "examples" / "catalog.csv"),
            company_name="Bench Co",
            admin_password=BENCH_PASSWORD,
            data_dir=Settings().DATA_DIR,
            db_dir=Path(tmp) / "db",
            suppliers=("OFFICEMART", "CLEANCO", "BUILDMART", "SAFEGEAR", "FUELCO"),
        )
        t1 = time.perf_counter()
        with TrytonServer("bench", data_dir=Path(tmp), db_dir=Path(tmp) / "db") as server:
            t2 = time.perf_counter()
            print(
                f"database ready in {t1 - t0:.2f} s (template copy: {db.from_template}); server up in {t2 - t1:.1f} s"
            )
            asyncio.run(run(server.url, "bench", "admin", BENCH_PASSWORD, args.n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
