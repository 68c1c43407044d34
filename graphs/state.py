"""State of the procurement and approval graphs.

The State is checkpointed after every node (Postgres in the server), so it holds only small JSON-safe values:
texts, ids, amounts as strings, and storage keys for media. Media bytes and raw payloads never enter it.
"""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import TypedDict  # pydantic (LangGraph API schemas) needs it on Python < 3.12

#: Hard cap on the stored conversation window (the LLM sees the last ``CONTEXT_WINDOW_MESSAGES`` of it).
WINDOW_CAP = 40


def window_reducer(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Append new window entries and keep the last :data:`WINDOW_CAP`."""
    return ((left or []) + (right or []))[-WINDOW_CAP:]


class State(TypedDict, total=False):
    """Procurement conversation state of one chat (``thread_id`` = provider and chat id).

    Fields:
        turn_id: id of the turn being processed (``turns.id``); a re-run of the same turn is recognised by it.
        inbound: this turn's messages (``InboundMessage.to_dict()`` plus ``inbox_id``), in order.
        pending: indices into ``inbound`` not yet handled (the routing loop pops from the front).
        window: recent conversation, ``{"role": "user"|"assistant", "text": str}``, capped.
        draft: the request being built: ``{"lines": [Line.to_dict()], "site", "needed_by" (ISO), "notes",
            "attachments" (storage keys), "request_id" (when amending a submitted request), "accepted_free_text"}``.
        missing: question kinds still open (see ``core.policy.missing_fields``).
        questions: question kinds asked this turn (for evaluation).
        unresolved: texts this turn the rules could not read (handed to the LLM when one is configured).
        awaiting: what the next message answers, e.g. ``{"kind": "reject_reason", "request_id": 12, "revision": 1}``.
        active_request_id: the requester's latest submitted request (target of amendments).
        outbound: messages to send at the end of the turn: ``{"to", "type": "text"|"buttons"|"list", ...}``.
        effects: side effects for the worker after the turn (start/resume approval threads, fulfilment).
        notes: short texts collected by handlers this turn, rendered before the summary.
        show_summary: whether the reply should show the draft summary.
        llm_calls: LLM calls made this turn.
    """

    turn_id: int | None
    inbound: list[dict[str, Any]]
    pending: list[int]
    window: Annotated[list[dict[str, Any]], window_reducer]
    draft: dict[str, Any] | None
    missing: list[str]
    questions: list[str]
    unresolved: list[str]
    awaiting: dict[str, Any] | None
    active_request_id: int | None
    outbound: list[dict[str, Any]]
    effects: list[dict[str, Any]]
    notes: list[str]
    show_summary: bool
    llm_calls: int


class ApprovalState(TypedDict, total=False):
    """State of one request's approval thread (``thread_id`` = ``approval:PR-<id>:r<revision>``).

    Fields:
        request_id: the purchase request.
        revision: the revision being approved.
        approver_id: the assigned approver (admins may also answer).
        decision: the resumed answer, ``{"decision": "approve"|"reject"|"superseded", "by": user id, "reason"}``.
        outcome: what applying the decision gave (``ok``, ``stale``...).
        outbound: notifications to send (approver's buttons before the interrupt, outcomes after it).
        effects: side effects for the worker (fulfilment after an approval).
    """

    request_id: int
    revision: int
    approver_id: int | None
    decision: dict[str, Any] | None
    outcome: str | None
    outbound: list[dict[str, Any]]
    effects: list[dict[str, Any]]
