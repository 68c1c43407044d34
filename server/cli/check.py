"""``procure check``: validate the configuration before starting, one line per check, non-zero exit on a failure.

Checks: settings load; no placeholder secrets (a failure in production, a warning in development and test);
PostgreSQL reachable; migrations current (Alembic head == the database's revision); Redis reachable; credentials
present for every configured channel (:func:`server.channels.registry.build`); LLM and embedding settings usable.
Secret values are never printed: only the names of the settings concerned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import typer
from pydantic import SecretStr, ValidationError

from core.config import PLACEHOLDER, Settings, get_settings

Status = Literal["ok", "warn", "FAIL"]
#: Settings that hold secrets of the service itself (channel secrets are found by their channel's prefix).
SECRETS = ("META_APP_SECRET", "META_VERIFY_TOKEN", "META_ACCESS_TOKEN", "ADMIN_API_TOKEN")
#: Seconds each network check may take.
TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Result:
    """One check's outcome: ``status``, the check's ``name`` and a ``detail`` without secret values."""

    status: Status
    name: str
    detail: str

    def line(self) -> str:
        """``"ok    database: reachable"``."""
        return f"{self.status:<5} {self.name}: {self.detail}"


def _placeholder(value: str) -> bool:
    return value.strip() in ("", PLACEHOLDER) or value.strip().strip("0") == ""


def check_settings() -> tuple[Settings | None, list[Result]]:
    """Load the settings; on a validation error report each error (never the input) and retry as development.

    Returns:
        ``(settings or None, results)``: settings with ``ENVIRONMENT`` forced to ``development`` when only the
        production rules failed, so the other checks can still run.
    """
    try:
        return get_settings(), [Result("ok", "settings", "loaded")]
    except ValidationError as exc:
        results = [
            Result("FAIL", "settings", f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}")
            for e in exc.errors(include_input=False, include_url=False)
        ]
    try:
        return Settings(ENVIRONMENT="development"), results
    except ValidationError:
        return None, results


def check_secrets(settings: Settings, production: bool) -> list[Result]:
    """Placeholder or empty secrets: ``FAIL`` in production, ``warn`` otherwise."""
    bad = [n for n in SECRETS if _placeholder(getattr(settings, n).get_secret_value())]
    if not bad:
        return [Result("ok", "secrets", "no placeholder secrets")]
    status: Status = "FAIL" if production else "warn"
    return [Result(status, "secrets", f"placeholder value in {', '.join(bad)}")]


def check_channels(settings: Settings, production: bool) -> list[Result]:
    """For every configured channel, its ``<NAME>_*`` settings are set (``FAIL``) and not placeholders.

    A placeholder (``changethis``, an all-zero id) is a ``FAIL`` in production and a ``warn`` otherwise.
    """
    from server.channels import registry

    results = []
    try:
        built = registry.build(settings)
    except Exception as exc:
        return [Result("FAIL", "channels", f"could not be built: {type(exc).__name__}: {exc}")]
    for name, channel in built.items():
        prefix = f"{name.upper()}_"
        missing, placeholders = [], []
        for field in sorted(Settings.model_fields):
            if not field.startswith(prefix):
                continue
            value = getattr(settings, field)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is None or (isinstance(value, str) and not value.strip()):
                missing.append(field)
            elif isinstance(value, str) and _placeholder(value):
                placeholders.append(field)
        title = getattr(channel, "title", name)
        if missing:
            results.append(Result("FAIL", f"channel {name}", f"{title}: not set: {', '.join(missing)}"))
        if placeholders:
            status: Status = "FAIL" if production else "warn"
            results.append(
                Result(status, f"channel {name}", f"{title}: placeholder value in {', '.join(placeholders)}")
            )
        if not missing and not placeholders:
            results.append(Result("ok", f"channel {name}", f"{title}: credentials present"))
    return results or [Result("FAIL", "channels", "no channel is configured")]


def check_database(database_url: str) -> list[Result]:
    """PostgreSQL answers, and its Alembic revision is the code's head revision."""
    import psycopg
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from core.embedded import libpq_url, sqlalchemy_url
    from core.migrate import alembic_config

    try:
        with psycopg.connect(libpq_url(database_url), connect_timeout=TIMEOUT_SECONDS) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except Exception as exc:
        return [Result("FAIL", "database", f"not reachable: {type(exc).__name__}")]
    results = [Result("ok", "database", f"reachable (PostgreSQL {version[0] if version else '?'})")]
    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    engine = create_engine(sqlalchemy_url(database_url), connect_args={"connect_timeout": TIMEOUT_SECONDS})
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:
        return [*results, Result("FAIL", "migrations", f"could not read the revision: {type(exc).__name__}")]
    finally:
        engine.dispose()
    if current == heads:
        results.append(Result("ok", "migrations", f"current ({', '.join(sorted(heads))})"))
    else:
        have = ", ".join(sorted(current)) or "none"
        results.append(
            Result(
                "FAIL", "migrations", f"database at {have}, code at {', '.join(sorted(heads))}: run procure db upgrade"
            )
        )
    return results


