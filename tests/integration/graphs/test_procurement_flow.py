"""The procurement conversation through the graphs directly (real PostgreSQL, in-memory checkpoints)."""

from __future__ import annotations

from tests.support.harness import Company, button


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
    assert appr[0]["outbox_key"] == "approval:PR-1:r1:ask:0"  # sent by the start_approval node, once
    out = await co.turn(brian, button("approve:1:1", brian.wa_id))
    assert any(m["to"] == amina.wa_id and "approved" in m["text"] for m in out), out
    assert co.queue.requests == [(1, "meta")]  # the approval graph's enqueue_fulfilment node


async def test_print_demo(engine, seeded, capsys):
    """The graph-level demo: it prints what each person sees, and asserts the lines the demo exists to show."""
    co = Company(engine)
    amina, brian, carol = seeded["amina"], seeded["brian"], seeded["carol"]

    async def turn(user, *msgs):
        out = await co.turn(user, *msgs)
        for m in out:
            print("->", m["to"], m["type"], "\n" + m["text"], m.get("buttons") or m.get("rows") or "")
        return out

    def ids(m):
        return [b[0] for b in m.get("buttons") or m.get("rows") or []]

    # A burst of three messages: one draft, the ambiguous toner offered as a list.
    out = await turn(amina, "need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday")
    assert len(out) == 1 and out[0]["type"] == "list", out
    assert "20 box" in out[0]["text"] and "PAP-A4-80" in out[0]["text"] and "Nairobi" in out[0]["text"]
    assert {"pick:1:TON-CF226A", "pick:1:TON-CF226X"} <= set(ids(out[0]))
    out = await turn(amina, button("pick:1:TON-CF226X", amina.wa_id))
    assert ids(out[-1]) == ["confirm", "cancel_draft"] and "TON-CF226X" in out[-1]["text"]
    assert "USD 1,200.00" in out[-1]["text"]
    # Corrections, then a change of site.
    out = await turn(amina, "make the paper 30", "also 2 staplers")
    assert "30 box" in out[-1]["text"] and "STP-STD" in out[-1]["text"]
    out = await turn(amina, "drop the staplers", "deliver to Mombasa instead")
    assert "STP-STD" not in out[-1]["text"] and "Mombasa" in out[-1]["text"] and "USD 1,445.00" in out[-1]["text"]
    # Confirmed: PR-1 goes to the approver for Mombasa (company-wide Carol), with Approve / Reject buttons.
    out = await turn(amina, button("confirm", amina.wa_id))
    assert any("PR-1" in m["text"] and "Carol Director" in m["text"] for m in out if m["to"] == amina.wa_id), out
    asks = [m for m in out if m["to"] == carol.wa_id]
    assert asks and ids(asks[0]) == ["approve:1:1", "reject:1:1"] and "Approval needed: PR-1" in asks[0]["text"]
    # Brian is not PR-1's approver: his press changes nothing. Carol approves; Amina is told.
    out = await turn(brian, button("reject:1:1", brian.wa_id))
    assert [m["to"] for m in out] == [brian.wa_id] and "not the approver" in out[0]["text"]
    out = await turn(carol, button("approve:1:1", carol.wa_id))
    assert any("PR-1" in m["text"] and "approved" in m["text"] for m in out if m["to"] == amina.wa_id), out
    out = await turn(amina, "status", "help")
    assert "PR-1" in out[0]["text"] and "approved" in out[0]["text"] and "status PR-12" in out[-1]["text"]
    shown = capsys.readouterr().out
    assert "Approval needed: PR-1" in shown and "not the approver" in shown


async def test_approved_request_cannot_be_amended(engine, seeded):
    co = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await co.turn(amina, "10 boxes a4 paper for nairobi by friday")
    await co.turn(amina, button("confirm", amina.wa_id))
    await co.turn(brian, button("approve:1:1", brian.wa_id))
    out = await co.turn(amina, "make the paper 12")
    assert "can't be changed" in out[-1]["text"]
    assert not co.last_state.get("draft")
