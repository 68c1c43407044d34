"""A process's catalogue index, rebuilt only when the catalogue or its learned aliases changed."""

from __future__ import annotations

import time
from types import EllipsisType
from typing import Any

from sqlalchemy import func, select

from core.db import catalog_aliases, catalog_items
from tools.catalog.embeddings import load_embedder
from tools.catalog.index import CatalogIndex
from tools.catalog.store import load_index


class CatalogCache:
    """Holds the current :class:`CatalogIndex`, reloaded when another process changed the catalogue.

    The catalogue table's row count and last ``updated_at`` and the learned aliases' count and last id are
    checked at most every ``check_seconds`` (one cheap query); the index is rebuilt when they differ. Item
    vectors are read from ``catalog_items.embedding`` (computed at import), never recomputed here.

    Args:
        check_seconds: how often, in seconds, to look for a changed catalogue.
        embedding_model: an ``EMBEDDING_MODEL`` value (``None``/``"none"``: lexical only); the model embeds
            queries at run time.
    """

    def __init__(self, check_seconds: float = 5.0, *, embedding_model: str | None = None) -> None:
        self.check_seconds = check_seconds
        self.embedding_model = embedding_model
        self._index: CatalogIndex | None = None
        self._version: tuple[object, ...] | None = None
        self._checked = 0.0

    async def get(self, engine: Any, *, embedding_model: str | None | EllipsisType = ...) -> CatalogIndex:
        """The current index, loaded with ``engine`` (an SQLAlchemy ``AsyncEngine``) when needed.

        Args:
            engine: the database.
            embedding_model: overrides the constructor's ``EMBEDDING_MODEL`` value when given.
        """
        if not isinstance(embedding_model, EllipsisType) and embedding_model != self.embedding_model:
            self.embedding_model, self._index = embedding_model, None


        now = time.monotonic()
        if self._index is not None and now - self._checked < self.check_seconds:
            return self._index
        async with engine.connect() as conn:
            items = select(func.count(), func.max(catalog_items.c.updated_at)).select_from(catalog_items)
            learned = select(func.count(), func.max(catalog_aliases.c.id)).select_from(catalog_aliases)
            version = (*(await conn.execute(items)).one(), *(await conn.execute(learned)).one())
            if self._index is None or version != self._version:
                self._index = await load_index(conn, load_embedder(self.embedding_model))
                self._version = version
        self._checked = now
        return self._index