def check_redis(redis_url: str) -> list[Result]:
    """Redis answers PING."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
        try:
            client.ping()
            info: Any = client.info("server")
            version = info.get("redis_version", "?")
        finally:
            client.close()
    except Exception as exc:
        return [Result("FAIL", "redis", f"not reachable: {type(exc).__name__}")]
    return [Result("ok", "redis", f"reachable (Redis {version})")]


def check_models(settings: Settings) -> list[Result]:
    """The chat model can be built from ``LLM_*`` and the embedding model loads (neither is called)."""
    from core.llm import make_chat_model
    from tools.catalog.embeddings import load_embedder

    results = []
    if settings.LLM_BASE_URL and not settings.LLM_BASE_URL.startswith(("http://", "https://")):
        results.append(Result("FAIL", "llm", "LLM_BASE_URL is not an http(s) URL"))
    elif not settings.LLM_MODEL:
        results.append(Result("ok", "llm", "no LLM_MODEL: the deterministic path serves"))
    else:
        try:
            make_chat_model(settings)
            results.append(Result("ok", "llm", f"{settings.LLM_MODEL} configured"))
        except Exception as exc:
            results.append(Result("FAIL", "llm", f"{settings.LLM_MODEL}: {type(exc).__name__}"))
    try:
        embedder = load_embedder(settings.EMBEDDING_MODEL)
        what = "lexical catalogue search only" if embedder is None else f"{settings.EMBEDDING_MODEL} loads"
        results.append(Result("ok", "embeddings", what))
    except Exception as exc:
        results.append(Result("FAIL", "embeddings", f"{settings.EMBEDDING_MODEL}: {type(exc).__name__}"))
    if settings.CONTEXT_WINDOW_MESSAGES < 1:
        results.append(Result("FAIL", "llm", "CONTEXT_WINDOW_MESSAGES must be at least 1"))
    return results


def run_checks(echo: Callable[[str], Any] = typer.echo) -> int:
    """Run every check, print one line each through ``echo``; returns the exit code (1 on any ``FAIL``)."""
    settings, results = check_settings()
    for r in results:
        echo(r.line())
    if settings is None:
        return 1

    def report(found: list[Result]) -> None:
        results.extend(found)
        for r in found:
            echo(r.line())

    production = get_settings_environment() == "production"
    report(check_secrets(settings, production))
    report(check_channels(settings, production))
    svc: Any = None
    try:
        from core.embedded import ensure_services

        svc = ensure_services(settings.DATABASE_URL, settings.REDIS_URL, settings.DATA_DIR)
    except Exception as exc:
        report([Result("FAIL", "embedded services", f"could not start: {type(exc).__name__}")])
    if svc is not None:
        try:
            report(check_database(svc.database_url))
            report(check_redis(svc.redis_url))
        finally:
            svc.stop()  # embedded servers started for the check only are stopped again
    report(check_models(settings))
    return 1 if any(r.status == "FAIL" for r in results) else 0


def get_settings_environment() -> str:
    """``ENVIRONMENT`` as configured (``check_settings`` may have fallen back to development to go on)."""
    try:
        return get_settings().ENVIRONMENT
    except ValidationError:
        return "production"  # only the production rules make a valid ENVIRONMENT fail to load


def check(
    quiet: Annotated[bool, typer.Option(help="print only warnings and failures")] = False,
) -> None:
    """Validate configuration: secrets, database and migrations, Redis, channel credentials, LLM and embeddings."""
    lines: list[str] = []
    code = run_checks(lines.append)
    for line in lines:
        if not quiet or not line.startswith("ok "):
            typer.echo(line)
    typer.echo("all checks passed" if code == 0 else "some checks FAILED")
    raise typer.Exit(code)
