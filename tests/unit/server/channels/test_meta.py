"""Meta Cloud API channel: parsing (pywa's example payloads and our own), signatures, and sending against
the Graph API stand-in."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from server.channels.errors import ChannelSendError, PayloadError, SignatureError
from server.channels.limits import (
    BUTTON_TITLE_MAX,
    ELLIPSIS,
    ROW_DESCRIPTION_MAX,
    TEXT_MAX,
    split_text,
    validate_buttons,
    validate_list,
)
from server.channels.meta import MetaCloudChannel
from server.channels.protocol import Channel
from server.channels.records import DeliveryStatus, InboundMessage, MessageKind, StatusUpdate
from tests.support.paths import DATA, ROOT
from tests.support.standins.graph_api import GraphAPIStandIn

FIXTURES = DATA / "whatsapp" / "meta" / "pywa" / "updates"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "106540352242922"


def make_channel(graph_url: str = "http://127.0.0.1:9", **kwargs: Any) -> MetaCloudChannel:
    options: dict[str, Any] = {
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "graph_url": graph_url,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    options.update(kwargs)
    return MetaCloudChannel(**options)


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Parsing: every pywa example
# ---------------------------------------------------------------------------------------------------------


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    # A missing fixture folder must fail the module at collection, not collect zero parametrised cases.
    files = sorted(FIXTURES.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"pywa webhook fixtures missing under {FIXTURES}")
    cases = []
    for path in files:
        for name, payload in json.loads(path.read_text()).items():
            cases.append((path.name, name, payload))
    return cases


EXAMPLES = _examples()


def test_fixtures_carry_their_licence() -> None:
    # Third-party data stays in the repository with the licence it was published under.
    assert "MIT" in (FIXTURES.parent / "LICENSE").read_text()
    assert FIXTURES.is_relative_to(ROOT)


def test_fixture_set_is_complete() -> None:
    # The README promises 19 files and 74 examples; if the set changes, the expectations below need a look.
    assert len({f for f, _, _ in EXAMPLES}) == 19
    assert len(EXAMPLES) == 74


@pytest.mark.parametrize(("file", "name", "payload"), EXAMPLES, ids=[f"{f}:{n}" for f, n, _ in EXAMPLES])
def test_every_pywa_example_parses_or_is_ignored(file: str, name: str, payload: dict[str, Any]) -> None:
    channel = make_channel()
    messages, statuses = channel.parse(body_of(payload), "application/json")

    changes = [c for e in payload["entry"] for c in e["changes"]]
    message_changes = [c for c in changes if c["field"] == "messages"]
    expected_messages = sum(
        1 for c in message_changes for m in c["value"].get("messages", []) if m.get("from") and m.get("id")
    )
    expected_statuses = sum(len(c["value"].get("statuses", [])) for c in message_changes)
    assert len(messages) == expected_messages
    assert len(statuses) == expected_statuses
    if not message_changes:
        assert (messages, statuses) == ([], [])

    for message in messages:
        assert isinstance(message.kind, MessageKind)
        assert message.provider == "meta"
        assert message.timestamp.tzinfo is not None
        assert message.business_phone_number_id == message_changes[0]["value"]["metadata"]["phone_number_id"]
        assert message.raw["id"] == message.provider_message_id
        # JSON-safe and lossless apart from raw.
        restored = InboundMessage.from_dict(json.loads(json.dumps(message.to_dict())))
        assert restored == message
        assert restored.raw == {}
    for status in statuses:
        assert isinstance(status.status, DeliveryStatus)
        assert StatusUpdate.from_dict(json.loads(json.dumps(status.to_dict()))) == status


# (file, example) -> expected fields of the single message parsed from it.
MESSAGE_EXPECTATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("message.json", "text"): {"kind": MessageKind.TEXT, "text": "Body Text"},
    ("message.json", "image"): {
        "kind": MessageKind.IMAGE,
        "media_id": "65463453",
        "mime_type": "image/jpeg",
        "text": None,
    },
    ("message.json", "media_with_url"): {"kind": MessageKind.IMAGE, "media_id": "65463453"},
    ("message.json", "video"): {"kind": MessageKind.VIDEO, "media_id": "765756756", "text": "caption"},
    ("message.json", "document"): {
        "kind": MessageKind.DOCUMENT,
        "filename": "filename.pdf",
        "mime_type": "application/pdf",
        "text": "caption",
    },
    ("message.json", "audio"): {"kind": MessageKind.AUDIO, "mime_type": "audio/ogg; codecs=opus"},
    ("message.json", "voice"): {"kind": MessageKind.VOICE, "media_id": "1234567890987654321"},
    ("message.json", "static_sticker"): {"kind": MessageKind.STICKER},
    ("message.json", "animated_sticker"): {"kind": MessageKind.STICKER},
    ("message.json", "reaction"): {"kind": MessageKind.REACTION, "text": "😮", "context_id": "wamid.yzxyzx="},
    ("message.json", "unreaction_empty"): {"kind": MessageKind.REACTION, "text": None},
    ("message.json", "unreaction_no_emoji"): {"kind": MessageKind.REACTION, "text": None},
    ("message.json", "current_location"): {
        "kind": MessageKind.LOCATION,
        "latitude": 12.25089,
        "longitude": 43.90539,
        "text": None,
    },
    ("message.json", "chosen_location"): {
        "kind": MessageKind.LOCATION,
        "latitude": 37.4611978,
        "longitude": -122.2164385,
        "text": "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025",
    },
    ("message.json", "contacts"): {
        "kind": MessageKind.CONTACTS,
        "text": "Chandler Bing (+1 555-555-5555); Monica (+1 666-666-6666); Rachel Green (+1 777-777-7777)",
    },
    ("message.json", "order"): {"kind": MessageKind.ORDER},
    ("message.json", "unsupported"): {"kind": MessageKind.UNSUPPORTED},
    ("message.json", "unsupported_with_type"): {"kind": MessageKind.UNSUPPORTED},
    ("message.json", "reply"): {
        "kind": MessageKind.TEXT,
        "text": "replied text",
        "context_id": "wamid.xyzxyz==",
    },
    ("message.json", "forwarded"): {"kind": MessageKind.TEXT, "context_id": None},
    ("message.json", "forwarded_many_times"): {"kind": MessageKind.TEXT},
    ("message.json", "interactive_message_with_err"): {"kind": MessageKind.UNSUPPORTED},
    ("message.json", "referral"): {"kind": MessageKind.TEXT, "text": "BODY"},
    ("callback_button.json", "button"): {
        "kind": MessageKind.BUTTON,
        "reply_id": "callback_data",
        "text": "title",
        "context_id": "wamid.xyzxyz",
    },
    ("callback_button.json", "quick_reply"): {
        "kind": MessageKind.BUTTON,
        "reply_id": "callback_data",
        "text": "title",
    },
    ("callback_button.json", "quick_reply_without_context"): {
        "kind": MessageKind.BUTTON,
        "reply_id": "callback_data",
        "context_id": None,
        "sender_user_id": "US.13491208655302741918",
    },
    ("callback_selection.json", "callback"): {
        "kind": MessageKind.LIST,
        "reply_id": "callback_data",
        "text": "title",
    },
    ("callback_selection.json", "description"): {"kind": MessageKind.LIST, "reply_id": "callback_data"},
    # Delivered but not modelled: kept as OTHER with the raw payload.
    ("system.json", "phone_number_change"): {"kind": MessageKind.OTHER, "sender_name": None},
    ("edited_message.json", "image"): {"kind": MessageKind.OTHER},
    ("deleted_message.json", "revoke"): {"kind": MessageKind.OTHER},
    ("flow_completion.json", "completion"): {"kind": MessageKind.OTHER},
}


def _load(file: str, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / file).read_text())[name]
    return payload


@pytest.mark.parametrize(("file", "name"), list(MESSAGE_EXPECTATIONS), ids=lambda v: str(v))
def test_message_kinds_and_fields(file: str, name: str) -> None:
    messages, statuses = make_channel().parse(body_of(_load(file, name)), "application/json")
    assert statuses == []
    assert len(messages) == 1
    message = messages[0]
    for attribute, expected in MESSAGE_EXPECTATIONS[(file, name)].items():
        assert getattr(message, attribute) == expected, attribute


def test_message_json_covers_every_example() -> None:
    names = set(json.loads((FIXTURES / "message.json").read_text()))
    assert names == {n for f, n in MESSAGE_EXPECTATIONS if f == "message.json"}


def test_text_message_identity_fields() -> None:
    (message,), _ = make_channel().parse(body_of(_load("message.json", "text")), "application/json")
    assert message.provider_message_id == "wamid.xyzxyz"
    assert message.sender == message.chat_id == "972987654321"
    assert message.sender_name == "Test Name"
    assert message.sender_user_id == "US.13491208655302741918"
    assert message.business_phone_number_id == "1122334455667"
    assert message.timestamp == datetime.fromtimestamp(1697043223, tz=UTC)
    assert "raw" not in repr(message)


STATUS_EXPECTATIONS = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.PLAYED,
    "failed": DeliveryStatus.FAILED,
    "with_tracker": DeliveryStatus.SENT,
    "group": DeliveryStatus.READ,
}


@pytest.mark.parametrize(("name", "expected"), list(STATUS_EXPECTATIONS.items()))
def test_message_status_examples(name: str, expected: DeliveryStatus) -> None:
    messages, statuses = make_channel().parse(body_of(_load("message_status.json", name)), "application/json")
    assert messages == []
    (status,) = statuses
    assert status.status is expected
    if name == "failed":
        (error,) = status.errors
        assert error.code == 130472
        assert error.title == "User's number is part of an experiment"
        assert error.details == "Failed to send message because this user's phone number is part of an experiment"
    else:
        assert status.errors == ()
        assert status.recipient in ("972987654321", "fowefinoewcnw")


def test_message_status_covers_every_example() -> None:
    assert set(json.loads((FIXTURES / "message_status.json").read_text())) == set(STATUS_EXPECTATIONS)


# ---------------------------------------------------------------------------------------------------------
# Parsing: our own payloads
# ---------------------------------------------------------------------------------------------------------


def envelope(*values: dict[str, Any], field: str = "messages", entry_id: str = "WABA1") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": entry_id, "changes": [{"field": field, "value": v} for v in values]}],
    }


def value(
    *,
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        v["contacts"] = contacts
    if messages is not None:
        v["messages"] = messages
    if statuses is not None:
        v["statuses"] = statuses
    return v


def text_message(wamid: str, sender: str, body: str, ts: int = 1_700_000_000) -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": body}}


def test_multi_entry_multi_change_multi_message_envelope() -> None:
    first = envelope(
        value(
            contacts=[
                {"profile": {"name": "Amina"}, "wa_id": "254700000001"},
                {"profile": {"name": "Brian"}, "wa_id": "254700000002"},
            ],
            messages=[
                text_message("wamid.A1", "254700000001", "50 bags of cement"),
                text_message("wamid.B1", "254700000002", "for Nakuru"),
            ],
        ),
        value(
            phone_number_id="222",
            statuses=[{"id": "wamid.OUT1", "status": "delivered", "timestamp": "1700000001", "recipient_id": "1"}],
        ),
        field="messages",
    )
    second = envelope(
        value(
            contacts=[{"profile": {"name": "Amina"}, "wa_id": "254700000001"}],
            messages=[text_message("wamid.A2", "254700000001", "urgent")],
        ),
        entry_id="WABA2",
    )
    second["entry"][0]["changes"].append({"field": "account_update", "value": {"event": "ACCOUNT_DELETED"}})
    payload = {"object": "whatsapp_business_account", "entry": first["entry"] + second["entry"]}

    messages, statuses = make_channel().parse(body_of(payload), "application/json")

    assert [m.provider_message_id for m in messages] == ["wamid.A1", "wamid.B1", "wamid.A2"]
    assert [m.sender_name for m in messages] == ["Amina", "Brian", "Amina"]
    assert [m.text for m in messages] == ["50 bags of cement", "for Nakuru", "urgent"]
    assert [s.provider_message_id for s in statuses] == ["wamid.OUT1"]
    assert statuses[0].business_phone_number_id == "222"
    assert messages[0].business_phone_number_id == PHONE_NUMBER_ID


def test_older_shape_without_user_id() -> None:
    payload = envelope(
        value(
            contacts=[{"profile": {"name": "Old Shape"}, "wa_id": "254711111111"}],
            messages=[text_message("wamid.OLD", "254711111111", "hello")],
        )
    )
    (message,), statuses = make_channel().parse(body_of(payload), "application/json")
    assert statuses == []
    assert message.sender_user_id is None
    assert message.sender_name == "Old Shape"
    assert message.kind is MessageKind.TEXT


def test_message_without_contacts_array() -> None:
    payload = envelope(value(messages=[text_message("wamid.NC", "254711111111", "hi")]))
    (message,), _ = make_channel().parse(body_of(payload), "application/json")
    assert message.sender_name is None
    assert message.sender_user_id is None


def test_status_without_contacts() -> None:
    payload = envelope(
        value(statuses=[{"id": "wamid.S", "status": "read", "timestamp": "1700000000", "recipient_id": "2547"}])
    )
    messages, (status,) = make_channel().parse(body_of(payload), "application/json")
    assert messages == []
    assert status.status is DeliveryStatus.READ
    assert status.recipient == "2547"
    assert status.timestamp == datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_failed_status_with_errors() -> None:
    payload = envelope(
        value(
            statuses=[
                {
                    "id": "wamid.F",
                    "status": "failed",
                    "timestamp": "1700000000",
                    "recipient_id": "2547",
                    "errors": [
                        {
                            "code": 131047,
                            "title": "Re-engagement message",
                            "message": "Re-engagement message",
                            "error_data": {"details": "More than 24 hours have passed"},
                        }
                    ],
                }
            ]
        )
    )
    _, (status,) = make_channel().parse(body_of(payload), "application/json")
    assert status.status is DeliveryStatus.FAILED
    assert [e.to_dict() for e in status.errors] == [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "details": "More than 24 hours have passed",
        }
    ]
    assert status.to_dict()["errors"][0]["code"] == 131047


def test_unknown_status_value_is_other() -> None:
    payload = envelope(value(statuses=[{"id": "wamid.X", "status": "deleted", "timestamp": "1700000000"}]))
    _, (status,) = make_channel().parse(body_of(payload), "application/json")
    assert status.status is DeliveryStatus.OTHER


def test_unknown_message_type_is_other() -> None:
    message = {"from": "2547", "id": "wamid.U", "timestamp": "1700000000", "type": "hologram", "hologram": {}}
    (parsed,), _ = make_channel().parse(body_of(envelope(value(messages=[message]))), "application/json")
    assert parsed.kind is MessageKind.OTHER
    assert parsed.raw == message


def test_message_without_from_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    nameless = {"id": "wamid.NOFROM", "timestamp": "1700000000", "type": "text", "text": {"body": "x"}}
    payload = envelope(value(messages=[nameless, text_message("wamid.OK", "2547", "y")]))
    with caplog.at_level(logging.WARNING, logger="server.channels.meta"):
        messages, _ = make_channel().parse(body_of(payload), "application/json")
    assert [m.provider_message_id for m in messages] == ["wamid.OK"]
    assert "wamid.NOFROM" in caplog.text


def test_bad_timestamp_falls_back_to_now() -> None:
    message = text_message("wamid.T", "2547", "x")
    message["timestamp"] = "not-a-number"
    (parsed,), _ = make_channel().parse(body_of(envelope(value(messages=[message]))), "application/json")
    assert abs((datetime.now(UTC) - parsed.timestamp).total_seconds()) < 60


def test_group_message_chat_id_is_group() -> None:
    message = text_message("wamid.G", "2547", "x") | {"group_id": "GROUP123"}
    (parsed,), _ = make_channel().parse(body_of(envelope(value(messages=[message]))), "application/json")
    assert parsed.chat_id == "GROUP123"
    assert parsed.sender == "2547"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00",
        b"",
        b"[1, 2]",
        json.dumps({"object": "page", "entry": []}).encode(),
        json.dumps({"entry": []}).encode(),
        json.dumps({"object": "whatsapp_business_account", "entry": {"id": 1}}).encode(),
        json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": "x"}]}).encode(),
        json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"changes": [{"field": "messages", "value": 3}]}],
            }
        ).encode(),
    ],
    ids=[
        "non-json",
        "not-utf8",
        "empty",
        "array",
        "wrong-object",
        "no-object",
        "entry-not-list",
        "changes-not-list",
        "value-not-object",
    ],
)
def test_malformed_bodies_raise_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        make_channel().parse(body, "application/json")


def test_empty_entry_list_is_fine() -> None:
    assert make_channel().parse(b'{"object":"whatsapp_business_account","entry":[]}', "application/json") == (
        [],
        [],
    )


# ---------------------------------------------------------------------------------------------------------
# Signatures and subscription
# ---------------------------------------------------------------------------------------------------------

SIGNED_BODY = body_of(_load("message.json", "text"))


def test_valid_signature_passes() -> None:
    make_channel().verify_request({"X-Hub-Signature-256": sign(SIGNED_BODY)}, SIGNED_BODY, "")


def test_signature_header_is_case_insensitive() -> None:
    make_channel().verify_request({"x-hub-signature-256": sign(SIGNED_BODY)}, SIGNED_BODY, "")


def test_signature_over_raw_bytes_not_reserialised_json() -> None:
    # Same JSON, different bytes: the signature covers the bytes as sent.
    spaced = json.dumps(json.loads(SIGNED_BODY), indent=2).encode()
    with pytest.raises(SignatureError):
        make_channel().verify_request({"X-Hub-Signature-256": sign(SIGNED_BODY)}, spaced, "")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Hub-Signature-256": sign(SIGNED_BODY + b" ")},  # tampered body
        {"X-Hub-Signature-256": sign(SIGNED_BODY, "wrong-secret")},  # wrong secret
        {},  # missing header
        {"X-Hub-Signature": "sha1=" + hashlib.sha1(SIGNED_BODY).hexdigest()},  # old SHA-1 header only
        {"X-Hub-Signature-256": sign(SIGNED_BODY).replace("sha256=", "sha1=")},  # bad prefix
        {"X-Hub-Signature-256": sign(SIGNED_BODY).removeprefix("sha256=")},  # no prefix
        {"X-Hub-Signature-256": "sha256=zz" + sign(SIGNED_BODY)[9:]},  # not hex
        {"X-Hub-Signature-256": sign(SIGNED_BODY)[:-2]},  # truncated
        {"X-Hub-Signature-256": ""},
    ],
    ids=[
        "tampered",
        "wrong-secret",
        "missing",
        "sha1-only",
        "bad-prefix",
        "no-prefix",
        "non-hex",
        "short",
        "empty",
    ],
)
def test_bad_signatures_raise(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        make_channel().verify_request(headers, SIGNED_BODY, "")


def test_verify_subscription() -> None:
    channel = make_channel()
    assert channel.verify_subscription("subscribe", VERIFY_TOKEN, "1158201444") == "1158201444"
    assert channel.verify_subscription("subscribe", "wrong", "1158201444") is None
    assert channel.verify_subscription("unsubscribe", VERIFY_TOKEN, "1") is None
    assert channel.verify_subscription(None, None, None) is None
    assert channel.verify_subscription("subscribe", VERIFY_TOKEN, None) is None


def test_secrets_stay_out_of_repr() -> None:
    text = repr(make_channel())
    assert APP_SECRET not in text
    assert ACCESS_TOKEN not in text


def test_channel_satisfies_protocol() -> None:
    assert isinstance(make_channel(), Channel)


# ---------------------------------------------------------------------------------------------------------
# Pure helpers: split_text and validators
# ---------------------------------------------------------------------------------------------------------


def test_split_text_short_and_empty() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("  \n\n ") == []
    assert split_text("") == []


def test_split_text_packs_paragraphs() -> None:
    paragraphs = ["a" * 40, "b" * 40, "c" * 40]
    parts = split_text("\n\n".join(paragraphs), limit=90)
    assert parts == ["a" * 40 + "\n\n" + "b" * 40, "c" * 40]


def test_split_text_falls_back_to_lines_sentences_words_and_hard_cut() -> None:
    lines = "\n".join(["line one is here", "line two is here"])
    assert split_text(lines, limit=20) == ["line one is here", "line two is here"]
    sentences = "First sentence here. Second one here! Third?"
    assert split_text(sentences, limit=25) == ["First sentence here.", "Second one here! Third?"]
    words = "alpha beta gamma delta"
    assert split_text(words, limit=11) == ["alpha beta", "gamma delta"]
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


@pytest.mark.parametrize("limit", [7, 50, 333, 4096])
def test_split_text_never_exceeds_limit_and_keeps_words(limit: int) -> None:
    text = "\n\n".join(
        "\n".join(f"Line {p}.{i}: we need {i * 3} bags of cement. Deliver to site {p}!" for i in range(30))
        for p in range(8)
    )
    parts = split_text(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    if limit >= 50:  # no word is longer than the limit, so no word is cut
        assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_split_text_rejects_bad_limit() -> None:
    with pytest.raises(ValueError):
        split_text("x", 0)


def test_validate_buttons_clips_titles_and_checks_structure() -> None:
    checked = validate_buttons(
        "Approve this request?",
        [("approve:42", "Approve"), ("reject:42", "Reject with a very long reason")],
        header="H" * 70,
    )
    assert checked.buttons[1][1] == "Reject with a very" + ELLIPSIS  # cut at 19, trailing space dropped
    assert len(checked.buttons[1][1]) <= BUTTON_TITLE_MAX
    assert checked.header is not None and len(checked.header) == 60
    with pytest.raises(ValueError):
        validate_buttons("body", [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d")])
    with pytest.raises(ValueError):
        validate_buttons("body", [])
    with pytest.raises(ValueError):
        validate_buttons("body", [("x" * 257, "a")])
    with pytest.raises(ValueError):
        validate_buttons("body", [("same", "a"), ("same", "b")])
    with pytest.raises(ValueError):
        validate_buttons("b" * 1025, [("1", "a")])


def test_validate_list_limits() -> None:
    rows: list[tuple[str, str, str | None]] = [
        (f"sku:{i}", f"Cement 50kg bag grade {i} extra", "d" * 100) for i in range(10)
    ]
    checked = validate_list("Pick one", "Choose a product please", rows, "Products")
    assert all(len(title) <= 24 and title.endswith(ELLIPSIS) for _, title, _ in checked.rows)
    assert all(d is not None and len(d) == ROW_DESCRIPTION_MAX for _, _, d in checked.rows)
    assert len(checked.button_text) == 20
    with pytest.raises(ValueError):
        validate_list("Pick", "Open", rows + [("sku:x", "x", None)], "Products")


# ---------------------------------------------------------------------------------------------------------
# Sending, against the Graph API stand-in
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphAPIStandIn]:
    with GraphAPIStandIn(access_token=ACCESS_TOKEN) as standin:
        yield standin


@pytest.fixture
async def channel(graph: GraphAPIStandIn) -> AsyncIterator[MetaCloudChannel]:
    graph.reset()
    graph.access_token = ACCESS_TOKEN
    meta = make_channel(graph.url)
    yield meta
    await meta.aclose()


async def test_long_text_is_split_at_a_paragraph_boundary(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    paragraphs = [(f"Paragraph {i}. " + "word " * 200).strip() for i in range(5)]  # ~1,010 chars each
    text = "\n\n".join(paragraphs)
    assert 5000 <= len(text) <= 5100

    wamids = await channel.send_text("254700000001", text)

    sent = graph.sent_messages()
    assert len(wamids) == len(sent) == 2
    assert len(set(wamids)) == 2 and all(w.startswith("wamid.") for w in wamids)
    bodies = [m["text"]["body"] for m in sent]
    assert all(len(b) <= TEXT_MAX for b in bodies)
    assert bodies == ["\n\n".join(paragraphs[:4]), paragraphs[4]]
    for message in sent:
        assert message["messaging_product"] == "whatsapp"
        assert message["to"] == "254700000001"
        assert message["type"] == "text"
        assert message["text"]["preview_url"] is False
    request = graph.requests[0]
    assert request.path == f"/{graph.url.rsplit('/', 1)[1]}/{PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_empty_text_is_refused(channel: MetaCloudChannel) -> None:
    with pytest.raises(ValueError):
        await channel.send_text("2547", "   ")


async def test_buttons_payload_and_title_truncation(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    wamid = await channel.send_buttons(
        "254700000001",
        "Approve PR-42: 50 bags of cement for Nakuru, USD 450?",
        [("approve:42", "Approve"), ("reject:42", "Reject this request now"), ("edit:42", "Edit")],
        header="Purchase request PR-42",
        footer="Reply within 24 h",
    )
    (message,) = graph.sent_messages()
    assert wamid == graph.requests[-1].response["messages"][0]["id"]
    assert message == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "254700000001",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Purchase request PR-42"},
            "body": {"text": "Approve PR-42: 50 bags of cement for Nakuru, USD 450?"},
            "footer": {"text": "Reply within 24 h"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "approve:42", "title": "Approve"}},
                    {
                        "type": "reply",
                        "reply": {"id": "reject:42", "title": "Reject this request" + ELLIPSIS},
                    },
                    {"type": "reply", "reply": {"id": "edit:42", "title": "Edit"}},
                ]
            },
        },
    }


async def test_too_many_buttons_never_reach_the_api(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    with pytest.raises(ValueError):
        await channel.send_buttons("2547", "body", [(str(i), str(i)) for i in range(4)])
    assert graph.requests == []


async def test_list_payload(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    await channel.send_list(
        "254700000001",
        "Which cement?",
        "Choose",
        [("sku:1", "Cement 42.5R 50kg", "Bamburi"), ("sku:2", "Cement 32.5N 50kg", None)],
        "Matches",
    )
    (message,) = graph.sent_messages()
    assert message["interactive"] == {
        "type": "list",
        "body": {"text": "Which cement?"},
        "action": {
            "button": "Choose",
            "sections": [
                {
                    "title": "Matches",
                    "rows": [
                        {"id": "sku:1", "title": "Cement 42.5R 50kg", "description": "Bamburi"},
                        {"id": "sku:2", "title": "Cement 32.5N 50kg"},
                    ],
                }
            ],
        },
    }


async def test_rate_limit_429_is_retried(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.fail_next(1, status=429, code=130429)
    (wamid,) = await channel.send_text("2547", "hello")
    assert [r.status for r in graph.requests] == [429, 200]
    assert wamid == graph.requests[-1].response["messages"][0]["id"]
    assert len(graph.sent_messages()) == 1


async def test_rate_limit_code_in_a_400_is_retried(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.fail_next(1, status=400, code=131056)  # pair rate limit arrives as HTTP 400
    await channel.send_text("2547", "hello")
    assert [r.status for r in graph.requests] == [400, 200]


async def test_server_errors_are_retried_then_raised(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.fail_next(5, status=500, code=1)
    with pytest.raises(ChannelSendError) as caught:
        await channel.send_text("2547", "hello")
    assert caught.value.retryable is True
    assert caught.value.http_status == 500
    assert len(graph.requests) == 5  # max_attempts


async def test_other_4xx_fails_at_once(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.fail_next(1, status=400, code=131047, message="Re-engagement message")
    with pytest.raises(ChannelSendError) as caught:
        await channel.send_text("2547", "hello")
    assert caught.value.retryable is False
    assert caught.value.code == 131047
    assert caught.value.http_status == 400
    assert len(graph.requests) == 1


async def test_wrong_token_fails_at_once_and_is_not_logged(
    channel: MetaCloudChannel, graph: GraphAPIStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    graph.access_token = "another-token"
    with caplog.at_level(logging.DEBUG), pytest.raises(ChannelSendError) as caught:
        await channel.send_text("2547", "hello")
    assert caught.value.code == 190
    assert caught.value.http_status == 401
    assert len(graph.requests) == 1
    assert ACCESS_TOKEN not in caplog.text
    assert ACCESS_TOKEN not in str(caught.value)


async def test_partial_multi_part_send_reports_sent_ids(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.fail_next(1, status=400, code=131047, after=1)  # the first part goes out, the second fails
    with pytest.raises(ChannelSendError) as caught:
        await channel.send_text("2547", "a" * 3000 + "\n\n" + "b" * 3000)
    assert caught.value.retryable is False
    assert caught.value.sent_message_ids == (graph.requests[0].response["messages"][0]["id"],)
    assert len(graph.sent_messages()) == 1


async def test_mark_read_with_typing_indicator(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    await channel.mark_read("wamid.IN1")
    await channel.mark_read("wamid.IN2", typing=False)
    assert graph.read_receipts() == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.IN1",
            "typing_indicator": {"type": "text"},
        },
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN2"},
    ]
    assert graph.sent_messages() == []
    assert graph.requests[0].response == {"success": True}


async def test_mark_read_is_retried_on_server_error(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.fail_next(2, status=503)
    await channel.mark_read("wamid.IN1")
    assert [r.status for r in graph.requests] == [503, 503, 200]


async def test_media_download(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.add_media("MEDIA1", b"OggS\x00voice-note-bytes", "audio/ogg; codecs=opus")
    content, mime = await channel.download_media("MEDIA1")
    assert content == b"OggS\x00voice-note-bytes"
    assert mime == "audio/ogg; codecs=opus"
    lookup, download = graph.requests
    assert lookup.method == "GET" and lookup.path.endswith("/MEDIA1")
    assert lookup.query == {"phone_number_id": PHONE_NUMBER_ID}
    assert download.path == "/media-download/MEDIA1"
    assert download.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_media_download_retries_and_limits(channel: MetaCloudChannel, graph: GraphAPIStandIn) -> None:
    graph.add_media("MEDIA2", b"x" * 1000, "image/jpeg")
    graph.fail_next(1, status=500)
    content, _ = await channel.download_media("MEDIA2")
    assert len(content) == 1000
    with pytest.raises(ChannelSendError) as caught:
        await channel.download_media("UNKNOWN")
    assert caught.value.code == 100 and caught.value.retryable is False
    small = make_channel(graph.url, max_media_bytes=10)
    try:
        with pytest.raises(ChannelSendError):
            await small.download_media("MEDIA2")
    finally:
        await small.aclose()


async def test_connection_refused_is_retried_then_raised() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    meta = make_channel(f"http://127.0.0.1:{port}/v23.0", max_attempts=3)
    try:
        with pytest.raises(ChannelSendError) as caught:
            await meta.send_text("2547", "hello")
    finally:
        await meta.aclose()
    assert caught.value.retryable is True
    assert caught.value.delivery_unknown is False
    assert caught.value.http_status is None


async def test_send_timeout_is_not_repeated(graph: GraphAPIStandIn) -> None:
    # The stand-in answers too late but still "sends": repeating the request could message the person twice.
    graph.reset()
    graph.slow_next(1, seconds=0.5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.1)) as client:
        meta = make_channel(graph.url, http_client=client)
        with pytest.raises(ChannelSendError) as caught:
            await meta.send_text("2547", "hello")
        await meta.aclose()  # a shared client stays open
        assert not client.is_closed
    assert caught.value.delivery_unknown is True
    assert caught.value.retryable is True
    await _wait_for(lambda: len(graph.requests) == 1)
    assert len(graph.requests) == 1


async def test_idempotent_call_timeout_is_retried(graph: GraphAPIStandIn) -> None:
    graph.reset()
    graph.slow_next(1, seconds=0.5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.1)) as client:
        meta = make_channel(graph.url, http_client=client)
        await meta.mark_read("wamid.IN1")
    await _wait_for(lambda: len(graph.read_receipts()) == 2)
    assert [r.json["message_id"] for r in graph.requests] == ["wamid.IN1", "wamid.IN1"]


async def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
