"""Support tickets through the graph (real PostgreSQL): linking, notifying, authorisation, the API.

Detection of complaints and general intents: ``tests/unit/nodes/test_tickets.py``.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from core.db import audit_log, purchase_requests, tickets
from tests.support.harness import Company, button, text
from tools import tickets as TK


async def _approved_request(co: Company, seeded) -> None:
    amina, brian = seeded["amina"], seeded["brian"]
    await co.turn(amina, "10 boxes a4 paper for nairobi by friday")
    await co.turn(amina, button("confirm", amina.wa_id))
    await co.turn(brian, button("approve:1:1", brian.wa_id))


async def _tickets(engine):
    async with engine.connect() as conn:
        return (await conn.execute(select(tickets).order_by(tickets.c.id))).all()


async def test_complaint_opens_ticket_linked_to_latest_request_and_notifies_site_buyer(engine, seeded):
    co = Company(engine)
    amina, dan = seeded["amina"], seeded["dan"]
    await _approved_request(co, seeded)
    out = await co.turn(amina, "the toner you delivered is the wrong one")
    rows = await _tickets(engine)
    assert len(rows) == 1
    tk = rows[0]
    assert (tk.requester_id, tk.request_id, tk.kind, tk.assignee_id) == (amina.id, 1, "wrong_item", dan.id)
    mine = [m["text"] for m in out if m["to"] == amina.wa_id]
    assert any(f"T-{tk.id}" in m and "PR-1" in m and "latest" in m for m in mine), mine
    to_dan = [m for m in out if m["to"] == dan.wa_id]
    assert len(to_dan) == 1 and f"T-{tk.id}" in to_dan[0]["text"] and "Amina" in to_dan[0]["text"]
    assert "wrong one" in to_dan[0]["text"]
    assert not co.last_state.get("draft") and not co.last_state.get("show_summary")
    async with engine.connect() as conn:
        audit = (await conn.execute(select(audit_log).where(audit_log.c.action == "ticket.opened"))).one()
    assert audit.request_id == 1 and audit.actor_id == amina.id and audit.details["linked"] == "latest"


async def test_named_request_is_linked_and_a_draft_is_left_alone(engine, seeded):
    co = Company(engine)
    amina = seeded["amina"]
    await _approved_request(co, seeded)
    await co.turn(amina, "need 5 staplers for nairobi by friday")
    draft_before = co.last_state.get("draft")
    assert draft_before and draft_before["lines"]
    out = await co.turn(amina, "delivery for PR-1 hasn't arrived")
    (tk,) = await _tickets(engine)
    assert (tk.request_id, tk.kind) == (1, "not_delivered")
    assert any("It's linked to *PR-1*." in m["text"] for m in out if m["to"] == amina.wa_id)
    assert co.last_state.get("draft") == draft_before  # the complaint added no line and changed nothing


async def test_ordinary_messages_with_a_draft_open_are_not_tickets(engine, seeded):
    co = Company(engine)
    amina = seeded["amina"]
    await _approved_request(co, seeded)
    await co.turn(amina, "need 20 boxes of a4 paper")
    for msg in ["wrong quantity, make it 30", "the 26A ones", "need 20 boxes of paper"]:
        await co.turn(amina, msg)
        assert co.last_state.get("draft") and co.last_state["draft"]["lines"], msg
    assert await _tickets(engine) == []


async def test_swahili_complaint_without_an_ordered_request_is_unlinked(engine, seeded):
    co = Company(engine)
    felix, dan = seeded["felix"], seeded["dan"]
    out = await co.turn(felix, "tumepokea vitu vibaya")
    (tk,) = await _tickets(engine)
    assert tk.request_id is None and tk.assignee_id == dan.id  # Felix has no site: any buyer
    assert any("couldn't find an ordered request" in m["text"] for m in out if m["to"] == felix.wa_id)


async def test_someone_elses_request_cannot_be_named(engine, seeded):
    co = Company(engine)
    felix = seeded["felix"]
    await _approved_request(co, seeded)
    out = await co.turn(felix, "PR-1 came damaged")
    assert await _tickets(engine) == []
    assert out[-1]["to"] == felix.wa_id and "couldn't find *PR-1*" in out[-1]["text"]


async def test_same_message_twice_opens_one_ticket(engine, seeded):
    co = Company(engine)
    amina = seeded["amina"]
    msg = text("the cement bags came torn", amina.wa_id)
    out1 = await co.turn(amina, msg)
    out2 = await co.turn(amina, dict(msg))  # the same provider message re-delivered / the turn re-run
    assert len(await _tickets(engine)) == 1
    assert [m["text"] for m in out1] == [m["text"] for m in out2]


async def test_status_of_a_ticket_is_only_for_requester_buyers_admins(engine, seeded):
    co = Company(engine)
    amina, brian, dan, eve, felix = (seeded[k] for k in ("amina", "brian", "dan", "eve", "felix"))
    await _approved_request(co, seeded)
    await co.turn(amina, "the cement bags came torn")
    (tk,) = await _tickets(engine)
    number = f"T-{tk.id}"
    for who in (amina, dan, eve):
        out = await co.turn(who, f"status {number}")
        assert f"*{number}* (open)" in out[-1]["text"] and "torn" in out[-1]["text"], who.display_name
        assert "PR-1" in out[-1]["text"] and "Dan Buyer" in out[-1]["text"]
    for who in (felix, brian):
        out = await co.turn(who, f"status {number}")
        assert out[-1]["text"] == f"I couldn't find ticket *{number}*.", who.display_name
    out = await co.turn(amina, "status T-999")
    assert out[-1]["text"] == "I couldn't find ticket *T-999*."
    async with engine.connect() as conn:
        refused = (await conn.execute(select(audit_log).where(audit_log.c.action == "ticket.view_refused"))).all()
    assert {r.actor_id for r in refused} == {felix.id, brian.id}


async def test_help_questions_answer_and_start_nothing(engine, seeded):
    co = Company(engine)
    amina = seeded["amina"]
    for msg in ["unaweza nini", "how does this work?", "what can you do"]:
        out = await co.turn(amina, msg)
        assert "Purchase requests on WhatsApp" in out[-1]["text"] and "status T-3" in out[-1]["text"]
        assert "?*\n• Something wrong with a delivery" in out[-1]["text"]  # its own bullet line
        assert not co.last_state.get("draft")
    out = await co.turn(seeded["brian"], "how does this work")
    assert "?*\n• *pending*" in out[-1]["text"] and "\n• Something wrong" in out[-1]["text"]
    assert await _tickets(engine) == []


async def test_who_is_notified(engine, seeded):
    from core.repo import add_user

    mombasa = await add_user(engine, phone="+254700000009", name="Mo Buyer", role="buyer", site="Mombasa")
    dan, eve = seeded["dan"], seeded["eve"]
    assert [u.id for u in await TK.staff_to_notify(engine, "Mombasa")] == [mombasa.id]
    assert [u.id for u in await TK.staff_to_notify(engine, "Kisumu")] == [dan.id, mombasa.id]
    async with engine.begin() as conn:
        from core.db import users

        await conn.execute(update(users).where(users.c.role == "buyer").values(active=False))
    assert [u.id for u in await TK.staff_to_notify(engine, "Mombasa")] == [eve.id]
    assert await TK.staff_to_notify(engine, None, exclude=eve.id) == []


async def test_ordered_request_is_preferred_to_an_older_one(engine, seeded):
    co = Company(engine)
    amina = seeded["amina"]
    await _approved_request(co, seeded)
    async with engine.begin() as conn:
        await conn.execute(update(purchase_requests).where(purchase_requests.c.id == 1).values(status="ordered"))
    assert await TK.latest_delivered_request(engine, amina.id) == 1
    assert await TK.latest_delivered_request(engine, seeded["felix"].id) is None


async def test_tickets_api(engine, seeded, web):
    from tests.support.stack import ADMIN

    co = Company(engine)
    amina, felix = seeded["amina"], seeded["felix"]
    await _approved_request(co, seeded)
    await co.turn(amina, "delivery for PR-1 hasn't arrived")
    await co.turn(felix, "tumepokea vitu vibaya")
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=web.url) as http:
        assert (await http.get("/api/tickets")).status_code == 401
        assert (await http.get("/api/tickets/1", headers={"Authorization": "Bearer wrong"})).status_code == 401
        body = (await http.get("/api/tickets", headers=auth)).json()
        assert [i["requester"]["name"] for i in body["items"]] == ["Felix Requester", "Amina Requester"]
        linked = (await http.get("/api/tickets", params={"request": "PR-1"}, headers=auth)).json()["items"]
        assert len(linked) == 1 and linked[0]["request_number"] == "PR-1" and linked[0]["kind"] == "not_delivered"
        assert (await http.get("/api/tickets", params={"status": "closed"}, headers=auth)).json()["items"] == []
        assert (await http.get("/api/tickets", params={"request": "x"}, headers=auth)).status_code == 422
        one = (await http.get(f"/api/tickets/{linked[0]['number']}", headers=auth)).json()
        assert one["id"] == linked[0]["id"] and one["text"] == "delivery for PR-1 hasn't arrived"
        assert one["assignee"]["name"] == "Dan Buyer" and one["status"] == "open"
        assert (await http.get("/api/tickets/T-999", headers=auth)).status_code == 404
