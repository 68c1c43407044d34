"""The ``procure`` commands users script against (run as real processes on the test database)."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select

from core.db import catalog_items, users
from tests.support.paths import CATALOG_CSV, ROOT


def procure(args: list[str], database_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


async def _count(engine, table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_catalog_import_bad_row_reports_line_and_writes_nothing(engine, clean, database_url, redis_url, tmp_path):
    bad = tmp_path / "bad.csv"
    rows = CATALOG_CSV.read_text().splitlines()
    rows[5] = "TON-X,Broken toner,piece,not-a-price,USD,TONERWEB,printing,"
    rows.append("PAP-A4-80,Duplicate paper,box,1.00,USD,OFFICEMART,stationery,")
    bad.write_text("\n".join(rows) + "\n")
    r = procure(["catalog", "import", str(bad)], database_url, redis_url)
    assert r.returncode == 1
    assert f"{bad}:6: unit_price 'not-a-price' is not a number" in r.stderr
    assert f"{bad}:{len(rows)}: sku PAP-A4-80 repeats line 2" in r.stderr
    assert await _count(engine, catalog_items) == 0

    r = procure(["catalog", "import", str(CATALOG_CSV)], database_url, redis_url)
    assert r.returncode == 0, r.stderr
    assert "41 new, 0 updated" in r.stdout
    changed = tmp_path / "changed.csv"
    changed.write_text(
        CATALOG_CSV.read_text().replace(
            "PAP-A4-80,A4 copy paper 80gsm (box of 5 reams),box,24.50",
            "PAP-A4-80,A4 copy paper 80gsm (box of 5 reams),box,25.10",
        )
    )
    r = procure(["catalog", "import", str(changed)], database_url, redis_url)
    assert "0 new, 41 updated" in r.stdout
    async with engine.connect() as conn:
        price = (
            await conn.execute(select(catalog_items.c.unit_price).where(catalog_items.c.sku == "PAP-A4-80"))
        ).scalar_one()
    assert str(price.normalize()) == "25.1"


async def test_users_add_and_list(engine, clean, database_url, redis_url):
    r = procure(
        [
            "users",
            "add",
            "--phone",
            "+254 700 111 222",
            "--name",
            "Wanjiku",
            "--role",
            "approver",
            "--site",
            "Nairobi",
            "--approval-limit",
            "2500",
        ],
        database_url,
        redis_url,
    )
    assert r.returncode == 0, r.stderr
    assert "+254700111222" in r.stdout and "approver" in r.stdout
    r = procure(["users", "add", "--phone", "12", "--name", "X", "--role", "requester"], database_url, redis_url)
    assert r.returncode != 0 and "E.164" in (r.stderr + r.stdout)
    r = procure(["users", "add", "--phone", "+254700111223", "--name", "X", "--role", "boss"], database_url, redis_url)
    assert r.returncode != 0
    r = procure(["users", "list"], database_url, redis_url)
    assert "Wanjiku" in r.stdout and "USD 2,500.00" in r.stdout
    assert await _count(engine, users) == 1
