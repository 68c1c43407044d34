"""Catalogues the evaluation conversations are written against: locate a conversation's CSV and read it (cached).

A conversation's optional ``catalog`` field is a CSV path relative to the repository root (default
``examples/catalog.csv``), in the import format ``sku,name,unit,unit_price,currency,supplier,category,aliases``.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from core.domain import CatalogItem, Money

#: The repository root; catalogue paths in datasets are relative to it.
ROOT = Path(__file__).resolve().parent.parent

#: The example catalogue the original datasets are written against (the default ``catalog``).
CATALOG_PATH = ROOT / "examples" / "catalog.csv"


def catalog_path_of(catalog: str | Path | None) -> Path:
    """Absolute path of a conversation's ``catalog`` value (``None``: :data:`CATALOG_PATH`).

    Raises:
        ValueError: the path is absolute, leaves the repository, or is not a ``.csv`` file.
    """
    if catalog is None:
        return CATALOG_PATH
    relative = Path(catalog)
    path = (ROOT / relative).resolve()
    if relative.is_absolute() or not path.is_relative_to(ROOT) or path.suffix != ".csv":
        raise ValueError(f"catalog {str(catalog)!r} must be a .csv path inside the repository")
    return path


@lru_cache(maxsize=16)
def _read_catalog(path: Path) -> tuple[CatalogItem, ...]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tuple(
        CatalogItem(
            sku=row["sku"].strip(),
            name=row["name"].strip(),
            unit=row["unit"].strip().lower(),
            unit_price=Money(Decimal(row["unit_price"]), row["currency"]),
            supplier=row["supplier"].strip(),
            category=(row.get("category") or "").strip(),
            aliases=tuple(a.strip().lower() for a in (row.get("aliases") or "").split(";") if a.strip()),
        )
        for row in rows
    )


def load_catalog(path: Path = CATALOG_PATH) -> dict[str, CatalogItem]:
    """Read a catalogue CSV (cached per file); units are lower-cased as the catalogue import stores them.

    Args:
        path: CSV file; aliases are ``;``-separated.

    Returns:
        Items by SKU, in file order.

    Raises:
        OSError: the file cannot be read.
        KeyError: a required column is missing.
    """
    return {item.sku: item for item in _read_catalog(Path(path).resolve())}
