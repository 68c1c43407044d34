"""Side effects as graph nodes: they appear in the compiled graphs, run inside them with the Context's clients,
and are idempotent when LangGraph re-runs them (real PostgreSQL, in-memory checkpoints, the real approval graph).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graphs import approval, procurement
from nodes import effects as E
from tests.support.harness import Company, button
from tools import requests as R

PROCUREMENT_EFFECTS = {"start_approval", "supersede_approval", "resume_approval", "retry_fulfilment"}


def test_compiled_graphs_show_the_effect_nodes() -> None:
    proc = procurement.graph.get_graph()
    assert PROCUREMENT_EFFECTS <= set(proc.nodes)
    drawn = {(e.source, e.target) for e in proc.edges}
    assert {("respond", "start_approval"), ("start_approval", "supersede_approval")} <= drawn
    assert {("supersede_approval", "resume_approval"), ("resume_approval", "retry_fulfilment")} <= drawn
    appr = approval.graph.get_graph()
    assert "enqueue_fulfilment" in appr.nodes
    assert ("apply_decision", "enqueue_fulfilment") in {(e.source, e.target) for e in appr.edges}


def test_effect_router_visits_only_what_the_turn_needs() -> None:
    after_respond = E.route_effects_after("respond")
    assert after_respond({"effects": []}) == "__end__"
    assert after_respond({"effects": [{"type": "retry_fulfilment", "fulfilment_id": 1, "by": 2}]}) == (
        "retry_fulfilment"
    )
    amended = {"effects": [{"type": "start_approval", "request_id": 3, "revision": 2}]}
    assert after_respond(amended) == "start_approval"
    assert E.route_effects_after("start_approval")(amended) == "supersede_approval"
    first = {"effects": [{"type": "start_approval", "request_id": 3, "revision": 1}]}
    assert E.route_effects_after("start_approval")(first) == "__end__"
    assert E.route_effects_after("supersede_approval")({"effects": [{"type": "cancelled", "request_id": 3}]}) == (
        "__end__"
    )


async def test_approval_and_fulfilment_run_inside_the_graphs(engine: Any, seeded: dict[str, Any]) -> None:
    d = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await d.run(amina, "need 2 staplers for nairobi by friday")
    state = await d.run(amina, button("confirm", amina.wa_id))

    # The approver's buttons are in the turn's outbox, keyed by the approval thread (sent once however often).
    asks = [m for m in state["outbound"] if m.get(E.OUTBOX_KEY)]
    assert [m[E.OUTBOX_KEY] for m in asks] == ["approval:PR-1:r1:ask:0"]
    assert asks[0]["to"] == brian.wa_id and asks[0]["type"] == "buttons"
    assert [b[0] for b in asks[0]["buttons"]] == ["approve:1:1", "reject:1:1"]
    thread = {"configurable": {"thread_id": "approval:PR-1:r1"}}
    assert (await d.appr.aget_state(thread)).next == ("await_decision",)

    state = await d.run(brian, button("approve:1:1", brian.wa_id))
    decided = {m[E.OUTBOX_KEY]: m for m in state["outbound"] if m.get(E.OUTBOX_KEY)}
    assert set(decided) == {"approval:PR-1:r1:decided:0", "approval:PR-1:r1:decided:1"}
    assert decided["approval:PR-1:r1:decided:0"]["to"] == amina.wa_id
    assert "approved" in decided["approval:PR-1:r1:decided:0"]["text"]
    assert d.queue.requests == [(1, "meta")]  # the approval graph's enqueue_fulfilment node
    req = await R.get_request(engine, 1)
    assert req is not None and req.status == "approved"


async def test_effect_nodes_are_idempotent_when_re_run(engine: Any, seeded: dict[str, Any]) -> None:
    """LangGraph re-runs a node from its first line after a crash: nothing is started, resumed or enqueued twice."""
    d = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await d.run(amina, "need 2 staplers for nairobi by friday")
    submitted = await d.run(amina, button("confirm", amina.wa_id))
    approved = await d.run(brian, button("approve:1:1", brian.wa_id))
    thread = {"configurable": {"thread_id": "approval:PR-1:r1"}}
    history = len([c async for c in d.appr.aget_state_history(thread)])

    amina_rt = Runtime(context=await d.ctx(amina))
    again = await E.start_approval({**submitted, "outbound": []}, amina_rt)
    assert again["outbound"] == [m for m in submitted["outbound"] if m.get(E.OUTBOX_KEY)]
    brian_rt = Runtime(context=await d.ctx(brian))
    again = await E.resume_approval({**approved, "outbound": []}, brian_rt)
    assert again["outbound"] == [m for m in approved["outbound"] if m.get(E.OUTBOX_KEY)]
    assert len([c async for c in d.appr.aget_state_history(thread)]) == history  # no new step ran
    assert d.queue.requests == [(1, "meta")]


async def test_amendment_supersedes_and_cancel_tells_the_approver(engine: Any, seeded: dict[str, Any]) -> None:
    d = Company(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await d.run(amina, "need 2 staplers for nairobi by friday")
    await d.run(amina, button("confirm", amina.wa_id))
    await d.run(amina, "make the staplers 3")
    state = await d.run(amina, button("confirm", amina.wa_id))
    keys = [m[E.OUTBOX_KEY] for m in state["outbound"] if m.get(E.OUTBOX_KEY)]
    assert keys == ["approval:PR-1:r2:ask:0"]
    old = await d.appr.aget_state({"configurable": {"thread_id": "approval:PR-1:r1"}})
    assert not old.next and old.values["decision"]["decision"] == "superseded"

    state = await d.run(amina, "cancel PR-1")
    notices = [m for m in state["outbound"] if m.get(E.OUTBOX_KEY)]
    assert [m["to"] for m in notices] == [brian.wa_id]
    assert notices[0][E.OUTBOX_KEY] == f"turn:{d.turns}:effect:0:notify:0"
    assert "cancelled" in notices[0]["text"]
    current = await d.appr.aget_state({"configurable": {"thread_id": "approval:PR-1:r2"}})
    assert not current.next and current.values["decision"]["decision"] == "superseded"


async def test_retry_press_reaches_the_queue_as_the_sender(engine: Any, seeded: dict[str, Any]) -> None:
    d = Company(engine)
    dan = seeded["dan"]
    state = await d.run(dan, button("retry:7", dan.wa_id))
    assert d.queue.retries == [(7, dan.id, "meta", f"turn{d.turns}")]
    assert not any(m.get(E.OUTBOX_KEY) for m in state["outbound"])


async def test_without_clients_the_effects_stay_in_the_state(engine: Any, seeded: dict[str, Any]) -> None:
    """Studio and evaluations give no clients: the nodes do nothing, the effects stay for the caller."""
    co = Company(engine, effects=False)
    amina = seeded["amina"]
    await co.run(amina, "need 2 staplers for nairobi by friday")
    state = await co.run(amina, button("confirm", amina.wa_id))
    assert state["effects"] == [{"type": "start_approval", "request_id": 1, "revision": 1}]
    assert not any(m.get(E.OUTBOX_KEY) for m in state["outbound"])
    assert not (await co.appr.aget_state({"configurable": {"thread_id": "approval:PR-1:r1"}})).values
