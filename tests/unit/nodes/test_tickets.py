"""Ticket and general-intent detection and the ticket rules as pure functions (no database)."""

from __future__ import annotations

import pytest

from nodes.routing import classify, command_of, ticket_query_of
from tools import tickets as TK

COMPLAINTS = [
    # (message, kind, named request)
    ("the toner you delivered is the wrong one", "wrong_item", None),
    ("delivery for PR-12 hasn't arrived", "not_delivered", 12),
    ("the cement bags came torn", "damaged", None),
    ("tumepokea vitu vibaya", "other", None),
    # not the examples above: other verbs, word orders, languages
    ("the chairs you brought on monday are broken", "damaged", None),
    ("we still have not received the gloves from pr 7", "not_delivered", 7),
    ("why hasn't our order arrived yet?", "not_delivered", None),
    ("mzigo haujafika", "not_delivered", None),
    ("vitu vilivyoletwa jana vimeharibika", "damaged", None),
    ("the printer we received is not working", "damaged", None),
    ("PR-3 was delayed again", "not_delivered", 3),
    ("got the paper but 2 boxes were missing from the delivery", "not_delivered", None),
    ("the HP toner that came yesterday doesn't fit our printer", "wrong_item", None),
    ("you sent the 26X instead of the 26A", "wrong_item", None),
    ("toner tuliyoletewa haifanyi kazi", "damaged", None),
]

NOT_COMPLAINTS = [
    "need 20 boxes of paper",
    "the 26A ones",
    "wrong quantity, make it 30",
    "my chair is broken, need a new one",
    "need 10 packs of wet wipes delivered to Mombasa by friday",
    "has PR-12 been delivered?",
    "deliver to Eldoret instead",
    "sorry 15 not 12 for the gloves",
    "tunahitaji mifuko sabini ya cement",
    "what is the delivery date for the paper?",
    "make it 30 instead of 20",
    "need gloves that fit, size L",
    "we got a problem with the printer, need a new toner",
    "tulipata shida",
]


@pytest.mark.parametrize(("message", "kind", "pr"), COMPLAINTS)
def test_complaints_are_read_from_structure(message, kind, pr):
    c = TK.complaint_of(message)
    assert c is not None and (c.kind, c.request_id) == (kind, pr)
    assert classify({"kind": "text", "text": message}) == "ticket"


@pytest.mark.parametrize("message", NOT_COMPLAINTS)
def test_requests_questions_and_corrections_are_not_tickets(message):
    assert TK.complaint_of(message) is None
    assert TK.complaint_of(message, draft_open=True) is None
    assert classify({"kind": "text", "text": message}, draft_open=True) != "ticket"


def test_edit_shaped_message_with_an_open_draft_is_a_correction():
    msg = "the paper you delivered was wrong, make it 30"
    assert TK.complaint_of(msg) is not None  # no draft: it is about a delivery
    assert TK.complaint_of(msg, draft_open=True) is None  # draft open: "make it 30" edits the draft


@pytest.mark.parametrize(
    "message", ["what can you do", "What can you do?", "unaweza nini", "how does this work", "unaweza kufanya nini",
                "hii inafanyaje kazi", "how do I use this", "what else can you help me with", "who are you"]
)  # fmt: skip
def test_questions_about_the_agent_are_help(message):
    assert command_of(message) == ("help", {})


@pytest.mark.parametrize("message", ["need 20 boxes a4 paper", "how many boxes are in the carton", "what is A4"])
def test_other_questions_are_not_help(message):
    assert command_of(message) is None


def test_ticket_queries():
    assert [ticket_query_of(s) for s in ["status T-3", "T-3", "ticket 4", "hali ya T-6", "status of ticket t 8"]] == [
        3,
        3,
        4,
        6,
        8,
    ]
    assert ticket_query_of("t3") is None  # a bare code without its hyphen may be a product
    assert ticket_query_of("status PR-3") is None
