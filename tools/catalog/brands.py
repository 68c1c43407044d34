"""Brand words from the item master's supplier names: "unga 2kg" names the 2 kg flour that UNGA LTD supplies.

Staff name a product by its maker as often as by what it is ("superloaf", "kenchic eggs", "bidco"), and an ERP
item master often records the maker as the item's supplier. A word of a supplier's name stands for that supplier's
items only when it is a brand word: not a word of any item name (``HYGIENE PLUS`` does not make "hygiene" a brand
where items say HYGIENE) and not a company-form word (``LTD``, ``SUPPLIES``...). Nothing here is about particular
products: the table is built from the catalogue it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from weakref import WeakKeyDictionary

from core.domain import CatalogItem
from tools.catalog.index import CatalogIndex
from tools.catalog.text import tokens

# Words of company names that say what kind of company it is, not who (general English business vocabulary).
_COMPANY_WORDS = frozenset(
    {
        "ltd", "limited", "plc", "inc", "co", "company", "corp", "corporation", "group", "holding", "holdings",
        "enterprise", "enterprises", "trading", "trader", "traders", "supply", "supplies", "supplier",
        "suppliers", "distributor", "distributors", "wholesale", "wholesaler", "wholesalers", "store", "stores",
        "shop", "mart", "general", "international", "intl", "east", "africa", "african", "kenya", "k", "llc",
        "industry", "industries", "manufacturer", "manufacturers", "sons", "brother", "brothers", "and",
    }
)  # fmt: skip
# Shorter words are too likely to be something else ("ab", "dr").
_MIN_LEN = 3

_TABLES: WeakKeyDictionary[CatalogIndex, dict[str, tuple[CatalogItem, ...]]] = WeakKeyDictionary()


def brand_table(catalog: CatalogIndex) -> dict[str, tuple[CatalogItem, ...]]:
    """Brand word -> the items whose supplier name has it, for this catalogue (built once per index).

    Returns:
        A mapping from lower-case brand words to items in catalogue order; empty when suppliers are codes that
        are also item words, or absent.
    """
    table = _TABLES.get(catalog)
    if table is not None:
        return table
    found: dict[str, list[CatalogItem]] = {}
    for item in catalog.items:
        for word in dict.fromkeys(tokens(item.supplier or "")):
            if len(word) < _MIN_LEN or not word.isalpha() or word in _COMPANY_WORDS or word in catalog.vocabulary:
                continue
            found.setdefault(word, []).append(item)
    table = {w: tuple(items) for w, items in found.items()}
    _TABLES[catalog] = table
    return table


def brand_items(words: Sequence[str], catalog: CatalogIndex) -> tuple[tuple[CatalogItem, ...], list[str]]:
    """The items the brand words among ``words`` name (all of them must agree), and the other words.

    Args:
        words: the words of one item mention (``["unga", "2kg"]``).
        catalog: the index whose item master the brands come from.

    Returns:
        ``(items, rest)``: the items supplied under every brand word found (empty when there is none, or when
        two brand words name no common item) and the words that are not brand words, in order.
    """
    table = brand_table(catalog)
    named: set[str] | None = None
    rest: list[str] = []
    for w in words:
        hits = table.get(w.lower())
        if hits is None:
            rest.append(w)
            continue
        skus = {i.sku for i in hits}
        named = skus if named is None else named & skus
    if not named:
        return (), list(words)
    return tuple(i for i in catalog.items if i.sku in named), rest
