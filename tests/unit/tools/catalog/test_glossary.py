"""The bilingual glossary: parsing, reading unknown words into catalogue words, and requests that use it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.repo import parse_catalog_csv
from tools.catalog import CatalogIndex
from tools.catalog.glossary import GlossaryError, load_glossary, parse_glossary, translated
from tools.extraction import extract

TSV = (
    "word\tmeaning\tkind\n"
    "simiti\tcement\tsw\n"
    "mabati\tiron sheets\tsw\n"
    "mabati\troofing sheet\tsw\n"
    "nyeupe\twhite\tcolour\n"
    "rangi\tpaint\tsw\n"
    "biro\tballpoint pen\tsyn\n"
    "unga\tflour\tsw\n"
)
GLOSSARY = parse_glossary(TSV)
ITEMS = parse_catalog_csv(
    "sku,name,unit,unit_price,currency,supplier\n"
    "CN-1,CEMENT OPC 42.5N 50KG BAG,BAG,9.40,USD,BUILDMART\n"
    "CN-2,ROOFING SHEET GAUGE 28 - 3M,PCS,7.50,USD,BUILDMART\n"
    "CN-3,PAINT EMULSION WHITE 20L BUCKET,BKT,54,USD,BUILDMART\n"
    "CN-4,PAINT EMULSION CREAM 20L BUCKET,BKT,54,USD,BUILDMART\n"
    "ST-1,PEN BALLPOINT BLUE - BOX OF 50,BOX,4,USD,OFFICEMART\n"
    "FL-1,MAIZE FLOUR SIFTED 2KG - BALE 12,BALE,19,USD,UNGA LTD\n"
)
INDEX = CatalogIndex(ITEMS)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Africa/Nairobi"))


def test_meanings_are_kept_in_catalogue_token_form_and_file_order() -> None:
    assert GLOSSARY.meanings["mabati"] == (("iron", "sheet"), ("roofing", "sheet"))
    assert GLOSSARY.colours == {"nyeupe": "white"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("word,meaning,kind\nx,y,sw\n", "header"),
        ("word\tmeaning\tkind\nsimiti\tcement\n", "line 2"),
        ("word\tmeaning\tkind\nsimiti\tcement\tfrench\n", "kind"),
        ("word\tmeaning\tkind\nsimiti\t \tsw\n", "line 2"),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(text: str, error: str) -> None:
    with pytest.raises(GlossaryError, match=error):
        parse_glossary(text)


def test_only_words_the_catalogue_lacks_are_read_and_only_into_words_it_has() -> None:
    vocab = INDEX.vocabulary
    assert translated(["simiti", "42.5"], vocab, GLOSSARY) == ["cement", "42.5"]
    assert translated(["mabati"], vocab, GLOSSARY) == ["roofing", "sheet"]  # "iron sheet": no iron here
    assert translated(["biros"], vocab, GLOSSARY) == ["ballpoint", "pen"]  # plural forms read too
    assert translated(["cement"], vocab, GLOSSARY) == ["cement"]
    own = CatalogIndex(parse_catalog_csv("sku,name,unit,unit_price\nM-1,MABATI GAUGE 30 - 3M,PCS,7\n"))
    assert translated(["mabati"], own.vocabulary, GLOSSARY) == ["mabati"]  # the catalogue's own word wins


def test_requests_in_swahili_and_trade_words_reach_the_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.catalog.glossary.load_glossary", lambda *a: GLOSSARY)

    def read(text: str) -> list[tuple[str | None, str, str]]:
        lines = extract(text, INDEX, now=NOW, sites=["Nairobi"]).lines
        return [(ln.sku, str(ln.quantity), ln.unit) for ln in lines]

    assert read("mifuko kumi ya simiti 42.5") == [("CN-1", "10", "bag")]
    assert read("rangi nyeupe ndoo mbili") == [("CN-3", "2", "bkt")]  # the colour read too: not the cream
    assert read("blue biros 3 boxes") == [("ST-1", "3", "box")]
    assert read("mabati gauge 28, 40 pieces") == [("CN-2", "40", "pcs")]


def test_the_bundled_glossary_parses() -> None:
    glossary = load_glossary()
    assert glossary.meanings, "tools/catalog/glossary.tsv is empty or missing"
    assert all(all(m) for ms in glossary.meanings.values() for m in ms)
