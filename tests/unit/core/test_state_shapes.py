"""The State records match what produces them, and stay JSON (they are checkpointed after every node)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_type_hints

import pytest
from pydantic import TypeAdapter, ValidationError

from core.domain import ApprovalState, Draft, DraftSnapshot, Inbound, Line, LineDict, Money, State
from nodes import draft as D
from server.channels.records import InboundMessage, MessageKind

LINE = Line("A4 paper", Decimal("10"), "box", "PAP-A4", Money(Decimal("4.50"), "USD"), 0.9, ["PAP-A4"], "96 ream")


def test_line_dict_is_what_line_to_dict_gives() -> None:
    assert list(LINE.to_dict()) == list(get_type_hints(LineDict))
    assert Line.from_dict(LINE.to_dict()) == LINE


def test_inbound_holds_every_field_of_a_channel_message() -> None:
    msg = InboundMessage("meta", "wamid.1", "2547", "2547", MessageKind.TEXT, datetime.now(UTC), text="hi")
    fields = set(get_type_hints(Inbound))
    assert set(msg.to_dict()) <= fields
    assert {"inbox_id", "storage_key"} <= fields  # what the worker adds


def test_draft_helpers_write_only_draft_fields() -> None:
    draft = D.set_field(D.with_lines(None, [LINE]), site="Nairobi", touched_at="2026-11-18T10:00:00+03:00")
    assert set(draft) <= set(get_type_hints(Draft))
    assert set(D.snapshot(draft)) == set(get_type_hints(DraftSnapshot))


def test_a_full_state_is_json_and_pydantic_reads_it() -> None:
    draft: Draft = D.set_field(D.with_lines(None, [LINE]), site="Nairobi")
    draft["previous"] = D.snapshot(draft)
    state: State = {
        "turn_id": 3,
        "inbound": [{"kind": "text", "text": "hi", "sender": "2547", "inbox_id": 9}],
        "pending": [0],
        "window": [{"role": "user", "text": "hi"}],
        "draft": draft,
        "awaiting": {"kind": "reject_reason", "request_id": 1, "revision": 2},
        "effects": [{"type": "resume_approval", "request_id": 1, "revision": 2, "decision": "reject", "by": 4}],
        "outbound": [{"to": "2547", "type": "text", "text": "ok"}],
    }
    assert json.loads(json.dumps(state)) == state
    # The LangGraph API server builds its schemas with pydantic from these classes.
    assert TypeAdapter(State).validate_python(state) == state
    approval: ApprovalState = {"request_id": 1, "revision": 2, "decision": {"decision": "approve", "reason": None}}
    assert TypeAdapter(ApprovalState).validate_python(approval) == approval
    bad: Any = {**state, "awaiting": {"kind": "something else"}}
    with pytest.raises(ValidationError):
        TypeAdapter(State).validate_python(bad)
