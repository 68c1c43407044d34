"""Answers to "which one?" read against the candidates' own names (tools/extraction/choices.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.repo import parse_catalog_csv
from tools.catalog import CatalogIndex
from tools.extraction import extract, parse_edits

INDEX = CatalogIndex(
    parse_catalog_csv(
        "sku,name,unit,unit_price\n"
        "GB-9,GUMBOOTS BLACK SIZE 9,PR,8\nGB-10,GUMBOOTS BLACK SIZE 10,PR,8\n"
        "T-A,TONER HP 26A BLACK CF226A,PCS,60\nT-X,TONER HP 26X BLACK HIGH YIELD CF226X,PCS,95\n"
        "F-32,FLASH DRIVE USB 32GB,PCS,6\nF-64,FLASH DRIVE USB 64GB,PCS,9\n"
        "OF-1,FILTER OIL TRACTOR MF 375 PERKINS,PCS,7\nOF-2,FILTER OIL TOYOTA HILUX 2KD 90915-YZZD2,PCS,6.9\n"
        "B-5,BLEACH 3.5% 5L JERRYCAN,JCN,5.6\nB-20,BLEACH 3.5% 20L JERRYCAN,JCN,19.5\n"
        "G-S,GLOVES NITRILE SMALL - BOX 100,BOX,9\nG-M,GLOVES NITRILE MEDIUM - BOX 100,BOX,9\n"
        "G-L,GLOVES NITRILE LARGE - BOX 100,BOX,9\n"
    )
)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Africa/Nairobi"))


@pytest.mark.parametrize(
    ("request_text", "answer", "sku", "quantity"),
    [
        ("gumboots 5 pairs", "10 pls", "GB-10", "5"),  # a size number, not an amount
        ("2 toners hp 26", "the normal one not high yield", "T-A", "2"),
        ("10 flash drives", "64 gig", "F-64", "10"),
        ("4 oil filters", "for the hilux 2kd, the double cabs", "OF-2", "4"),  # words after the choice add nothing
        ("bleach for the laundry", "2 of the 20 litre ones", "B-20", "2"),  # a count said with the choice
        ("4 boxes nitrile gloves", "medium pls, the nurses say the large ones are too big", "G-M", "4"),
    ],
)
def test_the_answer_picks_one_candidate(request_text: str, answer: str, sku: str, quantity: str) -> None:
    draft = extract(request_text, INDEX, now=NOW, sites=["Nairobi"]).lines
    assert draft[0].sku is None and len(draft[0].candidates) >= 2
    edits = parse_edits(answer, draft, INDEX, now=NOW, sites=["Nairobi"])
    assert [(e.op, e.line.sku, str(e.line.quantity)) for e in edits if e.line] == [("replace_item", sku, quantity)]


def test_an_amount_is_still_an_amount() -> None:
    draft = extract("gumboots 5 pairs", INDEX, now=NOW, sites=["Nairobi"]).lines
    edits = parse_edits("make it 12 pairs", draft, INDEX, now=NOW, sites=["Nairobi"])
    assert [(e.op, str(e.line.quantity)) for e in edits if e.line] == [("set_quantity", "12")]
