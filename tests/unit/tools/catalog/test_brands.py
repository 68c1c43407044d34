"""Brand words read from the item master's supplier names, and requests that name a product by its maker."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.repo import parse_catalog_csv
from tools.catalog import CatalogIndex
from tools.catalog.brands import brand_items, brand_table
from tools.extraction import extract

CSV = (
    "sku,name,unit,unit_price,currency,supplier\n"
    "CT-1,MAIZE FLOUR SIFTED 2KG - BALE 12,BALE,19.00,USD,ZESTARO LTD\n"
    "CT-2,MAIZE FLOUR POSHO 50KG BAG,BAG,32.00,USD,ZESTARO LTD\n"
    "CT-3,EGGS FRESH - TRAY 30,TRAY,4.20,USD,KENCHIC\n"
    "CL-1,DETERGENT POWDER 5KG BAG,BAG,7.80,USD,HYGIENE SUPPLIES\n"
    "CL-2,HYGIENE BIN PEDAL 20L,PCS,12.00,USD,HYGIENE SUPPLIES\n"
)
INDEX = CatalogIndex(parse_catalog_csv(CSV))
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Africa/Nairobi"))


def test_brand_words_are_supplier_words_that_no_item_name_uses() -> None:
    table = brand_table(INDEX)
    assert set(table) == {"zestaro", "kenchic"}  # "hygiene" is an item word, "ltd"/"supplies" say what kind of company
    assert [i.sku for i in table["zestaro"]] == ["CT-1", "CT-2"]


def test_other_words_are_kept_for_narrowing() -> None:
    items, rest = brand_items(["zestaro", "2kg"], INDEX)
    assert [i.sku for i in items] == ["CT-1", "CT-2"] and rest == ["2kg"]
    assert brand_items(["cement"], INDEX) == ((), ["cement"])


def test_a_brand_and_a_size_name_one_item_shown_for_checking_in_the_catalogue_unit() -> None:
    (line,) = extract("24 packets of zestaro 2kg", INDEX, now=NOW, sites=["Nairobi"]).lines
    assert (line.sku, str(line.quantity), line.unit, line.candidates) == ("CT-1", "2", "bale", ["CT-1"])


def test_a_brand_alone_with_several_items_is_asked_about() -> None:
    (line,) = extract("5 zestaro", INDEX, now=NOW, sites=["Nairobi"]).lines
    assert line.sku is None and sorted(line.candidates) == ["CT-1", "CT-2"]
