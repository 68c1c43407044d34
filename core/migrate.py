"""Schema migrations (Alembic) and the LangGraph checkpointer tables, applied by ``procure db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.embedded import libpq_url, sqlalchemy_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Alembic config pointing at ``core/migrations`` and ``database_url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: '%' must be doubled.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Apply every migration and the checkpointer's own schema.

    Safe to run concurrently from several processes: Alembic runs in one transaction guarded by an advisory lock.
    """
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(4242)")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            command.upgrade(alembic_config(database_url), "head")
            _setup_checkpointer_sync(database_url)
        finally:
            conn.execute("SELECT pg_advisory_unlock(4242)")


def _setup_checkpointer_sync(database_url: str) -> None:
    """LangGraph's checkpoint tables over a synchronous connection (works inside or outside an event loop)."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    with psycopg.connect(libpq_url(database_url), autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        PostgresSaver(conn).setup()
