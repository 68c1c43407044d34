"""What every ``procure`` command module shares: logging set-up, service URLs and a migrated database engine.

Command modules (:mod:`server.cli.users`, :mod:`server.cli.fulfilment`, ...) import this one and never each
other, except :mod:`server.cli.root`, which assembles their Typer apps into ``procure``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from core.config import Settings
from core.db import make_engine
from core.embedded import ensure_services
from core.migrate import upgrade


def setup_logging(level: str = "INFO") -> None:
    """Plain structured-ish log lines on stderr (secrets are never passed to the logger)."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "arq.worker", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def resolve_services(settings: Settings) -> Any:
    """Service URLs: configured ones, or embedded PostgreSQL/Redis started under ``DATA_DIR``."""
    return ensure_services(settings.DATABASE_URL, settings.REDIS_URL, Path(settings.DATA_DIR))


async def migrated_engine(settings: Settings) -> Any:
    """A small-pool SQLAlchemy async engine on a database whose migrations have been applied."""
    svc = resolve_services(settings)
    await asyncio.to_thread(upgrade, svc.database_url)
    return make_engine(svc.database_url, pool_size=2)
