"""Requests against an ERP-style item master (no aliases) through the procurement graph: units, drafts, dates.

The item master is ``tests/data/extraction/item_master.csv`` (UoM codes such as PKT, BKT, JCN; pack sizes only in
the names). ``NOW`` of the harness is Wednesday 2026-11-18 10:00 in Nairobi.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.domain import Line
from tests.support.harness import NOW, Company, button

ITEM_MASTER = Path(__file__).parents[2] / "data" / "extraction" / "item_master.csv"


class Clocked(Company):
    """A company whose clock can be moved between turns."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.now = NOW

    async def ctx(self, user: Any) -> Any:
        ctx = await super().ctx(user)
        ctx.now = self.now
        return ctx


@pytest.fixture
async def company(engine, clean) -> tuple[Clocked, dict[str, Any]]:
    from core.repo import add_user, import_catalog

    await import_catalog(engine, ITEM_MASTER)
    people = {
        "amina": await add_user(engine, phone="+254700000001", name="Amina", role="requester", site="Nairobi"),
        "brian": await add_user(engine, phone="+254700000002", name="Brian", role="approver", site="Nairobi",
                                approval_limit=Decimal("2000")),  # fmt: skip
    }
    return Clocked(engine), people


def lines(co: Company) -> list[Line]:
    return [Line.from_dict(d) for d in (co.last_state.get("draft") or {}).get("lines", [])]


def texts(out: list[dict[str, Any]]) -> str:
    return "\n".join(m["text"] for m in out)


async def test_bottles_become_packs_and_both_are_shown(company):
    co, people = company
    out = await co.turn(people["amina"], "96 bottles of water 500ml for nairobi by friday")
    (line,) = lines(co)
    assert (line.sku, line.quantity, line.unit) == ("HS-00301", Decimal(4), "pkt")
    assert line.total is not None and line.total.amount == Decimal("20.80")
    assert "4 pkt (96 bottles)" in texts(out)
    assert out[-1]["type"] == "buttons"  # complete: nothing to ask
    await co.turn(people["amina"], button("confirm", people["amina"].wa_id))
    assert co.last_state.get("active_request_id") == 1


async def test_inexact_amount_offers_whole_packs_and_ok_takes_the_offer(company):
    co, people = company
    out = await co.turn(people["amina"], "50 bottles of water 500ml for nairobi by friday")
    (line,) = lines(co)
    assert line.unit_price is None and line.proposal == "3"  # 50 / 24 = 2.08 packs: never silently ordered
    reply = texts(out)
    assert "Shall I order 3 pkt (72 pieces)" in reply
    assert "[" not in reply and "no rule" not in reply
    await co.turn(people["amina"], "ok")
    (line,) = lines(co)
    assert (line.quantity, line.unit, line.proposal) == (Decimal(3), "pkt", None)
    assert line.total is not None and line.total.amount == Decimal("15.60")


async def test_containers_name_the_catalogue_unit(company):
    co, people = company
    await co.turn(people["amina"], "6 jerrycans detergent and 2 buckets white paint")
    got = [(ln.sku, ln.quantity, ln.unit) for ln in lines(co)]
    assert got == [("HS-00320", Decimal(6), "jcn"), ("CN-00220", Decimal(2), "bkt")]


async def test_free_text_line_is_confirmed_with_the_rest(company):
    co, people = company
    out = await co.turn(people["amina"], "2 macbook pro laptops and 10 boxes a4 paper for nairobi by friday")
    assert out[-1]["type"] == "buttons", out  # no separate "ok" round for the free-text line
    assert "free text" in out[-1]["text"]
    assert "unknown_item" in co.last_state["questions"]
    await co.turn(people["amina"], button("confirm", people["amina"].wa_id))
    assert co.last_state.get("active_request_id") == 1


async def test_a_past_date_is_asked_not_rolled_to_next_year(company):
    co, people = company
    out = await co.turn(people["amina"], "10 boxes a4 paper for nairobi by 17/11")
    assert "in the past" in texts(out)
    assert co.last_state["draft"]["needed_by"] == "2026-11-17"
    assert "needed_by" in co.last_state["missing"]


