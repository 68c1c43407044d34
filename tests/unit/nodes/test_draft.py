"""The draft helpers (nodes/draft.py): pure functions returning a new draft, never changing the one given."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.domain import CatalogItem, Draft, Line, Money
from nodes import draft as D
from tools.catalog import CatalogIndex
from tools.extraction import Edit

USD = "USD"
PAPER = Line("A4 paper", Decimal(10), "box", "PAP-A4", Money(Decimal("4.50"), USD), 0.9)
TONER = Line("HP 26A toner", Decimal(2), "piece", "HP-26A", Money(Decimal("80"), USD))
WIDGET = Line("blue widgets", Decimal(3), "piece", None, None, 0.3)
WATER = CatalogItem("WAT-24", "Drinking water (pack of 24 bottles)", "pack", Money(Decimal("6"), USD), "SHOP")


def draft_of(*lines: Line, **fields: object) -> Draft:
    return D.set_field(D.with_lines(None, list(lines)), **fields)


def test_empty_draft_and_lines_round_trip() -> None:
    assert D.empty_draft() == {
        "lines": [],
        "site": None,
        "needed_by": None,
        "notes": [],
        "attachments": [],
        "request_id": None,
    }
    d = draft_of(PAPER, WIDGET)
    assert d["lines"] == [PAPER.to_dict(), WIDGET.to_dict()]
    assert D.lines_of(d) == [PAPER, WIDGET]
    assert D.lines_of(None) == [] and D.lines_of({}) == []
    # The stored form is JSON-safe: amounts as strings.
    assert d["lines"][0]["quantity"] == "10" and d["lines"][0]["unit_price"] == "4.5"


def test_needed_by_and_set_field_store_iso_dates() -> None:
    d = D.set_field(None, site="Nairobi", needed_by=date(2026, 11, 20))
    assert d["needed_by"] == "2026-11-20" and d["site"] == "Nairobi"
    assert D.needed_by_of(d) == date(2026, 11, 20)
    assert D.needed_by_of(None) is None and D.needed_by_of(D.empty_draft()) is None
    with pytest.raises(KeyError):
        D.set_field(d, colour="blue")  # only Draft fields


def test_helpers_never_change_the_draft_given() -> None:
    d = draft_of(PAPER, site="Nairobi")
    before = copy.deepcopy(d)
    D.add_lines(d, [PAPER])
    D.with_lines(d, [TONER])
    D.set_field(d, site="Mombasa")
    D.merge_lines(d, [PAPER], additive=True)
    D.apply_edits(d, [Edit("remove", index=0)])
    assert d == before


def test_add_lines_adds_to_the_same_sku_in_the_same_unit() -> None:
    d = D.add_lines(draft_of(PAPER), [PAPER, TONER])
    assert [(ln.sku, ln.quantity) for ln in D.lines_of(d)] == [("PAP-A4", 20), ("HP-26A", 2)]
    reams = Line("A4 paper", Decimal(3), "ream", "PAP-A4")
    d = D.add_lines(d, [reams, WIDGET, WIDGET])  # another unit, and free-text lines, stay apart
    assert [(ln.sku, ln.unit, ln.quantity) for ln in D.lines_of(d)][2:] == [
        ("PAP-A4", "ream", 3),
        (None, "piece", 3),
        (None, "piece", 3),
    ]


def test_merge_lines_replaces_a_quantity_unless_the_message_adds() -> None:
    six = Line("A4 paper", Decimal(6), "box", "PAP-A4", Money(Decimal("4.50"), USD))
    replaced, log = D.merge_lines(draft_of(PAPER), [six, TONER], additive=False)
    assert [(ln.sku, ln.quantity) for ln in D.lines_of(replaced)] == [("PAP-A4", 6), ("HP-26A", 2)]
    assert [entry["op"] for entry in log] == ["set_quantity", "add"]
    assert log[0]["before"]["quantity"] == "10" and log[0]["after"]["quantity"] == "6"
    added, log = D.merge_lines(draft_of(PAPER), [six], additive=True)
    assert D.lines_of(added)[0].quantity == 16 and log[0]["op"] == "add_quantity"
    assert "add" in D.ADDITIVE_CUES and "ongeza" in D.ADDITIVE_CUES


def test_apply_edits_in_order_with_a_change_log() -> None:
    d = draft_of(PAPER, TONER, WIDGET, site="Nairobi")
    thirty = Line("A4 paper", Decimal(30), "box", "PAP-A4", Money(Decimal("4.50"), USD))
    edits = [
        Edit("set_quantity", index=0, line=thirty),
        Edit("remove", index=2),
        Edit("add", line=Line("stapler", Decimal(1), "piece", "STP-STD")),
        Edit("set_site", site="Mombasa"),
        Edit("set_needed_by", needed_by=date(2026, 11, 27)),
        Edit("remove", index=9),  # out of range: ignored
        Edit("set_quantity", index=5, line=thirty),  # out of range: ignored
    ]
    new, log = D.apply_edits(d, edits)
    assert [(ln.sku, ln.quantity) for ln in D.lines_of(new)] == [("PAP-A4", 30), ("HP-26A", 2), ("STP-STD", 1)]
    assert new["site"] == "Mombasa" and new["needed_by"] == "2026-11-27"
    assert [e["op"] for e in log] == ["set_quantity", "remove", "add", "set_site", "set_needed_by"]
    assert log[3] == {"op": "set_site", "before": "Nairobi", "after": "Mombasa"}
    assert log[1]["before"]["description"] == "blue widgets"


def test_accept_proposal_orders_the_offered_whole_packs() -> None:
    catalog = CatalogIndex([WATER])
    asked = Line("Drinking water", Decimal(50), "bottle", "WAT-24", None, 0.45, proposal="3")
    lines = [PAPER, asked]
    change = D.accept_proposal(lines, catalog)
    assert change == {"op": "set_quantity", "line": 1, "quantity": "3", "unit": "pack"}
    water = lines[1]
    assert (water.quantity, water.unit, water.unit_price) == (Decimal(3), "pack", WATER.unit_price)
    assert water.asked == "50 bottle" and water.proposal is None and water.confidence == 1.0
    assert D.accept_proposal(lines, catalog) is None  # nothing left to accept
    assert D.accept_proposal([Line("x", Decimal(1), "piece", "NOPE", proposal="2")], catalog) is None


def test_idle_hours_and_snapshot() -> None:
    now = datetime(2026, 11, 18, 10, 0, tzinfo=timezone(timedelta(hours=3)))
    d = draft_of(
        PAPER, site="Nairobi", needed_by=date(2026, 11, 20), touched_at=(now - timedelta(hours=30)).isoformat()
    )
    assert D.idle_hours(d, now) == pytest.approx(30.0)
    assert D.idle_hours(draft_of(PAPER), now) == 0.0  # never stamped
    assert D.idle_hours(D.set_field(d, touched_at=(now + timedelta(hours=1)).isoformat()), now) == 0.0
    snap = D.snapshot(d)
    assert snap == {
        "lines": [PAPER.to_dict()],
        "site": "Nairobi",
        "needed_by": "2026-11-20",
        "touched_at": d["touched_at"],
    }
    snap["lines"].clear()
    assert d["lines"]  # a copy, not the draft's own list
