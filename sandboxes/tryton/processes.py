"""Reference Tryton, processes: trytond configuration files, console scripts, child environments, PostgreSQL.

What :mod:`sandboxes.tryton.setup` and :mod:`sandboxes.tryton.server` share to start ``trytond`` tools as child
processes (https://docs.tryton.org/projects/server/en/latest/topics/configuration.html).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

MODULES = ("purchase", "purchase_request", "purchase_requisition")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ErpSetupError(RuntimeError):
    """Preparing the Tryton database failed; the message carries the tail of the tool's output."""


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


def run_tool(cmd: list[str], *, what: str, env: dict[str, str], stdin: str | None = None, timeout: float) -> str:
    """Run a child process to completion and return its stdout.

    Raises:
        ErpSetupError: it timed out (``timeout`` seconds) or exited non-zero (the message holds its output's tail).
    """
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


def redact(uri: str) -> str:
    """``uri`` with its password replaced by ``***`` (for logs and results)."""
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def pg_prepare(server_uri: str, database: str) -> bool:
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


def trytond_admin(config: Path, database: str, admin_password: str, admin_email: str, timeout: float) -> None:
    """Create or update ``database`` and activate :data:`MODULES` with ``trytond-admin`` (~20 s on SQLite).

    The admin password goes through a private ``TRYTONPASSFILE``, never the command line.

    Raises:
        ErpSetupError: trytond-admin failed or timed out.
    """
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
        run_tool(cmd, what=f"trytond-admin on {database}", env=env, timeout=timeout)
