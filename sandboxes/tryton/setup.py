"""Prepare a Tryton database for a company: modules, company, accounts, suppliers, products, unique reference.

Steps (each idempotent: a second run updates, never duplicates):

1. create the database and activate ``purchase``, ``purchase_request``, ``purchase_requisition`` with
   ``trytond-admin --all -u ... --activate-dependencies`` (https://docs.tryton.org/projects/server/en/latest/
   topics/install.html; SQLite needs the file to exist first, PostgreSQL the database);
2. in a child process, through proteus (the module test helpers' sequence: ``company/tests/tools.py``
   ``create_company``, ``account/tests/tools.py`` ``create_chart`` and ``create_fiscalyear``,
   ``account_invoice/tests/tools.py`` ``set_fiscalyear_invoice_sequences``): the company and its currency, a
   minimal chart of accounts, a fiscal year with monthly periods around today, an accounting product category,
   one party per supplier (``code`` = our supplier code, with an address), one product per catalogue item
   (``code`` = our SKU, purchasable, purchase UoM from our unit) with its supplier and price;
3. a UNIQUE index ``purchase_reference_uniq`` on ``purchase_purchase(reference)``, the ERP-side guarantee
   behind idempotent order placement (Tryton's own index on ``reference`` is not unique).

``trytond-admin`` takes ~20 s on SQLite, so a prepared SQLite file is kept under
``DATA_DIR/tryton/templates``, keyed by a hash of everything that shapes it (catalogue, company, currency,
admin credentials, versions, month), and new databases are copies of it (milliseconds).

The child process keeps trytond's process-wide state (configuration, pool) out of the caller, e.g. the CLI or
pytest; it is :mod:`sandboxes.tryton.populate`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.domain import CatalogItem, Money
from sandboxes.tryton.processes import (
    MODULES,
    ErpSetupError,
    check_password_policy,
    child_env,
    pg_prepare,
    pg_server_uri,
    redact,
    run_tool,
    trytond_admin,
    write_trytond_config,
)
from tools.erp.tryton import canonical_unit

logger = logging.getLogger(__name__)

#: Bump when the populate logic changes, so cached templates are rebuilt.
SETUP_VERSION = 3
#: Distributions whose versions key the template cache.
_DISTRIBUTIONS = ("trytond", "trytond_purchase", "trytond_purchase_request", "trytond_purchase_requisition")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class SetupResult:
    """What :func:`setup_database` did.

    Attributes:
        database: Tryton database name.
        sqlite_path: the SQLite file, or ``None`` on PostgreSQL.
        database_uri: the PostgreSQL server URI (Tryton style, password removed), or ``None`` on SQLite.
        created: the database did not exist before this run.
        from_template: it was created by copying a cached SQLite template.
        suppliers: supplier codes present as parties.
        products: number of catalogue products present.
        seconds: wall time of the run.
    """

    database: str
    sqlite_path: Path | None
    database_uri: str | None
    created: bool
    from_template: bool
    suppliers: tuple[str, ...]
    products: int
    seconds: float


# ------------------------------------------------------------------------------------------------ catalogue


def load_catalog_csv(path: str | Path) -> list[CatalogItem]:
    """Read a catalogue CSV (``sku,name,unit,unit_price,currency,supplier,category,aliases``).

    A minimal reader for ERP setup (the application imports catalogues through core). Aliases are ``;``
    separated. Blank lines are skipped.

    Raises:
        ValueError: a row lacks a required column or has an unreadable price (message names the line).
    """
    items: list[CatalogItem] = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.DictReader(f), start=2):
            if not any((v or "").strip() for v in row.values()):
                continue
            try:
                items.append(
                    CatalogItem(
                        sku=row["sku"].strip(),
                        name=row["name"].strip(),
                        unit=row["unit"].strip().lower(),
                        unit_price=Money(Decimal(row["unit_price"].strip()), (row.get("currency") or "USD").strip()),
                        supplier=row["supplier"].strip().upper(),
                        category=(row.get("category") or "").strip(),
                        aliases=tuple(a.strip().lower() for a in (row.get("aliases") or "").split(";") if a.strip()),
                    )
                )
            except (KeyError, AttributeError, ArithmeticError) as exc:
                raise ValueError(f"{path}:{lineno}: bad catalogue row ({exc!r})") from exc
    return items


# ------------------------------------------------------------------------------------------------- database


def _catalog_rows(catalog: Sequence[CatalogItem], suppliers: Collection[str] | None) -> list[dict[str, str]]:
    wanted = None if suppliers is None else {s.upper() for s in suppliers}
    rows = [
        {
            "sku": it.sku,
            "name": it.name,
            "unit": canonical_unit(it.unit),
            "price": str(it.unit_price.amount),
            "currency": it.unit_price.currency,
            "supplier": it.supplier.upper(),
        }
        for it in catalog
        if wanted is None or it.supplier.upper() in wanted
    ]
    return sorted(rows, key=lambda r: r["sku"])


def _versions() -> dict[str, str]:
    out = {}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


def _template_key(spec: Mapping[str, Any], admin_password: str) -> str:
    """Hash of everything that shapes a fresh database.

    The password enters only through a salted slow hash, so the file name does not give it away.
    """
    pw = hashlib.pbkdf2_hmac("sha256", admin_password.encode(), b"procure-erp-template", 100_000).hex()
    blob = json.dumps(
        {
            "spec": spec,
            "pw": pw,
            "setup": SETUP_VERSION,
            "versions": _versions(),
            # The template's fiscal year runs from 6 months before to 5 months after the day it was built.
            "month": dt.date.today().strftime("%Y-%m"),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock, so parallel test sessions build a template once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _copy_file_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _sqlite_kind(path: Path) -> str:
    """Classify a SQLite database file before setup touches it.

    Returns:
        ``missing`` (absent or empty), ``ready`` (our modules activated), ``tryton`` (a Tryton database
        without them) or ``other`` (some other file, which must not be overwritten).
    """
    if not path.exists() or path.stat().st_size == 0:
        return "missing"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ir_module'").fetchone():
                return "other"
            rows = conn.execute(
                "SELECT name FROM ir_module WHERE state = 'activated' AND name IN (?, ?, ?)", MODULES
            ).fetchall()
    except sqlite3.Error:
        return "other"
    return "ready" if len(rows) == len(MODULES) else "tryton"


def _populate(config: Path, database: str, spec: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "sandboxes.tryton.populate",
        "populate",
        "--config",
        str(config),
        "--database",
        database,
    ]
    out = run_tool(cmd, what=f"populate {database}", env=child_env(), stdin=json.dumps(spec), timeout=timeout)
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ErpSetupError(f"populate {database}: unreadable result {out[-500:]!r}") from exc
    return result


def setup_database(
    database: str,
    catalog: Sequence[CatalogItem],
    *,
    company_name: str,
    admin_password: str,
    data_dir: Path,
    currency: str = "USD",
    admin_login: str = "admin",
    admin_email: str = "admin@example.com",
    db_dir: Path | None = None,
    database_uri: str | None = None,
    suppliers: Collection[str] | None = None,
    use_template: bool = True,
    timeout: float = 900.0,
) -> SetupResult:
    """Create or update a Tryton database ready to take purchase orders for ``company_name``.

    Args:
        database: Tryton database name (letters, digits, ``_``, ``-``).
        catalog: catalogue items; every item's supplier becomes a party, every item a product.
        company_name: the company's name (the party of ``company.company``).
        admin_password: password of ``admin_login``; Tryton's policy applies (8+ characters, not the login).
        data_dir: ``DATA_DIR``; configs go to ``data_dir/tryton``, SQLite templates to
            ``data_dir/tryton/templates``.
        currency: company currency, ISO 4217 (created with rate 1 if the database lacks it).
        admin_login: the ERP user; ``admin`` is created by trytond-admin, another login is created as a copy
            of admin's groups.
        admin_email: e-mail of the ``admin`` user.
        db_dir: SQLite directory (default ``data_dir/tryton/db``); the file is ``{db_dir}/{database}.sqlite``.
        database_uri: PostgreSQL server URI (``postgresql://user:pw@host:port/``); SQLite when ``None``.
        suppliers: only these supplier codes (and their items); all suppliers of the catalogue when ``None``.
        use_template: SQLite only: copy/keep a prepared template instead of running trytond-admin each time.
        timeout: seconds allowed to each child process.

    Returns:
        A :class:`SetupResult`.

    Raises:
        ValueError: bad name, password refused by the policy, or empty catalogue.
        ErpSetupError: trytond-admin or the populate step failed (message holds its output's tail).
    """
    started = time.monotonic()
    if not _DB_NAME_RE.match(database):
        raise ValueError(f"invalid Tryton database name {database!r}")
    check_password_policy(admin_login, admin_password)
    rows = _catalog_rows(catalog, suppliers)
    if not rows:
        raise ValueError("the catalogue has no item for the ERP suppliers")
    spec = {
        "company": company_name,
        "currency": currency.upper(),
        "login": admin_login,
        "email": admin_email,
        "items": rows,
    }
    populate_spec = {**spec, "password": admin_password if admin_login != "admin" else None}
    tryton_dir = data_dir.resolve() / "tryton"
    created = from_template = False

    # The config may hold a PostgreSQL password: it lives in a private temp dir for the run only.
    with tempfile.TemporaryDirectory(prefix="procure-tryton-setup-") as tmp:
        conf_path = Path(tmp) / "trytond.conf"
        if database_uri:
            server_uri = pg_server_uri(database_uri)
            config = write_trytond_config(conf_path, database_uri=server_uri)
            if not pg_prepare(server_uri, database):
                created = True
                trytond_admin(config, database, admin_password, admin_email, timeout)
            result = _populate(config, database, populate_spec, timeout)
            sqlite_path = None
        else:
            db_dir = (db_dir or tryton_dir / "db").resolve()
            db_dir.mkdir(parents=True, exist_ok=True)
            sqlite_path = db_dir / f"{database}.sqlite"
            config = write_trytond_config(conf_path, db_dir=db_dir)
            kind = _sqlite_kind(sqlite_path)
            if kind == "ready":
                result = _populate(config, database, populate_spec, timeout)
            elif kind == "tryton":
                # A Tryton database without our modules: activate them in place, never replace it.
                trytond_admin(config, database, admin_password, admin_email, timeout)
                result = _populate(config, database, populate_spec, timeout)
            elif kind == "other":
                raise ValueError(f"{sqlite_path} exists and is not a Tryton database; refusing to overwrite it")
            elif use_template:
                created = from_template = True
                template = _ensure_template(tryton_dir / "templates", spec, admin_password, populate_spec, timeout)
                # A stale WAL next to a new main file would corrupt it (trytond removes them on drop too).
                for suffix in ("-wal", "-shm"):
                    sqlite_path.with_name(sqlite_path.name + suffix).unlink(missing_ok=True)
                _copy_file_atomic(template, sqlite_path)
                result = json.loads(template.with_suffix(".json").read_text())
            else:
                created = True
                sqlite_path.touch()
                trytond_admin(config, database, admin_password, admin_email, timeout)
                result = _populate(config, database, populate_spec, timeout)
    seconds = time.monotonic() - started
    logger.info(
        "tryton database %s ready in %.1f s (%s)",
        database,
        seconds,
        "copied from template" if from_template else ("created" if created else "updated"),
    )
    return SetupResult(
        database=database,
        sqlite_path=sqlite_path,
        database_uri=redact(pg_server_uri(database_uri)) if database_uri else None,
        created=created,
        from_template=from_template,
        suppliers=tuple(result["suppliers"]),
        products=int(result["products"]),
        seconds=seconds,
    )


def _ensure_template(
    templates: Path,
    spec: Mapping[str, Any],
    admin_password: str,
    populate_spec: Mapping[str, Any],
    timeout: float,
) -> Path:
    """Return the template file for ``spec``, building it (under a lock) when missing."""
    key = _template_key(spec, admin_password)
    template = templates / f"{key}.sqlite"
    if template.exists() and template.with_suffix(".json").exists():
        return template
    with _file_lock(templates / ".lock"):
        if template.exists() and template.with_suffix(".json").exists():
            return template
        build_dir = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=templates))
        try:
            name = "template"
            (build_dir / f"{name}.sqlite").touch()
            config = write_trytond_config(build_dir / "trytond.conf", db_dir=build_dir)
            trytond_admin(config, name, admin_password, str(spec["email"]), timeout)
            result = _populate(config, name, populate_spec, timeout)
            # Tryton runs SQLite in WAL mode: fold the log into the main file and leave WAL mode, so the
            # template is one self-contained file that a plain copy reproduces.
            with contextlib.closing(sqlite3.connect(build_dir / f"{name}.sqlite")) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA journal_mode=DELETE")
            os.replace(build_dir / f"{name}.sqlite", template)
            template.with_suffix(".json").write_text(json.dumps(result))
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
        _prune_templates(templates, keep=template)
    return template


def _prune_templates(templates: Path, keep: Path, max_age_days: float = 40) -> None:
    """Delete templates of other keys older than ``max_age_days`` (a new month makes a new key)."""
    cutoff = time.time() - max_age_days * 86400
    for path in templates.glob("*.sqlite"):
        if path != keep and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
