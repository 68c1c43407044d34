"""The graphs' checkpointed State and the JSON-safe records in it: drafts, lines, inbound messages, effects.

The State is checkpointed after every node (PostgreSQL in the server), so everything here is a ``TypedDict`` of
small JSON values: amounts and dates travel as strings (``"30"``, ``"2026-11-20"``), media as storage keys, never
as ``Decimal``/``date`` objects or bytes. They live in ``core`` so that nodes can name them at run time (LangGraph
reads routers' and nodes' annotations) without importing the graphs layer; ``graphs.state`` re-exports the two
State classes the graphs are built on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Required

from typing_extensions import TypedDict  # pydantic (LangGraph API schemas) needs it on Python < 3.12

#: Hard cap on the stored conversation window (the LLM sees the last ``CONTEXT_WINDOW_MESSAGES`` of it).
WINDOW_CAP = 40
#: Characters of a window entry kept once the window moves on: the LLM intake shows at most the first
#: ``nodes.llm_intake.WINDOW_CHARS`` (80) of an earlier user message and none of our replies, so the checkpoint
#: keeps no more. The turn's own user messages stay whole until its replies are appended (the intake reads them
#: whole, before ``respond``).
WINDOW_TEXT_CHARS = 120


class LineDict(TypedDict):
    """A :class:`Line` as JSON (:meth:`Line.to_dict`): what State, the API and the audit log store.

    Fields:
        description: what the person asked for, or the catalogue name once matched.
        quantity: decimal amount in ``unit`` as plain digits (``"30"``, ``"2.5"``).
        unit: unit of measure of ``quantity``.
        sku: matched catalogue SKU, or ``None`` for a free-text item.
        unit_price: price of one ``unit`` as plain digits, or ``None`` when unpriced.
        currency: ISO 4217 code of ``unit_price``, or ``None`` when unpriced.
        confidence: 0..1, rounded to 3 places.
        candidates: SKUs still in question for an ambiguous line.
        asked: the amount as the person said it before conversion (``"96 bottle"``), or ``None``.
        proposal: catalogue quantity offered for an amount that did not convert exactly, or ``None``.
    """

    description: str
    quantity: str
    unit: str
    sku: str | None
    unit_price: str | None
    currency: str | None
    confidence: float
    candidates: list[str]
    asked: str | None
    proposal: str | None


class Slot(TypedDict, total=False):
    """An open question about the draft, as the LLM intake sees it (read defensively: any field may be absent).

    Fields:
        kind: ``item``, ``quantity``, ``site``, ``needed_by`` or ``price_estimate``.
        line: index of the draft line it is about, or ``None`` for the whole draft.
        candidates: SKUs the answer may choose among (``skus`` is read as a synonym).
    """

    kind: str
    line: int | None
    candidates: list[str]
    skus: list[str]


class DraftSnapshot(TypedDict, total=False):
    """The parts of an idle draft kept aside while the person chooses to add to it or start anew.

    Fields:
        lines: the old draft's lines.
        site: its site, or ``None``.
        needed_by: its needed-by date (ISO 8601), or ``None``.
        touched_at: when it was last changed (ISO 8601 time), or ``None``.
    """

    lines: list[LineDict]
    site: str | None
    needed_by: str | None
    touched_at: str | None


class Draft(TypedDict, total=False):
    """The purchase request being built in a chat (``State["draft"]``); every field may be absent.

    Fields:
        lines: the lines so far.
        site: delivery site (canonical spelling), or ``None``.
        needed_by: needed-by date (ISO 8601 ``YYYY-MM-DD``), or ``None``.
        notes: free notes for the buyer.
        attachments: storage keys of media the person sent with the request.
        request_id: the submitted request this draft amends, or ``None`` for a new request.
        touched_at: when the draft was last changed (ISO 8601 time with offset); an idle draft is shown again.
        previous: an idle draft kept aside while the person chooses what to do with it, or ``None``.
        slots: open questions in typed form (see :class:`Slot`), when a reader sets them.
    """

    lines: list[LineDict]
    site: str | None
    needed_by: str | None
    notes: list[str]
    attachments: list[str]
    request_id: int | None
    touched_at: str | None
    previous: DraftSnapshot | None
    slots: list[Slot]


class Inbound(TypedDict, total=False):
    """One inbound message in the State: the channel's ``InboundMessage.to_dict()`` plus what the worker adds.

    Fields:
        provider: channel name (``meta``...).
        provider_message_id: the provider's message id (the deduplication key).
        chat_id: the conversation to answer in.
        sender: the sender's WhatsApp id (wa_id).
        kind: ``text``, ``button``, ``list``, ``image``, ``audio``, ``reaction``... (``MessageKind`` values).
        timestamp: when the provider received it, ISO 8601 with offset.
        sender_name: the sender's profile name, or ``None``.
        sender_user_id: the provider's business-scoped user id, or ``None``.
        text: text body, caption or button title, or ``None``.
        reply_id: id of the chosen button or list row (ours: ``confirm``, ``approve:12:1``...), or ``None``.
        media_id: provider media id, or ``None``.
        mime_type: media MIME type, or ``None``.
        filename: document file name, or ``None``.
        latitude: location latitude in decimal degrees, or ``None``.
        longitude: location longitude in decimal degrees, or ``None``.
        context_id: id of the message this one replies to, or ``None``.
        business_phone_number_id: our number's id the message was sent to, or ``None``.
        inbox_id: the ``inbox`` row id (absent in Studio and evaluations).
        storage_key: where the worker stored the message's media (absent without media).
    """

    provider: str
    provider_message_id: str
    chat_id: str
    sender: str
    kind: str
    timestamp: str
    sender_name: str | None
    sender_user_id: str | None
    text: str | None
    reply_id: str | None
    media_id: str | None
    mime_type: str | None
    filename: str | None
    latitude: float | None
    longitude: float | None
    context_id: str | None
    business_phone_number_id: str | None
    inbox_id: int
    storage_key: str


class WindowEntry(TypedDict):
    """One message of the recent conversation kept for the LLM: who said it and what (cut to 500 characters)."""

    role: Literal["user", "assistant"]
    text: str


class Awaiting(TypedDict, total=False):
    """What the chat's next message answers.

    Fields:
        kind: ``reject_reason`` (the approver's reason for rejecting) or ``stale_draft`` (add to the idle draft
            or keep the new lines apart).
        request_id: the request being rejected (``reject_reason``).
        revision: its revision (``reject_reason``).
    """

    kind: Required[Literal["reject_reason", "stale_draft"]]
    request_id: int
    revision: int


EffectType = Literal["start_approval", "resume_approval", "cancelled", "retry_fulfilment", "fulfil"]


class Effect(TypedDict, total=False):
    """A business side effect a handler asks for; an effect node carries it out (see ``nodes.effects``).

    Fields:
        type: what to do.
        request_id: the purchase request (every type but ``retry_fulfilment``).
        revision: the request revision (``start_approval``, ``resume_approval``).
        decision: ``approve`` or ``reject`` (``resume_approval``).
        by: user id of who asked for it (audit only: effect nodes take identity from the run's context).
        reason: the approver's rejection reason (``resume_approval``), or ``None``.
        fulfilment_id: the failed fulfilment to retry (``retry_fulfilment``).
    """

    type: Required[EffectType]
    request_id: int
    revision: int
    decision: Literal["approve", "reject"]
    by: int
    reason: str | None
    fulfilment_id: int


class ApprovalAnswer(TypedDict):
    """The answer an approval thread is resumed with (``Command(resume=...)``).

    The decider is never part of it: ``apply_decision`` takes them from the run's context (the approver whose
    turn resumed the thread).

    Fields:
        decision: ``approve``, ``reject``, or ``superseded`` (a newer revision or a cancellation closed it).
        reason: the rejection reason, or ``None``.
    """

    decision: Literal["approve", "reject", "superseded"]
    reason: NotRequired[str | None]


def _short(entry: WindowEntry) -> WindowEntry:
    text = entry["text"]
    return entry if len(text) <= WINDOW_TEXT_CHARS else {"role": entry["role"], "text": text[:WINDOW_TEXT_CHARS]}


def window_reducer(left: list[WindowEntry] | None, right: list[WindowEntry] | None) -> list[WindowEntry]:
    """Append new window entries and keep the last :data:`WINDOW_CAP`.

    Entries already in the window are cut to :data:`WINDOW_TEXT_CHARS` characters, and so are new replies
    (``assistant`` entries, which no reader shows); new ``user`` entries are kept whole until the next append.
    """
    new = [e if e.get("role") == "user" else _short(e) for e in (right or [])]
    return ([_short(e) for e in (left or [])] + new)[-WINDOW_CAP:]


class State(TypedDict, total=False):
    """Procurement conversation state of one chat (``thread_id`` = provider and chat id).

    Fields:
        turn_id: id of the turn being processed (``turns.id``); a re-run of the same turn is recognised by it.
        inbound: this turn's messages (:class:`core.domain.Inbound`), in order.
        pending: indices into ``inbound`` not yet handled (the routing loop pops from the front).
        window: recent conversation, ``{"role": "user"|"assistant", "text": str}``, capped.
        draft: the request being built (:class:`core.domain.Draft`), or ``None``.
        missing: question kinds still open (see ``core.policy.missing_fields``).
        questions: question kinds asked this turn (for evaluation).
        unresolved: texts this turn the rules could not read (handed to the LLM when one is configured).
        awaiting: what the next message answers (:class:`core.domain.Awaiting`), or ``None``.
        active_request_id: the requester's latest submitted request (target of amendments).
        outbound: messages to send at the end of the turn: ``{"to", "type": "text"|"buttons"|"list", ...}``.
        effects: business side effects of the turn (:class:`core.domain.Effect`), run by the effect nodes.
        notes: short texts collected by handlers this turn, rendered before the summary.
        show_summary: whether the reply should show the draft summary.
        llm_calls: LLM calls made this turn.
    """

    turn_id: int | None
    inbound: list[Inbound]
    pending: list[int]
    window: Annotated[list[WindowEntry], window_reducer]
    draft: Draft | None
    missing: list[str]
    questions: list[str]
    unresolved: list[str]
    awaiting: Awaiting | None
    active_request_id: int | None
    outbound: list[dict[str, Any]]
    effects: list[Effect]
    notes: list[str]
    show_summary: bool
    llm_calls: int


class ApprovalState(TypedDict, total=False):
    """State of one request's approval thread (``thread_id`` = ``approval:PR-<id>:r<revision>``).

    Fields:
        request_id: the purchase request.
        revision: the revision being approved.
        approver_id: the assigned approver (admins may also answer).
        decision: the resumed answer (:class:`core.domain.ApprovalAnswer`); the decider is the run context's user.
        outcome: what applying the decision gave (``ok``, ``stale``...).
        outbound: notifications to send (approver's buttons before the interrupt, outcomes after it).
        effects: side effects for the worker (fulfilment after an approval).
    """

    request_id: int
    revision: int
    approver_id: int | None
    decision: ApprovalAnswer | None
    outcome: str | None
    outbound: list[dict[str, Any]]
    effects: list[Effect]
