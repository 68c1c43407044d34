"""Deterministic routing: what each inbound message is, decided without any LLM call.

Buttons and list replies, commands (status, my requests, cancel, help, pending, orders), questions about what
the agent does, ticket queries (``status T-3``), complaints about a delivery (support tickets), yes/no answers
and catalogue questions are recognised here by shape; only free text that the rule extractor cannot read goes
to the LLM (and only when one is configured).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from core.domain import Awaiting, Inbound, State
from tools.extraction import is_catalog_question
from tools.tickets import complaint_of

Intent = Literal[
    "button",
    "command",
    "confirm",
    "deny",
    "reason",
    "ticket",
    "ticket_status",
    "catalog_question",
    "media",
    "text",
    "ignore",
]
MEDIA_KINDS = frozenset({"image", "audio", "voice", "video", "document", "sticker", "location", "contacts", "order"})

_PR = r"(?:pr[-\s]?\d{1,9})"
COMMANDS: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(r"^(?:help|menu|\?|msaada|commands|what can you do)$")),
    ("status", re.compile(rf"^(?:status|where is|what is the status of|status of)\s*(?P<pr>{_PR})?$")),
    ("my_requests", re.compile(r"^(?:my requests|my request|my orders|my prs|requests|list)$")),
    ("cancel", re.compile(rf"^(?:cancel|withdraw)\s*(?:request\s*)?(?P<pr>{_PR})$")),
    ("cancel_draft", re.compile(r"^(?:cancel|cancel draft|discard|start over|forget it|cancel it|cancel the draft)$")),
    ("pending", re.compile(r"^(?:pending|pending approvals?|approvals?|to approve)$")),
    ("orders", re.compile(rf"^(?:orders?|order status)\s*(?P<pr>{_PR})$")),
    ("approve_text", re.compile(rf"^(?:approve|approved|reject|decline)\s*(?P<pr>{_PR})?\b.*$")),
]
CONFIRM_WORDS = frozenset(
    {"yes", "y", "yes please", "confirm", "confirmed", "submit", "ok submit", "send it", "go ahead", "sawa",
     "ndio", "ndiyo", "correct", "yes submit", "yes, submit", "sawa tuma", "tuma", "ok send", "looks good",
     "thats right", "that's right", "ok", "okay", "sure", "yep", "yeah"}
)  # fmt: skip
DENY_WORDS = frozenset({"no", "n", "nope", "hapana", "not now"})

# A question about the agent itself, by its grammar: (what|how) + modal + (you|this|it|I|we) + (do|work|help|use),
# "who/what are you", and the Swahili forms (unaweza [kufanya] nini, inafanyaje kazi, nitatumiaje...).
_AGENT = r"(?:you|u|this|it|i|we|the\s+(?:bot|agent|assistant|service|system|number))"
HELP_QUESTIONS = re.compile(
    r"^(?:(?:so|and|ok|okay|hi|hello|hey|habari|sasa)\s+)?(?:"
    rf"(?:what|how)\s+(?:else\s+)?(?:can|could|do|does|should|would|will|may)\s+{_AGENT}\s+"
    r"(?:do|work|help(?:\s+(?:me|us))?(?:\s+with)?|use(?:\s+(?:you|u|this|it))?|ask(?:\s+(?:you|for))?|say|offer)"
    r"(?:\s+(?:for|here|now))?(?:\s+(?:me|us))?"
    r"|(?:who|what)\s+(?:are|r)\s+(?:you|u)|what\s+is\s+this(?:\s+(?:bot|number|service|for))?"
    r"|how\s+(?:to|do\s+i|can\s+i)\s+(?:use|order|request)(?:\s+(?:this|it|you|things|stuff))?"
    r"|(?:una|mna|wa)weza\s+(?:ku(?:fanya|nisaidia|tusaidia)\s+)?(?:na\s+)?(?:nini|vipi)"
    r"|(?:hii\s+|huduma\s+hii\s+|mfumo\s+huu\s+)?(?:ina|hu)fanya(?:je)?\s+kazi(?:je|\s+vipi|\s+aje)?"
    r"|(?:ni|tu)(?:ta)?tumia(?:je|\s+vipi)|(?:una|mna)fanya\s+nini|wewe\s+ni\s+nani"
    r"|(?:na|twa|tuna)weza\s+ku(?:fanya|omba|uliza)\s+nini"
    r")$"
)
# "status T-3", "ticket 3", "hali ya T-3", or a bare "T-3" (with its hyphen: "t3" alone may be a product code).
_TICKET_QUERY = re.compile(
    r"^(?:(?:status|where\s+is|what\s+is\s+the\s+status\s+of|status\s+of|hali\s+ya)\s*(?:ticket\s*)?"
    r"t[-\s]?(?P<a>\d{1,9})|ticket\s*(?:t[-\s]?)?(?P<b>\d{1,9})|t-(?P<c>\d{1,9}))$"
)


def _clean(text: str) -> str:
    # "sawa, tuma" and "ok, send" are the same answer as "sawa tuma": internal commas do not matter.
    s = re.sub(r"[!.,;:]+$", "", text.strip().lower())
    return re.sub(r"\s+", " ", re.sub(r"(?<=\w)[,;]+(?=\s)", " ", s)).strip()


def command_of(text: str) -> tuple[str, dict[str, Any]] | None:
    """The command a text is, with its arguments (``{"request_id": 12}``), or ``None``."""
    s = _clean(text)
    for name, rx in COMMANDS:
        m = rx.match(s)
        if m:
            args: dict[str, Any] = {}
            pr = m.groupdict().get("pr")
            if pr:
                args["request_id"] = int(re.sub(r"\D", "", pr))
            return name, args
    if HELP_QUESTIONS.match(s.rstrip("?").strip()):
        return "help", {}
    return None


def ticket_query_of(text: str) -> int | None:
    """The ticket id a ``status T-3`` / ``T-3`` / ``ticket T-3`` query names, or ``None``."""
    m = _TICKET_QUERY.match(_clean(text).rstrip("?").strip())
    return int(m.group("a") or m.group("b") or m.group("c")) if m else None


def classify(message: Inbound, *, awaiting: Awaiting | None = None, draft_open: bool = False) -> Intent:
    """Classify one inbound message (``InboundMessage.to_dict()``) by shape alone.

    Args:
        message: the normalised inbound message.
        awaiting: what the chat is waiting for (a reject reason makes the next text the reason).
        draft_open: the chat has a draft with lines; an edit-shaped message is then a correction, never a ticket.
    """
    kind = message.get("kind")
    if kind in ("button", "list") and message.get("reply_id"):
        return "button"
    if kind == "reaction":
        return "ignore"
    text = (message.get("text") or "").strip()
    if kind in MEDIA_KINDS and not text:
        return "media"
    if kind not in ("text", "button", "list") and kind not in MEDIA_KINDS:
        return "media" if not text else "text"
    if not text:
        return "ignore"
    if command_of(text) is not None:
        return "command"
    if awaiting and awaiting.get("kind") == "reject_reason":
        return "reason"
    s = _clean(text)
    if s in CONFIRM_WORDS:
        return "confirm"
    if s in DENY_WORDS:
        return "deny"
    if ticket_query_of(text) is not None:
        return "ticket_status"
    if complaint_of(text, draft_open=draft_open) is not None:
        return "ticket"
    if is_catalog_question(text):
        return "catalog_question"
    return "text"


Handler = Literal[
    "handle_button",
    "handle_command",
    "handle_confirmation",
    "handle_reason",
    "open_ticket",
    "answer_ticket",
    "answer_catalog",
    "handle_media",
    "interpret_text",
    "skip_message",
]

NODE_FOR: dict[Intent, Handler] = {
    "button": "handle_button",
    "command": "handle_command",
    "confirm": "handle_confirmation",
    "deny": "handle_confirmation",
    "reason": "handle_reason",
    "ticket": "open_ticket",
    "ticket_status": "answer_ticket",
    "catalog_question": "answer_catalog",
    "media": "handle_media",
    "text": "interpret_text",
    "ignore": "skip_message",
}


def route_next(state: State) -> Handler | Literal["after_messages"]:
    """Router: the node for the next pending message of the turn, or ``after_messages`` when none is left."""
    pending = state.get("pending") or []
    if not pending:
        return "after_messages"
    msg = state["inbound"][pending[0]]
    draft_open = bool((state.get("draft") or {}).get("lines"))
    return NODE_FOR[classify(msg, awaiting=state.get("awaiting"), draft_open=draft_open)]


def route_after_messages(state: State, has_model: bool) -> Literal["call_model", "respond"]:
    """Router: the LLM intake node only for text the rules left unresolved, and only with a model configured."""
    return "call_model" if has_model and state.get("unresolved") else "respond"
