"""Whole conversations through the real HTTP webhook, worker and graphs (no LLM configured)."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.stack import ADMIN, Chat, body_of, button_ids

AMINA, BRIAN, CAROL, DAN, EVE, FELIX = (f"25470000000{i}" for i in range(1, 7))


def to(msgs, wa_id):
    return [m for m in msgs if m["to"] == wa_id]


async def test_burst_ambiguity_correction_confirm_approve(web, worker, graph_api, fresh):
    amina, brian = Chat(web, graph_api, AMINA), Chat(web, graph_api, BRIAN)
    out = amina.say("need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday")
    assert len(out) == 1
    assert "pick:1:TON-CF226A" in button_ids(out[0]) and "pick:1:TON-CF226X" in button_ids(out[0])
    out = amina.press("pick:1:TON-CF226A", list_row=True)
    assert button_ids(out[-1]) == ["confirm", "cancel_draft"]
    out = amina.say("make the paper 30")
    assert "30 box" in body_of(out[-1])
    out = amina.press("confirm")
    assert any("PR-1" in body_of(m) and "Brian" in body_of(m) for m in to(out, AMINA))
    approval = to(out, BRIAN)
    assert approval and button_ids(approval[0]) == ["approve:1:1", "reject:1:1"]
    out = brian.press("approve:1:1")
    assert any("approved" in body_of(m) for m in to(out, AMINA))
    assert any("You approved" in body_of(m) for m in to(out, BRIAN))
    r = httpx.get(web.url + "/api/purchase-requests/PR-1", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert r["status"] == "approved" and r["approver"]["name"] == "Brian Approver"
    assert [(ln["sku"], ln["quantity"]) for ln in r["lines"]] == [("PAP-A4-80", "30"), ("TON-CF226A", "5")]
    assert r["site"] == "Nairobi" and r["needed_by"] == r["needed_by"]
    assert [h["action"] for h in r["history"]][-2:] == ["request.submitted", "request.approved"]
    # a second press of the same button: stale, nothing changes
    out = brian.press("approve:1:1")
    assert "no longer waiting" in body_of(to(out, BRIAN)[0])


async def test_reject_with_reason(web, worker, graph_api, fresh):
    amina, brian = Chat(web, graph_api, AMINA), Chat(web, graph_api, BRIAN)
    amina.say("2 staplers for nairobi by tomorrow")
    out = amina.press("confirm")
    assert to(out, BRIAN)
    out = brian.press("reject:1:1")
    assert "Why are you rejecting" in body_of(to(out, BRIAN)[0])
    out = brian.say("we have staplers in the store")
    assert any("rejected" in body_of(m) and "we have staplers" in body_of(m) for m in to(out, AMINA))
    out = amina.say("status PR-1")
    assert "rejected" in body_of(out[0])


async def test_cancel_and_status_queries(web, worker, graph_api, fresh):
    amina, brian = Chat(web, graph_api, AMINA), Chat(web, graph_api, BRIAN)
    amina.say("5 bags cement for nairobi by friday")
    amina.press("confirm")
    out = amina.say("my requests")
    assert "PR-1" in body_of(out[0])
    out = amina.say("cancel PR-1")
    assert "cancelled" in body_of(to(out, AMINA)[0])
    assert any("cancelled" in body_of(m) for m in to(out, BRIAN))
    out = brian.press("approve:1:1")
    assert "no longer waiting" in body_of(out[0])
    felix = Chat(web, graph_api, FELIX)
    out = felix.say("status PR-1")  # someone else's request: not revealed
    assert "couldn't find" in body_of(out[0])


async def test_requester_cannot_approve_own_request(web, worker, graph_api, fresh, engine):
    from core.repo import add_user

    # Brian (an approver) requests for himself: routed to someone else, and he cannot approve it.
    brian = Chat(web, graph_api, BRIAN)
    out = brian.say("3 hard hats for nairobi by friday")
    out = brian.press("confirm")
    assert not any("approve:1:1" in button_ids(m) for m in to(out, BRIAN))
    out = brian.press("approve:1:1")
    assert "own request" in body_of(out[0])
    await add_user(engine, phone="+254700000009", name="Zed", role="requester", site="Nairobi")


async def test_stale_and_foreign_buttons(web, worker, graph_api, fresh):
    amina, carol = Chat(web, graph_api, AMINA), Chat(web, graph_api, CAROL)
    amina.say("2 staplers for nairobi by friday")
    amina.press("confirm")
    out = carol.press("approve:1:1")  # Carol is not the assigned approver
    assert "not the approver" in body_of(out[0])
    out = carol.press("approve:99:1")
    assert "couldn't find" in body_of(out[0])
    eve = Chat(web, graph_api, EVE)  # an admin may decide
    out = eve.press("approve:1:1")
    assert any("approved" in body_of(m) for m in to(out, AMINA))


async def test_amendment_after_submission_reopens_approval(web, worker, graph_api, fresh):
    amina, brian = Chat(web, graph_api, AMINA), Chat(web, graph_api, BRIAN)
    amina.say("10 boxes a4 paper for nairobi by friday")
    amina.press("confirm")
    out = amina.say("make the paper 12")
    assert "12 box" in body_of(out[-1])
    out = amina.press("confirm")
    assert any("approve:1:2" in button_ids(m) for m in to(out, BRIAN))
    out = brian.press("approve:1:1")
    assert "older version" in body_of(out[0]) or "no longer" in body_of(out[0])
    out = brian.press("approve:1:2")
    assert any("approved" in body_of(m) for m in to(out, AMINA))


async def test_catalog_question_help_pending_media(web, worker, graph_api, fresh):
    amina, brian = Chat(web, graph_api, AMINA), Chat(web, graph_api, BRIAN)
    out = amina.say("price of HP 26X?")
    assert "142.00" in body_of(out[0]) and "Your request" not in body_of(out[0])
    out = amina.say("help")
    assert "my requests" in body_of(out[0])
    out = amina.say("pending")
    assert "can't" in body_of(out[0])
    out = brian.say("pending")
    assert "Nothing is waiting" in body_of(out[0])
    await asyncio.sleep(0)


async def test_photo_with_caption_is_kept_with_the_request(web, worker, graph_api, fresh, data_dir):
    import time

    from tests.support.payloads import envelope
    from tests.support.stack import post

    graph_api.add_media("MEDIA-1", b"\xff\xd8\xff fake jpeg bytes", "image/jpeg")
    amina = Chat(web, graph_api, AMINA)
    before = len(graph_api.sent_messages())
    photo = {
        "from": AMINA,
        "id": "wamid.PHOTO1",
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": {
            "id": "MEDIA-1",
            "mime_type": "image/jpeg",
            "sha256": "abc",
            "caption": "need 2 staplers for nairobi by friday",
        },
    }
    assert post(web.url, envelope([photo])).status_code == 200
    out = amina._settle(before)
    assert "Standard desk stapler" in body_of(out[-1])
    amina.press("confirm")
    r = httpx.get(web.url + "/api/purchase-requests/1", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert r["attachments"] == ["media/meta/wamid.PHOTO1"]
    assert (data_dir / "objects" / "media" / "meta" / "wamid.PHOTO1").read_bytes().startswith(b"\xff\xd8")
