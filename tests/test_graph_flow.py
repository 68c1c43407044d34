"""The procurement conversation through the graphs directly (real PostgreSQL, in-memory checkpoints)."""

from __future__ import annotations

from tests.harness import Company, button


async def test_burst_ambiguity_correction_confirm_approve(engine, seeded):
    co = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    out = await co.turn(amina, "need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday")
    assert out[-1]["type"] == "list", out
    assert any(r[1] == "TON-CF226X" for r in out[-1]["rows"])
    out = await co.turn(amina, button("pick:1:TON-CF226X", amina.wa_id))
    assert out[-1]["type"] == "buttons", out
    out = await co.turn(amina, "make the paper 30")
    assert "30" in out[-1]["text"]
    out = await co.turn(amina, button("confirm", amina.wa_id))
    texts = [m["text"] for m in out]
    assert any("PR-1" in t and "Brian" in t for t in texts), texts
    appr = [m for m in out if m["to"] == brian.wa_id]
    assert appr and appr[0]["type"] == "buttons"
    out = await co.turn(brian, button("approve:1:1", brian.wa_id))
    assert any(m["to"] == amina.wa_id and "approved" in m["text"] for m in out), out


async def test_print_demo(engine, seeded, capsys):
    co = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    for msgs in [
        ("need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday"),
        (button("pick:1:TON-CF226X", amina.wa_id),),
        ("make the paper 30", "also 2 staplers"),
        ("drop the staplers", "deliver to Mombasa instead"),
        (button("confirm", amina.wa_id),),
    ]:
        for m in await co.turn(amina, *msgs):
            print("->", m["to"], m["type"], "\n" + m["text"], m.get("buttons") or m.get("rows") or "")
    for m in await co.turn(brian, button("reject:1:1", brian.wa_id)):
        print("->", m["to"], m["type"], "\n" + m["text"])
    for m in await co.turn(brian, "too expensive, use the cheaper toner"):
        print("->", m["to"], m["type"], "\n" + m["text"])
    for m in await co.turn(amina, "status", "help"):
        print("->", m["to"], m["type"], "\n" + m["text"])


async def test_approved_request_cannot_be_amended(engine, seeded):
    co = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await co.turn(amina, "10 boxes a4 paper for nairobi by friday")
    await co.turn(amina, button("confirm", amina.wa_id))
    await co.turn(brian, button("approve:1:1", brian.wa_id))
    out = await co.turn(amina, "make the paper 12")
    assert "can't be changed" in out[-1]["text"]
    assert not co.last_state.get("draft")