@pytest.mark.parametrize(("choice", "expected"), [("new", ["CN-00201"]), ("add", ["ST-00112", "CN-00201"])])
async def test_an_idle_draft_does_not_swallow_a_new_request(company, choice, expected):
    co, people = company
    amina = people["amina"]
    await co.turn(amina, "10 boxes a4 paper")
    co.now = NOW + timedelta(days=3)
    out = await co.turn(amina, "40 bags cement 42.5 for nairobi by friday")
    assert [ln.sku for ln in lines(co)] == ["CN-00201"]  # read as a new draft...
    assert co.last_state["draft"]["previous"]["lines"][0]["sku"] == "ST-00112"  # ...the old one kept aside
    choice_msg = out[-1]
    assert choice_msg["type"] == "buttons" and [b[0] for b in choice_msg["buttons"]] == ["stale:add", "stale:new"]
    await co.turn(amina, button(f"stale:{choice}", amina.wa_id))
    assert [ln.sku for ln in lines(co)] == expected
    assert not co.last_state["draft"].get("previous")


async def test_a_recent_draft_takes_new_lines(company):
    co, people = company
    amina = people["amina"]
    await co.turn(amina, "10 boxes a4 paper")
    co.now = NOW + timedelta(hours=2)
    await co.turn(amina, "and 40 bags cement 42.5")
    assert [ln.sku for ln in lines(co)] == ["ST-00112", "CN-00201"]
    assert datetime.fromisoformat(co.last_state["draft"]["touched_at"]) == co.now


async def test_an_answer_changes_only_the_line_asked_about(company):
    co, people = company
    amina = people["amina"]
    out = await co.turn(amina, "need 10 reflector vests and 5 boxes a4 paper")
    assert out[-1]["type"] == "list"  # which vest: orange or yellow
    await co.turn(amina, "orange reflector vests")
    got = [(ln.sku, ln.quantity) for ln in lines(co)]
    assert got == [("CN-00240", Decimal(10)), ("ST-00112", Decimal(5))]


async def test_an_answer_by_attribute_alone(company):
    co, people = company
    amina = people["amina"]
    await co.turn(amina, "20 boxes nitrile gloves")
    await co.turn(amina, "the large ones")
    assert [(ln.sku, ln.quantity) for ln in lines(co)] == [("HC-00402", Decimal(20))]


@pytest.mark.parametrize(
    ("correction", "expected"),
    [
        ("sorry 15 not 12 for the gloves", [("HC-00401", Decimal(15)), ("ST-00112", Decimal(10))]),
        ("scratch the gloves", [("ST-00112", Decimal(10))]),
        ("make the paper A3", [("HC-00401", Decimal(12)), ("ST-00113", Decimal(10))]),
    ],
)
async def test_corrections_are_edits_never_new_lines(company, correction, expected):
    co, people = company
    amina = people["amina"]
    await co.turn(amina, "12 boxes nitrile gloves medium and 10 boxes a4 paper")
    await co.turn(amina, correction)
    assert [(ln.sku, ln.quantity) for ln in lines(co)] == expected


async def test_site_change_is_an_edit(company):
    co, people = company
    amina = people["amina"]
    await co.turn(amina, "10 boxes a4 paper for nairobi")
    await co.turn(amina, "deliver to Eldoret instead")
    assert co.last_state["draft"]["site"] == "Eldoret" and len(lines(co)) == 1


async def test_a_choice_teaches_words_the_catalogue_lacks_and_only_those(company, engine):
    from types import SimpleNamespace

    from nodes.intake import learn_choice
    from tools.catalog.aliases import list_aliases

    co, people = company
    amina = people["amina"]
    out = await co.turn(amina, "need 10 reflector vests")
    assert out[-1]["type"] == "list"
    await co.turn(amina, "orange")  # a choice between variants the catalogue names: nothing learned
    assert [ln.sku for ln in lines(co)] == ["CN-00240"]
    assert await list_aliases(engine) == []
    runtime = SimpleNamespace(context=await co.ctx(amina))
    assert await learn_choice(runtime, "reflector vests", "CN-00241") is False
    assert await learn_choice(runtime, "blue biros", "ST-00120") is True  # "biro" is not a catalogue word
    assert [(a.phrase, a.sku, a.created_by) for a in await list_aliases(engine)] == [("blue biro", "ST-00120", amina.id)]
