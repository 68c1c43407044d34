"""The approval graph: one thread per request revision (``thread_id`` = ``approval:PR-<id>:r<revision>``).

    prepare_approval -> await_decision (interrupt) -> apply_decision -> enqueue_fulfilment (approved only)

Compiled without a checkpointer for Studio and tests; the server compiles ``builder`` with the Postgres one.
"""

from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.inline import inline
from graphs.state import ApprovalState
from nodes.approval import apply_decision, approval_thread_id, await_decision, prepare_approval
from nodes.effects import enqueue_fulfilment, route_after_decision

builder = StateGraph(ApprovalState, context_schema=Context)
builder.add_node("prepare_approval", prepare_approval)
builder.add_node("await_decision", inline(await_decision))
builder.add_node("apply_decision", apply_decision)
builder.add_node("enqueue_fulfilment", enqueue_fulfilment)
builder.add_edge(START, "prepare_approval")
builder.add_edge("prepare_approval", "await_decision")
builder.add_edge("await_decision", "apply_decision")
builder.add_conditional_edges("apply_decision", inline(route_after_decision), ["enqueue_fulfilment", END])
builder.add_edge("enqueue_fulfilment", END)

graph = builder.compile(name="approval")

__all__ = ["approval_thread_id", "builder", "graph"]
