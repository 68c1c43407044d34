"""The fault suite's counting can fail: sends the provider received are matched to outbox keys, twice is caught."""

from __future__ import annotations

from typing import Any

from sandboxes.whatsapp.meta_graph_api import RecordedRequest
from tests.support.fault_checks import Ledger, attribute

TO = "254700000001"


def row(key: str, text: str, pmid: str | None, to: str = TO) -> dict[str, Any]:
    return {"idempotency_key": key, "to": to, "body": {"text": text}, "provider_message_id": pmid}


def send(text: str, wamid: str, *, key: str | None = None, status: int = 200, to: str = TO) -> RecordedRequest:
    msg: dict[str, Any] = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": text}}
    if key:
        msg["biz_opaque_callback_data"] = key
    answer = {"messages": [{"id": wamid}]} if status == 200 else {"error": {"code": 131000}}
    return RecordedRequest("POST", "/v23.0/1/messages", {}, {}, msg, status, answer)


def read_receipt() -> RecordedRequest:
    msg = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x"}
    return RecordedRequest("POST", "/v23.0/1/messages", {}, {}, msg, 200, {"success": True})


def test_each_key_once_by_callback_data_or_recorded_id() -> None:
    rows = [row("turn:1:0", "Hello", "wamid.a"), row("turn:2:0", "Hello", None)]
    per_key, stray = attribute(
        rows, [send("Hello", "wamid.a"), send("Hello", "wamid.b", key="turn:2:0"), read_receipt()]
    )
    assert (per_key, stray) == ({"turn:1:0": 1, "turn:2:0": 1}, 0)


def test_a_second_send_of_a_key_is_counted_twice() -> None:
    rows = [row("turn:1:0", "Hello", "wamid.b")]
    per_key, stray = attribute(
        rows, [send("Hello", "wamid.a", key="turn:1:0"), send("Hello", "wamid.b", key="turn:1:0")]
    )
    assert per_key == {"turn:1:0": 2}
    ledger = Ledger(1, 1, 1, 1, 1, {"done": 1}, 1, per_key, stray)
    assert ledger.duplicated == 1 and ledger.problems() == [
        "1 replies sent more than once (e.g. ['turn:1:0']; 0 unattributed)"
    ]


def test_a_lost_answer_counts_once_and_its_resend_twice() -> None:
    # The worker died before recording the first answer (no callback data, unknown wamid), then sent again.
    rows = [row("turn:1:0", "Hello", "wamid.b"), row("turn:2:0", "Bye", None)]
    lost = send("Bye", "wamid.c")
    per_key, stray = attribute(rows, [send("Hello", "wamid.a"), send("Hello", "wamid.b"), lost])
    assert per_key == {"turn:1:0": 2, "turn:2:0": 1} and stray == 0


def test_refused_sends_do_not_count_and_unknown_ones_are_strays() -> None:
    rows = [row("turn:1:0", "Hello", None)]
    per_key, stray = attribute(rows, [send("Hello", "wamid.a", status=400), send("Other", "wamid.z")])
    assert (per_key, stray) == ({"turn:1:0": 0}, 1)
    ledger = Ledger(1, 1, 1, 1, 1, {"done": 1}, 1, per_key, stray)
    assert not ledger.settled()
    assert ledger.problems() == [
        "1 replies never reached the provider",
        "1 replies sent more than once (e.g. []; 1 unattributed)",
    ]


def test_unprocessed_messages_and_unfinished_turns_are_problems() -> None:
    ledger = Ledger(3, 3, 2, 2, 1, {"done": 1, "running": 1}, 1, {"turn:1:0": 1}, 0, missing_wamids=[])
    assert not ledger.settled()
    assert ledger.problems() == [
        "1 of 3 messages not processed by a done turn",
        "turns not done: {'done': 1, 'running': 1}",
    ]
