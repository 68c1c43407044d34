"""Messages are normalised or refused before batching (server.ingest.validate): ids, NULs, sizes, time, places."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from server.channels.meta.parse import parse_webhook
from server.channels.records import InboundMessage, MessageKind, StatusError, StatusUpdate
from server.ingest.validate import (
    EARLIEST,
    MAX_RAW_DEPTH,
    MessageRefused,
    bound_raw,
    cut_text,
    normalise_message,
    normalise_statuses,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def message(**fields) -> InboundMessage:
    base = {
        "provider": "meta",
        "provider_message_id": "wamid.V1",
        "chat_id": "254700000001",
        "sender": "254700000001",
        "kind": MessageKind.TEXT,
        "timestamp": NOW - timedelta(seconds=5),
        "text": "need 2 staplers",
        "raw": {"id": "wamid.V1"},
    }
    base.update(fields)
    return InboundMessage(**base)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def test_a_valid_message_is_returned_unchanged() -> None:
    m = message()
    assert normalise_message(m, 4096, NOW) is m


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("provider_message_id", "wamid.\x00x", "provider_message_id contains a NUL"),
        ("provider_message_id", "w" * 201, "provider_message_id is 201 characters"),
        ("sender", "2" * 101, "sender is 101 characters"),
        ("chat_id", "2547\x00", "chat_id contains a NUL"),
        ("reply_id", "r" * 257, "reply_id is 257 characters"),
        ("context_id", "ctx\x00", "context_id contains a NUL"),
        ("media_id", "m" * 201, "media_id is 201"),
    ],
)
def test_an_id_with_a_nul_or_longer_than_its_column_is_refused(field, value, reason) -> None:
    with pytest.raises(MessageRefused, match=reason):
        normalise_message(message(**{field: value}), 4096, NOW)


def test_ids_at_their_limits_pass() -> None:
    m = message(provider_message_id="w" * 200, sender="2" * 100, chat_id="2" * 100, reply_id="r" * 256)
    assert normalise_message(m, 4096, NOW) is m


def test_nul_characters_are_removed_from_texts_names_and_the_raw_object() -> None:
    m = message(
        text="need\x00 2 staplers",
        sender_name="Ami\x00na",
        filename="\x00",
        raw={"te\x00xt": {"body": "need\x00 2"}, "list": ["\x00a", 1, None, 2.5]},
    )
    out = normalise_message(m, 4096, NOW)
    assert out.text == "need 2 staplers" and out.sender_name == "Amina" and out.filename is None
    assert out.raw == {"text": {"body": "need 2"}, "list": ["a", 1, None, 2.5]}
    assert "\\u0000" not in orjson.dumps(out.raw).decode()


def test_a_long_text_is_cut_with_the_note_from_the_prompts() -> None:
    out = normalise_message(message(text="x" * 900_000), 4096, NOW)
    assert out.text is not None and out.text.startswith("x" * 4096) and not out.text.startswith("x" * 4097)
    note = out.text[4096:]
    assert "4096" in note and "900000" in note and 10 < len(note) < 120
    assert cut_text("short", 4096) == "short"


def test_names_are_clipped() -> None:
    out = normalise_message(message(sender_name="A" * 5000, mime_type="t" * 999), 4096, NOW)
    assert out.sender_name == "A" * 256 and out.mime_type == "t" * 256


@pytest.mark.parametrize(
    "when",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        NOW + timedelta(days=2),
    ],
)
def test_a_timestamp_out_of_range_becomes_the_receive_time(when) -> None:
    assert normalise_message(message(timestamp=when), 4096, NOW).timestamp == NOW


def test_a_timestamp_in_range_is_kept() -> None:
    for when in (EARLIEST, NOW - timedelta(days=7), NOW + timedelta(hours=1)):
        assert normalise_message(message(timestamp=when), 4096, NOW).timestamp == when


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(1.0, 1e300), (math.nan, 1.0), (1.0, math.inf), (-math.inf, 0.0), (90.5, 10.0), (-1.0, -180.01), (None, 2.0)],
)
def test_impossible_coordinates_are_dropped_and_the_label_kept(lat, lon) -> None:
    m = message(kind=MessageKind.LOCATION, text="Nairobi office", latitude=lat, longitude=lon)
    out = normalise_message(m, 4096, NOW)
    assert out.latitude is None and out.longitude is None and out.text == "Nairobi office"


def test_valid_coordinates_are_kept() -> None:
    m = message(kind=MessageKind.LOCATION, latitude=-90.0, longitude=180.0)
    assert normalise_message(m, 4096, NOW) is m


def test_deep_raw_nesting_is_bounded_so_the_batch_can_be_serialised() -> None:
    deep: dict = {}
    node = deep
    for _ in range(1000):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(TypeError):
        orjson.dumps(deep)  # what broke the batched INSERT for every neighbour
    out = normalise_message(message(raw={"id": "wamid.V1", "x": deep}), 4096, NOW)
    assert depth(out.raw) == MAX_RAW_DEPTH
    orjson.dumps(out.raw)
    assert bound_raw([[1]], max_depth=1) == (["[nested deeper than the stored limit]"], True)
    assert bound_raw({"a": [1, {"b": "c"}]}) == ({"a": [1, {"b": "c"}]}, False)


def test_statuses_with_impossible_ids_are_dropped_and_their_texts_cleaned() -> None:
    ok = StatusUpdate(
        provider="meta",
        provider_message_id="wamid.OUT1",
        status="failed",  # type: ignore[arg-type]
        recipient="2547\x00",
        timestamp=NOW,
        errors=(StatusError(code=131047, title="Re-engage\x00", message=None, details="x\x00y"),),
    )
    bad = StatusUpdate(
        provider="meta",
        provider_message_id="wamid.\x00",
        status="sent",
        recipient=None,  # type: ignore[arg-type]
        timestamp=NOW,
    )
    long = StatusUpdate(
        provider="meta",
        provider_message_id="w" * 201,
        status="sent",
        recipient=None,  # type: ignore[arg-type]
        timestamp=NOW,
    )
    (out,) = normalise_statuses([bad, ok, long])
    assert out.provider_message_id == "wamid.OUT1" and out.recipient == "2547"
    assert out.errors[0].title == "Re-engage" and out.errors[0].details == "xy" and out.errors[0].code == 131047


@pytest.mark.parametrize("errors", ["boom", 7, {"code": 1}, None, [1, "x", {"code": 470}]])
def test_status_errors_that_are_not_a_list_of_objects_are_ignored(errors) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "statuses": [
                                {
                                    "id": "wamid.S",
                                    "status": "failed",
                                    "timestamp": "1700000000",
                                    "recipient_id": "1",
                                    "errors": errors,
                                }
                            ]
                        },
                    }
                ],
            }
        ],
    }
    _, (status,) = parse_webhook(orjson.dumps(body))
    assert [e.code for e in status.errors] == ([470] if isinstance(errors, list) else [])


@pytest.mark.parametrize("phones", [5, "123", {"phone": "1"}])
def test_shared_contact_phones_that_are_not_a_list_are_ignored(phones) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [
                                {
                                    "from": "1",
                                    "id": "wamid.C",
                                    "timestamp": "1700000000",
                                    "type": "contacts",
                                    "contacts": [{"name": {"formatted_name": "Bo"}, "phones": phones}],
                                }
                            ]
                        },
                    }
                ],
            }
        ],
    }
    (m,), _ = parse_webhook(orjson.dumps(body))
    assert m.text == "Bo"
