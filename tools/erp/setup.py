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
pytest; run it as ``python -m tools.erp.setup populate --config FILE --database NAME < spec.json``.
"""

from __future__ import annotations

import argparse
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.domain import CatalogItem, Money
from tools.erp.tryton import REFERENCE_INDEX, TRYTON_UOM_SYMBOLS, canonical_unit

logger = logging.getLogger(__name__)

#: Bump when the populate logic changes, so cached templates are rebuilt.
SETUP_VERSION = 3
MODULES = ("purchase", "purchase_request", "purchase_requisition")
#: Distributions whose versions key the template cache.
_DISTRIBUTIONS = ("trytond", "trytond_purchase", "trytond_purchase_request", "trytond_purchase_requisition")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
#: Our units mapped onto UoMs that the ``product`` module ships (``product/uom.xml``).
_STANDARD_UOMS = {
    "piece": "product.uom_unit",
    "kg": "product.uom_kilogram",
    "litre": "product.uom_liter",
    "m": "product.uom_meter",
}
assert set(_STANDARD_UOMS) == set(TRYTON_UOM_SYMBOLS)
#: Units created by setup outside the Units category: category xml id, factor to its reference unit, rounding.
_WEIGHT_UOMS = {"ton": ("product.uom_cat_weight", 1000.0, 0.001)}
_CURRENCY_NAMES = {
    "USD": ("U.S. Dollar", "$"),
    "EUR": ("Euro", "€"),
    "KES": ("Kenyan Shilling", "KSh"),
    "GBP": ("Pound Sterling", "£"),
    "UGX": ("Ugandan Shilling", "USh"),
    "TZS": ("Tanzanian Shilling", "TSh"),
}


class ErpSetupError(RuntimeError):
    """Preparing the Tryton database failed; the message carries the tail of the tool's output."""


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


# ------------------------------------------------------------------------------------------- configuration


def check_password_policy(login: str, password: str) -> None:
    """Refuse a password that Tryton's default policy rejects (``[password] length`` 8, not the login).

    Tryton checks at ``trytond-admin`` time, after 20 s of work; checking first gives a clear message.

    Raises:
        ValueError: too short, or equal to the login, name or e-mail.
    """
    if len(password.encode()) < 8:
        raise ValueError("the ERP password must have at least 8 characters (Tryton password policy)")
    if password.lower() in {login.lower(), "administrator", "admin@example.com"}:
        raise ValueError("the ERP password must differ from the login (Tryton password policy)")


