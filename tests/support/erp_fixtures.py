"""Pytest fixtures for a REAL Tryton: a session-scoped server on a prepared SQLite database.

Import the fixtures into a test module (or a conftest) to use them::

    from tests.support.erp_fixtures import *  # noqa: F403 - the fixtures (``__all__``)

    async def test_something(tryton_server):
        erp = tryton_server.adapter()
        ...

The database is a copy of a template kept under ``DATA_DIR/tryton/templates`` (built once, ~30 s; then a
copy takes milliseconds) with the demo catalogue's ERP suppliers (OFFICEMART, CLEANCO, BUILDMART, SAFEGEAR,
FUELCO) and their products. The server listens on a free port of 127.0.0.1 and stops at the end of the
session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from sandboxes.tryton.server import TrytonServer
from sandboxes.tryton.setup import SetupResult, load_catalog_csv, setup_database
from tools.erp.tryton import TrytonClient, TrytonErp

__all__ = ["tryton_database", "tryton_server"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CATALOG_CSV = PROJECT_ROOT / "examples" / "catalog.csv"
#: Suppliers that order through the ERP (TONERWEB is a website supplier).
ERP_SUPPLIERS = ("OFFICEMART", "CLEANCO", "BUILDMART", "SAFEGEAR", "FUELCO")
ERP_TEST_LOGIN = "admin"
ERP_TEST_PASSWORD = "procure-test-erp-pw"
ERP_TEST_COMPANY = "Procure Test Company"


def template_cache_dir() -> Path:
    """Where templates are kept between test runs: ``DATA_DIR`` of the default settings."""
    return Settings().DATA_DIR.resolve()


def prepare_test_database(db_dir: Path, name: str | None = None) -> SetupResult:
    """A fresh copy of the test template (milliseconds once the template exists) in ``db_dir``."""
    return setup_database(
        name or f"procure_test_{uuid.uuid4().hex[:8]}",
        load_catalog_csv(CATALOG_CSV),
        company_name=ERP_TEST_COMPANY,
        admin_password=ERP_TEST_PASSWORD,
        admin_login=ERP_TEST_LOGIN,
        data_dir=template_cache_dir(),
        db_dir=db_dir,
        suppliers=ERP_SUPPLIERS,
    )


@dataclass(frozen=True)
class RunningTryton:
    """A running test Tryton and how to reach it.

    Attributes:
        server: the :class:`TrytonServer` (``.url``, ``.log_path``).
        database: Tryton database name.
        login: ERP user login.
        password: ERP user password.
        sqlite_path: the database file.
    """

    server: TrytonServer
    database: str
    login: str
    password: str
    sqlite_path: Path

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:45123``."""
        return self.server.url

    def client(self, **kwargs: Any) -> TrytonClient:
        """A new :class:`TrytonClient` logged in lazily; close it (or its adapter) after use."""
        return TrytonClient(self.url, self.database, self.login, self.password, **kwargs)

    def adapter(self, **kwargs: Any) -> TrytonErp:
        """A new :class:`TrytonErp` on its own client; ``await adapter.aclose()`` after use."""
        return TrytonErp(self.client(**kwargs))

    def settings(self, **overrides: Any) -> Settings:
        """:class:`Settings` whose ``ERP_*`` point at this server."""
        values: dict[str, Any] = {
            "ENVIRONMENT": "test",
            "ERP_URL": self.url,
            "ERP_DATABASE": self.database,
            "ERP_USER": self.login,
            "ERP_PASSWORD": self.password,
        }
        values.update(overrides)
        return Settings(**values)


@pytest.fixture(scope="session")
def tryton_database(tmp_path_factory: pytest.TempPathFactory) -> SetupResult:
    """A prepared SQLite Tryton database in a session temp dir (copied from the cached template)."""
    return prepare_test_database(tmp_path_factory.mktemp("tryton-db"))


@pytest.fixture(scope="session")
def tryton_server(tryton_database: SetupResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTryton]:
    """A ``trytond`` serving :func:`tryton_database` on a free port of 127.0.0.1 for the whole session."""
    assert tryton_database.sqlite_path is not None
    server = TrytonServer(
        tryton_database.database,
        data_dir=tmp_path_factory.mktemp("tryton-run"),
        db_dir=tryton_database.sqlite_path.parent,
    )
    with server:
        yield RunningTryton(
            server=server,
            database=tryton_database.database,
            login=ERP_TEST_LOGIN,
            password=ERP_TEST_PASSWORD,
            sqlite_path=tryton_database.sqlite_path,
        )
