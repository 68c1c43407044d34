"""The deterministic routers: command_of, ticket_query_of, classify, route_next and route_after_messages."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from core.domain import Inbound, State
from nodes.routing import (
    NODE_FOR,
    Handler,
    Intent,
    classify,
    command_of,
    route_after_messages,
    route_next,
    ticket_query_of,
)


def text(body: str) -> Inbound:
    return {"kind": "text", "text": body}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("help", ("help", {})),
        ("Menu!", ("help", {})),
        ("what can you do?", ("help", {})),  # a question about the agent, by its grammar
        ("unaweza kufanya nini", ("help", {})),  # the same in Swahili
        ("status", ("status", {})),
        ("Status PR-12", ("status", {"request_id": 12})),
        ("status pr 12.", ("status", {"request_id": 12})),
        ("my requests", ("my_requests", {})),
        ("cancel PR-3", ("cancel", {"request_id": 3})),
        ("cancel", ("cancel_draft", {})),  # without a number: the draft
        ("start over", ("cancel_draft", {})),
        ("pending approvals", ("pending", {})),
        ("orders PR-9", ("orders", {"request_id": 9})),
        ("approve PR-4 looks fine", ("approve_text", {"request_id": 4})),
        ("hello", None),
        ("need 20 boxes of paper", None),
        ("orders", None),  # orders needs a request number
        ("cancel the paper", None),  # an edit, not a command
    ],
)
def test_command_of(message: str, expected: tuple[str, dict[str, Any]] | None) -> None:
    assert command_of(message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [("status T-3", 3), ("T-3", 3), ("ticket 5", 5), ("hali ya T-12?", 12), ("t3", None), ("status PR-3", None)],
)
def test_ticket_query_of(message: str, expected: int | None) -> None:
    assert ticket_query_of(message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"kind": "button", "reply_id": "confirm", "text": "Confirm"}, "button"),
        ({"kind": "list", "reply_id": "pick:0:HP-26A", "text": "HP-26A"}, "button"),
        ({"kind": "reaction", "text": "👍"}, "ignore"),
        ({"kind": "image"}, "media"),
        ({"kind": "image", "text": "20 of these"}, "text"),  # a caption is read as text
        ({"kind": "unsupported"}, "media"),
        ({"kind": "text", "text": "   "}, "ignore"),
        (text("status PR-2"), "command"),
        (text("sawa, tuma"), "confirm"),
        (text("ok"), "confirm"),
        (text("hapana"), "deny"),
        (text("status T-3"), "ticket_status"),
        (text("the toner you delivered is the wrong one"), "ticket"),
        (text("do we stock A3 paper?"), "catalog_question"),
        (text("need 20 boxes A4 paper for Nairobi by Friday"), "text"),
    ],
)
def test_classify_by_shape(message: Inbound, expected: Intent) -> None:
    assert classify(message) == expected


def test_classify_while_a_reject_reason_is_awaited() -> None:
    awaiting: Any = {"kind": "reject_reason", "request_id": 1, "revision": 1}
    assert classify(text("too expensive, use the cheaper toner"), awaiting=awaiting) == "reason"
    assert classify(text("ok"), awaiting=awaiting) == "reason"  # even a yes/no word is the reason
    assert classify(text("status"), awaiting=awaiting) == "command"  # commands still work
    assert classify(text("ok"), awaiting={"kind": "stale_draft"}) == "confirm"


def test_an_open_draft_turns_a_complaint_shaped_edit_into_text() -> None:
    message = text("the paper you sent is wrong, make it 30")
    assert classify(message) == "ticket"
    assert classify(message, draft_open=True) == "text"


def test_every_intent_has_a_handler_node() -> None:
    assert set(NODE_FOR) == set(get_args(Intent))
    assert set(NODE_FOR.values()) == set(get_args(Handler))


def test_route_next_takes_the_next_pending_message() -> None:
    inbound = [text("status"), {"kind": "button", "reply_id": "confirm", "text": "Confirm"}, text("hello")]
    assert route_next({"inbound": inbound, "pending": [0, 1, 2]}) == "handle_command"
    assert route_next({"inbound": inbound, "pending": [1, 2]}) == "handle_button"
    assert route_next({"inbound": inbound, "pending": [2]}) == "interpret_text"
    assert route_next({"inbound": inbound, "pending": []}) == "after_messages"
    assert route_next({}) == "after_messages"


def test_route_next_reads_awaiting_and_the_draft_from_state() -> None:
    complaint = text("the paper you sent is wrong, make it 30")
    state: State = {"inbound": [complaint], "pending": [0]}
    assert route_next(state) == "open_ticket"
    line: Any = {"description": "A4 paper", "quantity": "10", "unit": "box"}
    assert route_next({**state, "draft": {"lines": [line]}}) == "interpret_text"
    assert route_next({**state, "draft": {"lines": []}}) == "open_ticket"  # an empty draft is no draft
    assert route_next({**state, "awaiting": {"kind": "reject_reason", "request_id": 1}}) == "handle_reason"


def test_route_after_messages_calls_the_model_only_for_unresolved_text_with_a_model() -> None:
    assert route_after_messages({"unresolved": ["asdf"]}, True) == "call_model"
    assert route_after_messages({"unresolved": ["asdf"]}, False) == "respond"
    assert route_after_messages({"unresolved": []}, True) == "respond"
    assert route_after_messages({}, True) == "respond"