def write_trytond_config(
    path: Path,
    *,
    db_dir: Path | None = None,
    database_uri: str | None = None,
    listen: str | None = None,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write a trytond configuration file (https://docs.tryton.org/projects/server/en/latest/topics/configuration.html).

    Args:
        path: file to write (parents are created).
        db_dir: SQLite directory (``[database] path``); used when ``database_uri`` is ``None``.
        database_uri: PostgreSQL server URI without database name, e.g. ``postgresql://user:pw@host:5432/``.
        listen: ``host:port`` for ``[web] listen``.
        extra: more ``{section: {option: value}}``.

    Returns:
        ``path``. The file may hold the PostgreSQL password: it is created with mode 0600.
    """
    sections: dict[str, dict[str, str]] = {"database": {}}
    if database_uri:
        sections["database"]["uri"] = database_uri
    else:
        if db_dir is None:
            raise ValueError("db_dir is required for SQLite")
        sections["database"]["uri"] = "sqlite://"
        sections["database"]["path"] = str(db_dir.resolve())
    # Database listing lets anyone enumerate databases: off for the bundled server.
    sections["database"]["list"] = "False"
    if listen:
        sections["web"] = {"listen": listen}
    for section, options in (extra or {}).items():
        sections.setdefault(section, {}).update(options)
    text = "".join(
        f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()) + "\n"
        for section, options in sections.items()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def trytond_tool(name: str) -> str:
    """Path of a trytond console script: next to this interpreter first (the virtualenv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ErpSetupError(f"{name} not found; install trytond in this environment")
    return found


def child_env() -> dict[str, str]:
    """Environment for trytond child processes: this project importable, inherited ``TRYTOND_*`` removed."""
    env = dict(os.environ)
    # The child must import our packages (tools, core) whatever the caller's working directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    # An inherited TRYTON* setting (another database, another config) would silently redirect the child.
    for key in [k for k in env if k.startswith("TRYTOND_")]:
        del env[key]
    return env


def _run(cmd: list[str], *, what: str, env: dict[str, str], stdin: str | None = None, timeout: float) -> str:
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ErpSetupError(f"{what} did not finish in {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-25:])
        raise ErpSetupError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    logger.info("%s done in %.1f s", what, time.monotonic() - started)
    return proc.stdout


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


def pg_server_uri(database_uri: str) -> str:
    """Return the PostgreSQL server URI without database name, as Tryton's ``[database] uri`` wants it.

    Raises:
        ValueError: not a ``postgresql://`` URI.
    """
    parts = urlsplit(database_uri)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"unsupported database URI scheme {parts.scheme!r}; use postgresql://")
    # The query is kept: it may carry libpq parameters such as ``host=/socket/dir`` (a Unix socket).
    return urlunsplit(("postgresql", parts.netloc, "/", parts.query, ""))


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def _pg_prepare(server_uri: str, database: str) -> bool:
    """Create the PostgreSQL database if missing; return True when our modules are already activated."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(server_uri)
    admin_dsn = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(database))
            )
            return False
    db_dsn = urlunsplit(("postgresql", parts.netloc, "/" + database, parts.query, ""))
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        try:
            rows = conn.execute(
                "SELECT name FROM ir_module WHERE state = 'activated' AND name = ANY(%s)", (list(MODULES),)
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return False
    return len(rows) == len(MODULES)


def _trytond_admin(config: Path, database: str, admin_password: str, admin_email: str, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="procure-tryton-") as tmp:
        passfile = Path(tmp) / "pass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(admin_password)
        env = child_env()
        env["TRYTONPASSFILE"] = str(passfile)
        cmd = [
            trytond_tool("trytond-admin"),
            "-c",
            str(config),
            "-d",
            database,
            "--all",
            "-u",
            *MODULES,
            "--activate-dependencies",
            "--email",
            admin_email,
        ]
        _run(cmd, what=f"trytond-admin on {database}", env=env, timeout=timeout)


def _populate(config: Path, database: str, spec: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "tools.erp.setup",
        "populate",
        "--config",
        str(config),
        "--database",
        database,
    ]
    out = _run(cmd, what=f"populate {database}", env=child_env(), stdin=json.dumps(spec), timeout=timeout)
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
            if not _pg_prepare(server_uri, database):
                created = True
                _trytond_admin(config, database, admin_password, admin_email, timeout)
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
                _trytond_admin(config, database, admin_password, admin_email, timeout)
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
                _trytond_admin(config, database, admin_password, admin_email, timeout)
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
        database_uri=_redact(pg_server_uri(database_uri)) if database_uri else None,
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
            _trytond_admin(config, name, admin_password, str(spec["email"]), timeout)
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


# --------------------------------------------------------------------------------- populate (child process)


def _populate_in_process(config_file: str, database: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Create or update company, accounts, fiscal year, suppliers, products and the unique index.

    Runs inside the child process: proteus in ``trytond`` mode (no server), user ``admin``.
    """
    from proteus import Model, Wizard
    from proteus import config as pconfig

    cfg = pconfig.set_trytond(database=database, config_file=config_file)
    Currency = Model.get("currency.currency")
    CurrencyRate = Model.get("currency.currency.rate")
    Company = Model.get("company.company")
    Party = Model.get("party.party")
    User = Model.get("res.user")
    ModelData = Model.get("ir.model.data")
    Account = Model.get("account.account")

    def currency_for(code: str) -> Any:
        found = Currency.find([("code", "=", code)])
        if found:
            return found[0]
        name, symbol = _CURRENCY_NAMES.get(code, (code, code))
        cur = Currency(name=name, symbol=symbol, code=code, rounding=Decimal("0.01"))
        cur.save()
        # Same as currency/tests/tools.py get_currency: a rate from the beginning of time.
        CurrencyRate(date=dt.date.min, rate=Decimal("1.0"), currency=cur).save()
        return cur

    def xml_record(model: str, fs_id: str) -> Any:
        return Model.get(model)(ModelData.get_id(*fs_id.split(".", 1), cfg.context))

    # Company (company/tests/tools.py create_company).
    companies = Company.find([])
    if not companies:
        currency = currency_for(spec["currency"])
        party = Party(name=spec["company"])
        party.save()
        company_config = Wizard("company.company.config")
        company_config.execute("company")
        form = company_config.form
        form.party = party
        form.currency = currency
        company_config.execute("add")
        company = Company.find([])[0]
    else:
        company = companies[0]
        if company.party.name != spec["company"]:
            company.party.name = spec["company"]
            company.party.save()
        if company.currency.code != spec["currency"]:
            logger.warning(
                "company currency is %s, not %s: Tryton does not change it once set",
                company.currency.code,
                spec["currency"],
            )
    cfg._context = User.get_preferences(True, {})

    # Chart of accounts (account/tests/tools.py create_chart + get_accounts).
    if not Account.find([("company", "=", company.id)], limit=1):
        template = xml_record("account.account.template", "account.account_template_root_en")
        create_chart = Wizard("account.create_chart")
        create_chart.execute("account")
        create_chart.form.account_template = template
        create_chart.form.company = company
        create_chart.execute("create_account")
        accounts = _accounts(Account, company)
        create_chart.form.account_receivable = accounts["receivable"]
        create_chart.form.account_payable = accounts["payable"]
        if hasattr(create_chart.form, "category_account_expense"):
            create_chart.form.category_account_expense = accounts["expense"]
        if hasattr(create_chart.form, "category_account_revenue"):
            create_chart.form.category_account_revenue = accounts["revenue"]
        create_chart.execute("create_properties")
    accounts = _accounts(Account, company)

    _ensure_fiscal_year(company)

    # Accounting product category (the purchase scenario's "Account Category").
    ProductCategory = Model.get("product.category")
    cat_name = "Procurement"
    cats = ProductCategory.find([("name", "=", cat_name), ("accounting", "=", True)], limit=1)
    category = cats[0] if cats else ProductCategory(name=cat_name, accounting=True)
    if category.account_expense != accounts["expense"] or category.account_revenue != accounts["revenue"]:
        category.account_expense = accounts["expense"]
        category.account_revenue = accounts["revenue"]
        category.save()

    # Units of measure.
    Uom = Model.get("product.uom")
    uoms: dict[str, Any] = {}
    for unit in sorted({row["unit"] for row in spec["items"]}):
        if unit in _STANDARD_UOMS:
            uoms[unit] = xml_record("product.uom", _STANDARD_UOMS[unit])
            continue
        found = Uom.find([("symbol", "=", unit)], limit=1)
        if found:
            uoms[unit] = found[0]
            continue
        cat_id, factor, rounding = _WEIGHT_UOMS.get(unit, ("product.uom_cat_unit", 1.0, 1.0))
        uom = Uom(
            name=unit.capitalize(),
            symbol=unit,
            category=xml_record("product.uom.category", cat_id),
            factor=factor,
            rate=round(1 / factor, 12),
            rounding=rounding,
            digits=max(0, -Decimal(str(rounding)).as_tuple().exponent),  # type: ignore[operator]
        )
        uom.save()
        uoms[unit] = uom

    # Supplier parties: code = our supplier code, with one address (the purchase's invoice address).
    parties: dict[str, Any] = {}
    for code in sorted({row["supplier"] for row in spec["items"]}):
        found = Party.find([("code", "=", code)], limit=1)
        party = found[0] if found else Party(code=code, name=code)
        if not found:
            party.save()
        if not party.addresses:
            party.addresses.new(street_unstructured=f"{code} (address to be completed)")
            party.save()
        parties[code] = party

    # Products: template code = SKU (product code = template code + empty suffix), purchase UoM,
    # supplier and price.
    Template = Model.get("product.template")
    Product = Model.get("product.product")
    ProductSupplier = Model.get("purchase.product_supplier")
    ProductSupplierPrice = Model.get("purchase.product_supplier.price")
    for row in spec["items"]:
        uom = uoms[row["unit"]]
        found = Product.find([("code", "=", row["sku"])], limit=1)
        if found:
            template = found[0].template
            changed = False
            for field, value in (
                ("name", row["name"]),
                ("purchasable", True),
                ("account_category", category),
            ):
                if getattr(template, field) != value:
                    setattr(template, field, value)
                    changed = True
            if template.default_uom != uom or template.purchase_uom != uom:
                template.default_uom = uom
                template.purchase_uom = uom
                changed = True
            if changed:
                template.save()
        else:
            template = Template(
                name=row["name"],
                code=row["sku"],
                type="goods",
                default_uom=uom,
                purchasable=True,
                purchase_uom=uom,
                list_price=Decimal("0"),
                cost_price_method="fixed",
                account_category=category,
            )
            template.save()
        price = Decimal(row["price"])
        supplier = parties[row["supplier"]]
        links = ProductSupplier.find([("template", "=", template.id), ("party", "=", supplier.id)], limit=1)
        link = links[0] if links else ProductSupplier(template=template, party=supplier)
        currency = currency_for(row["currency"])
        dirty = not links or link.currency != currency
        link.currency = currency
        prices = list(link.prices)
        if len(prices) == 1 and prices[0].quantity == 0:
            if prices[0].unit_price != price:
                prices[0].unit_price = price
                dirty = True
        else:
            if prices:
                # Removing from the One2Many would only unlink them (and trip the company rule): delete.
                ProductSupplierPrice.delete(prices)
                link.reload()
            link.prices.new(quantity=0.0, unit_price=price)
            dirty = True
        if dirty:
            link.save()

    if spec.get("login") and spec["login"] != "admin":
        _ensure_user(User, spec["login"], spec.get("password"), company)

    _ensure_reference_index(database)
    return {"suppliers": sorted(parties), "products": len(spec["items"])}


def _accounts(Account: Any, company: Any) -> dict[str, Any]:
    """Receivable, payable, revenue, expense accounts of the chart (account/tests/tools.py get_accounts)."""
    accounts = {}
    for kind in ("receivable", "payable", "revenue", "expense"):
        found = Account.find(
            [(f"type.{kind}", "=", True), ("company", "=", company.id), ("closed", "!=", True)], limit=1
        )
        if not found:
            raise ErpSetupError(f"the chart of accounts has no {kind} account")
        accounts[kind] = found[0]
    return accounts


def _ensure_fiscal_year(company: Any) -> None:
    """A fiscal year with monthly periods covering today (account/tests/tools.py create_fiscalyear)."""
    from dateutil.relativedelta import relativedelta
    from proteus import Model

    FiscalYear = Model.get("account.fiscalyear")
    today = dt.date.today()
    if FiscalYear.find([("company", "=", company.id), ("start_date", "<=", today), ("end_date", ">=", today)]):
        return
    Sequence = Model.get("ir.sequence.strict")
    SequenceType = Model.get("ir.sequence.type")
    start = today - relativedelta(months=6, day=1)
    end = today + relativedelta(months=5, day=31)
    # Do not overlap an existing fiscal year (Tryton refuses): start the day after the last one ends.
    previous = FiscalYear.find([("company", "=", company.id), ("end_date", ">=", start)], order=[("end_date", "DESC")])
    if previous:
        start = previous[0].end_date + dt.timedelta(days=1)
    name = f"{start:%Y-%m}..{end:%Y-%m}"
    fiscalyear = FiscalYear(name=name, start_date=start, end_date=end, company=company)
    move_type = SequenceType.find([("name", "=", "Account Move")], limit=1)[0]
    move_seq = Sequence(name=name, sequence_type=move_type, company=company)
    move_seq.save()
    fiscalyear.move_sequence = move_seq
    # account_invoice/tests/tools.py set_fiscalyear_invoice_sequences.
    invoice_type = SequenceType.find([("name", "=", "Invoice")], limit=1)[0]
    invoice_seq = Sequence(name=name, sequence_type=invoice_type, company=company)
    invoice_seq.save()
    seq = fiscalyear.invoice_sequences[0]
    seq.out_invoice_sequence = invoice_seq
    seq.in_invoice_sequence = invoice_seq
    seq.out_credit_note_sequence = invoice_seq
    seq.in_credit_note_sequence = invoice_seq
    fiscalyear.save()
    fiscalyear.click("create_period")


def _ensure_user(User: Any, login: str, password: str | None, company: Any) -> None:
    """An ERP user other than admin, in every access group, working for the company.

    Tryton's admin holds no groups (it is the ``administrator`` user), so there is nothing to copy from it.
    """
    from proteus import Model

    found = User.find([("login", "=", login)], limit=1)
    user = found[0] if found else User(login=login, name=login)
    have = {g.id for g in user.groups}
    for group in Model.get("res.group").find([]):
        if group.id not in have:
            user.groups.append(group)
    if company not in user.companies:
        user.companies.append(company)
    user.company = company
    if password:
        user.password = password
    user.save()


def _ensure_reference_index(database: str) -> None:
    """UNIQUE index on ``purchase_purchase(reference)``, ignoring empty references.

    Raises:
        ErpSetupError: existing purchases share a reference (listed), so the index cannot be created.
    """
    from trytond.transaction import Transaction

    with Transaction().start(database, 0) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute(
            "SELECT reference FROM purchase_purchase WHERE reference IS NOT NULL AND reference <> '' "
            "GROUP BY reference HAVING COUNT(*) > 1"
        )
        duplicates = [r[0] for r in cursor.fetchall()]
        if duplicates:
            raise ErpSetupError(
                f"purchases share references {duplicates[:10]}; fix them before the unique index can be created"
            )
        cursor.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {REFERENCE_INDEX} ON purchase_purchase (reference) "
            "WHERE reference IS NOT NULL AND reference <> ''"
        )
        transaction.commit()


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.erp.setup")
    sub = parser.add_subparsers(dest="command", required=True)
    pop = sub.add_parser("populate", help="create/update company, accounts, suppliers, products (spec on stdin)")
    pop.add_argument("--config", required=True)
    pop.add_argument("--database", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    spec = json.load(sys.stdin)
    result = _populate_in_process(args.config, args.database, spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
