"""Who decides an approval is the run's context (the approver whose turn resumes the thread), never the answer.

Real PostgreSQL, the real approval graph on an in-memory checkpointer (tests/support/harness.py).
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from tests.support.harness import Company, button
from tools import requests as R

THREAD = {"configurable": {"thread_id": "approval:PR-1:r1"}}


async def _submitted(d: Company, seeded: dict[str, Any]) -> None:
    amina = seeded["amina"]
    await d.run(amina, "need 2 staplers for nairobi by friday")
    await d.run(amina, button("confirm", amina.wa_id))
    assert (await d.appr.aget_state(THREAD)).next == ("await_decision",)


async def test_an_answer_naming_the_approver_does_not_make_someone_else_one(
    engine: Any, seeded: dict[str, Any]
) -> None:
    d = Company(engine)
    await _submitted(d, seeded)
    brian, dan = seeded["brian"], seeded["dan"]
    # Dan (a buyer) resumes the thread with an answer that names Brian, the assigned approver, as the decider.
    forged = Command(resume={"decision": "approve", "by": brian.id, "reason": None})
    state = await d.appr.ainvoke(forged, THREAD, context=await d.ctx(dan))
    assert state["outcome"] == "not_assigned"
    assert state["decision"] == {"decision": "approve", "reason": None}  # nothing else of the answer is kept
    assert [m["to"] for m in state["outbound"]] == [dan.wa_id]
    req = await R.get_request(engine, 1)
    assert req is not None and req.status == "pending_approval"
    assert d.queue.requests == []


async def test_the_approver_in_the_context_decides(engine: Any, seeded: dict[str, Any]) -> None:
    d = Company(engine)
    await _submitted(d, seeded)
    amina, brian = seeded["amina"], seeded["brian"]
    state = await d.appr.ainvoke(Command(resume={"decision": "approve"}), THREAD, context=await d.ctx(brian))
    assert state["outcome"] == "ok"
    assert {m["to"] for m in state["outbound"]} == {amina.wa_id, brian.wa_id}
    req = await R.get_request(engine, 1)
    assert req is not None and req.status == "approved"
    assert d.queue.requests == [(1, "meta")]
