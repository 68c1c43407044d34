"""Schema migrations (Alembic) and the LangGraph checkpointer tables, applied by ``procure db upgrade``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from core.embedded import libpq_url, sqlalchemy_url

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Alembic config pointing at ``core/migrations`` and ``database_url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: '%' must be doubled.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, *, wait_seconds: float = 0) -> None:
    """Apply every migration and the checkpointer's own schema.

    Safe to run concurrently from several processes: Alembic runs in one transaction guarded by an advisory lock.

    Args:
        database_url: the PostgreSQL URI.
        wait_seconds: keep retrying a database that does not accept connections yet (starting, restarting,
            failing over) for up to this long, with backoff; 0 fails at once.

    Raises:
        psycopg.OperationalError: the database could not be reached (within ``wait_seconds``).
    """
    with _connect_waiting(libpq_url(database_url), wait_seconds) as conn:
        conn.execute("SELECT pg_advisory_lock(4242)")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            command.upgrade(alembic_config(database_url), "head")
            _setup_checkpointer_sync(database_url)
        finally:
            conn.execute("SELECT pg_advisory_unlock(4242)")


def _connect_waiting(url: str, wait_seconds: float) -> Any:
    import psycopg
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

    def log_wait(state: Any) -> None:
        log.warning("database not reachable yet (%s); retrying", type(state.outcome.exception()).__name__)

    for attempt in Retrying(
        retry=retry_if_exception_type(psycopg.OperationalError),
        stop=stop_after_delay(wait_seconds),
        wait=wait_exponential(multiplier=0.2, max=5),
        before_sleep=log_wait,
        reraise=True,
    ):
        with attempt:
            return psycopg.connect(url, autocommit=True)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def _setup_checkpointer_sync(database_url: str) -> None:
    """LangGraph's checkpoint tables over a synchronous connection (works inside or outside an event loop)."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    with psycopg.connect(libpq_url(database_url), autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        PostgresSaver(conn).setup()
