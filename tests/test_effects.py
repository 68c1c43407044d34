"""Side effects as graph nodes: they appear in the compiled graphs, run inside them with the Context's clients,
and are idempotent when LangGraph re-runs them (real PostgreSQL, in-memory checkpoints, the real approval graph).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.runtime import Runtime

from graphs import approval, procurement
from nodes import effects as E
from server.worker.approvals import ApprovalThreadRunner
from tests.harness import Company, button, text
from tools import requests as R

PROCUREMENT_EFFECTS = {"start_approval", "supersede_approval", "resume_approval", "retry_fulfilment"}


class RecordingQueue:
    """Stands in for the worker's fulfilment queue (``server.worker.jobs.FulfilmentJobs``): records the calls."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, str]] = []
        self.retries: list[tuple[int, int, str, str]] = []

    async def request(self, request_id: int, *, provider: str) -> int:
        self.requests.append((request_id, provider))
        return 1

    async def retry(self, fulfilment_id: int, by: int, *, provider: str, token: str) -> str:
        self.retries.append((fulfilment_id, by, provider, token))
        return "queued"


class Driver:
    """Runs turns the way the worker does: effect clients in the Context, no effect applied outside the graph."""

    def __init__(self, engine: Any) -> None:
        self.company = Company(engine)
        self.saver = InMemorySaver()
        self.proc = procurement.builder.compile(checkpointer=self.saver)
        self.appr = approval.builder.compile(checkpointer=self.saver)
        self.approvals = ApprovalThreadRunner(self.appr)
        self.queue = RecordingQueue()
        self.turns = 0

    async def ctx(self, user: Any) -> Any:
        self.turns += 1
        base = await self.company.ctx(user)
        return dataclasses.replace(base, approvals=self.approvals, fulfilment=self.queue, turn_id=self.turns)

    async def turn(self, user: Any, *messages: Any) -> dict[str, Any]:
        msgs = [text(m, user.wa_id) if isinstance(m, str) else m for m in messages]
        cfg = {"configurable": {"thread_id": f"meta:{user.wa_id}"}, "recursion_limit": procurement.RECURSION_LIMIT}
        return dict(await self.proc.ainvoke({"inbound": msgs}, cfg, context=await self.ctx(user)))


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
    d = Driver(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await d.turn(amina, "need 2 staplers for nairobi by friday")
    state = await d.turn(amina, button("confirm", amina.wa_id))

    # The approver's buttons are in the turn's outbox, keyed by the approval thread (sent once however often).
    asks = [m for m in state["outbound"] if m.get(E.OUTBOX_KEY)]
    assert [m[E.OUTBOX_KEY] for m in asks] == ["approval:PR-1:r1:ask:0"]
    assert asks[0]["to"] == brian.wa_id and asks[0]["type"] == "buttons"
    assert [b[0] for b in asks[0]["buttons"]] == ["approve:1:1", "reject:1:1"]
    thread = {"configurable": {"thread_id": "approval:PR-1:r1"}}
    assert (await d.appr.aget_state(thread)).next == ("await_decision",)

    state = await d.turn(brian, button("approve:1:1", brian.wa_id))
    decided = {m[E.OUTBOX_KEY]: m for m in state["outbound"] if m.get(E.OUTBOX_KEY)}
    assert set(decided) == {"approval:PR-1:r1:decided:0", "approval:PR-1:r1:decided:1"}
    assert decided["approval:PR-1:r1:decided:0"]["to"] == amina.wa_id
    assert "approved" in decided["approval:PR-1:r1:decided:0"]["text"]
    assert d.queue.requests == [(1, "meta")]  # the approval graph's enqueue_fulfilment node
    req = await R.get_request(engine, 1)
    assert req is not None and req.status == "approved"


async def test_effect_nodes_are_idempotent_when_re_run(engine: Any, seeded: dict[str, Any]) -> None:
    """LangGraph re-runs a node from its first line after a crash: nothing is started, resumed or enqueued twice."""
    d = Driver(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await d.turn(amina, "need 2 staplers for nairobi by friday")
    submitted = await d.turn(amina, button("confirm", amina.wa_id))
    approved = await d.turn(brian, button("approve:1:1", brian.wa_id))
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
    d = Driver(engine)
    amina, brian = seeded["amina"], seeded["brian"]
    await d.turn(amina, "need 2 staplers for nairobi by friday")
    await d.turn(amina, button("confirm", amina.wa_id))
    await d.turn(amina, "make the staplers 3")
    state = await d.turn(amina, button("confirm", amina.wa_id))
    keys = [m[E.OUTBOX_KEY] for m in state["outbound"] if m.get(E.OUTBOX_KEY)]
    assert keys == ["approval:PR-1:r2:ask:0"]
    old = await d.appr.aget_state({"configurable": {"thread_id": "approval:PR-1:r1"}})
    assert not old.next and old.values["decision"]["decision"] == "superseded"

    state = await d.turn(amina, "cancel PR-1")
    notices = [m for m in state["outbound"] if m.get(E.OUTBOX_KEY)]
    assert [m["to"] for m in notices] == [brian.wa_id]
    assert notices[0][E.OUTBOX_KEY] == f"turn:{d.turns}:effect:0:notify:0"
    assert "cancelled" in notices[0]["text"]
    current = await d.appr.aget_state({"configurable": {"thread_id": "approval:PR-1:r2"}})
    assert not current.next and current.values["decision"]["decision"] == "superseded"


async def test_retry_press_reaches_the_queue_as_the_sender(engine: Any, seeded: dict[str, Any]) -> None:
    d = Driver(engine)
    dan = seeded["dan"]
    state = await d.turn(dan, button("retry:7", dan.wa_id))
    assert d.queue.retries == [(7, dan.id, "meta", f"turn{d.turns}")]
    assert not any(m.get(E.OUTBOX_KEY) for m in state["outbound"])


async def test_without_clients_the_effects_stay_in_the_state(engine: Any, seeded: dict[str, Any]) -> None:
    """Studio, the graph harness and evaluations give no clients: the nodes do nothing, the caller applies."""
    co = Company(engine)
    amina = seeded["amina"]
    await co.turn(amina, "need 2 staplers for nairobi by friday")
    cfg = {"configurable": {"thread_id": f"meta:{amina.wa_id}"}, "recursion_limit": procurement.RECURSION_LIMIT}
    state = await co.proc.ainvoke({"inbound": [button("confirm", amina.wa_id)]}, cfg, context=await co.ctx(amina))
    assert state["effects"] == [{"type": "start_approval", "request_id": 1, "revision": 1}]
    assert not any(m.get(E.OUTBOX_KEY) for m in state["outbound"])
    assert not (await co.appr.aget_state({"configurable": {"thread_id": "approval:PR-1:r1"}})).values
