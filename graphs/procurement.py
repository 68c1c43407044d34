"""The procurement conversation graph: one thread per chat (``thread_id`` = ``<provider>:<chat id>``).

    ingest -> route_next -> handle_button | handle_command | handle_confirmation | handle_reason
                            | open_ticket | answer_ticket | answer_catalog | handle_media | interpret_text
                            | skip_message -> route_next ...
           -> after_messages -> call_model (LLM, only for unresolved text and only with a model) -> respond
           -> start_approval -> supersede_approval -> resume_approval -> retry_fulfilment (effect nodes, each only
              when the turn has effects of its kind; see nodes.effects)

Every message of a turn is routed deterministically; the LLM node runs at most once per turn. Synchronous nodes
and routers run on the event loop (:func:`graphs.inline.inline`), not in LangGraph's thread pool. Compiled
without a checkpointer for Studio and tests; the worker compiles ``builder`` with the Postgres checkpointer.
"""

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from graphs.context import Context
from graphs.inline import inline
from graphs.state import State
from nodes.commands import answer_catalog, handle_command
from nodes.decisions import handle_button, handle_reason
from nodes.effects import (
    EFFECT_NODES,
    effects_after,
    resume_approval,
    retry_fulfilment,
    route_effects_after,
    start_approval,
    supersede_approval,
)
from nodes.intake import handle_confirmation, handle_media, interpret_text, skip_message
from nodes.llm_intake import call_model
from nodes.respond import ingest, respond
from nodes.routing import NODE_FOR, route_after_messages, route_next
from nodes.tickets import answer_ticket, open_ticket

#: Every per-message handler node (one per intent), from the routing table.
HANDLERS = sorted(set(NODE_FOR.values()))


def after_messages(state: State) -> dict[str, Any]:
    """Join point after every message of the turn has been routed."""
    return {}


def route_model(state: State, runtime: Runtime[Context]) -> Literal["call_model", "respond"]:
    """Router: the LLM only for unresolved text, and only when a model is configured."""
    has_model = bool(runtime.context and runtime.context.chat_model is not None)
    return route_after_messages(state, has_model)


builder = StateGraph(State, context_schema=Context)
builder.add_node("ingest", inline(ingest))
builder.add_node("handle_button", handle_button)
builder.add_node("handle_command", handle_command)
builder.add_node("handle_confirmation", handle_confirmation)
builder.add_node("handle_reason", handle_reason)
builder.add_node("answer_catalog", answer_catalog)
builder.add_node("open_ticket", open_ticket)
builder.add_node("answer_ticket", answer_ticket)
builder.add_node("handle_media", handle_media)
builder.add_node("interpret_text", interpret_text)
builder.add_node("skip_message", skip_message)
builder.add_node("after_messages", inline(after_messages))
builder.add_node("call_model", call_model)
builder.add_node("respond", respond)
builder.add_node("start_approval", start_approval)
builder.add_node("supersede_approval", supersede_approval)
builder.add_node("resume_approval", resume_approval)
builder.add_node("retry_fulfilment", retry_fulfilment)

builder.add_edge(START, "ingest")
# The router's destinations are named here: its State annotation is a type-only import in nodes, so LangGraph
# cannot read them from its return type.
ROUTES: list[str] = [*HANDLERS, "after_messages"]
builder.add_conditional_edges("ingest", inline(route_next), ROUTES)
for handler in HANDLERS:
    builder.add_conditional_edges(handler, inline(route_next), ROUTES)
builder.add_conditional_edges("after_messages", inline(route_model), ["call_model", "respond"])
builder.add_edge("call_model", "respond")
for name in ("respond", *EFFECT_NODES):
    builder.add_conditional_edges(name, inline(route_effects_after(name)), [*effects_after(name), END])

graph = builder.compile(name="procurement")

#: Steps a turn may take (each message is two steps: router and handler).
RECURSION_LIMIT = 200
