"""The approval graph: one thread per request revision (``thread_id`` = ``approval:PR-<id>:r<revision>``).

    prepare_approval -> await_decision (interrupt) -> apply_decision

Compiled without a checkpointer for Studio and tests; the server compiles ``builder`` with the Postgres one.
"""

from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.state import ApprovalState
from nodes.approval import apply_decision, await_decision, prepare_approval

builder = StateGraph(ApprovalState, context_schema=Context)
builder.add_node("prepare_approval", prepare_approval)
builder.add_node("await_decision", await_decision)
builder.add_node("apply_decision", apply_decision)
builder.add_edge(START, "prepare_approval")
builder.add_edge("prepare_approval", "await_decision")
builder.add_edge("await_decision", "apply_decision")
builder.add_edge("apply_decision", END)

graph = builder.compile(name="approval")


def approval_thread_id(request_id: int, revision: int) -> str:
    """Thread id of a request revision's approval."""
    return f"approval:PR-{request_id}:r{revision}"
