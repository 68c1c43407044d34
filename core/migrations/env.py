"""Alembic environment: runs migrations over a synchronous psycopg connection.

The URL comes from the Alembic config's ``sqlalchemy.url`` main option, set by :func:`core.migrate.upgrade`.
"""

from alembic import context
from sqlalchemy import create_engine, pool

from core.db import metadata

config = context.config


def run_migrations_online() -> None:
    """Apply migrations to the configured database."""
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():  # pragma: no cover
    raise SystemExit("offline migrations are not supported")
run_migrations_online()
