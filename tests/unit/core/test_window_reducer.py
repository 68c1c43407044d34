"""The conversation window the State keeps: capped, earlier texts cut to what the LLM intake can show."""

from __future__ import annotations

from core.domain.state import WINDOW_CAP, WINDOW_TEXT_CHARS, WindowEntry, window_reducer
from nodes.llm_intake import WINDOW_CHARS


def user(text: str) -> WindowEntry:
    return {"role": "user", "text": text}


def test_new_user_messages_stay_whole_until_the_window_moves_on() -> None:
    long = "need " + "x" * 600
    after_ingest = window_reducer([user("hi")], [user(long)])
    assert after_ingest[-1]["text"] == long  # the intake reads the turn's own messages whole
    after_reply = window_reducer(after_ingest, [{"role": "assistant", "text": "y" * 500}])
    assert [e["role"] for e in after_reply] == ["user", "user", "assistant"]
    assert after_reply[1]["text"] == long[:WINDOW_TEXT_CHARS]
    assert after_reply[2]["text"] == "y" * WINDOW_TEXT_CHARS  # replies are never shown: kept short at once
    assert after_reply[0] == user("hi")


def test_the_window_keeps_the_last_entries_only() -> None:
    window: list[WindowEntry] = []
    for i in range(WINDOW_CAP + 7):
        window = window_reducer(window, [user(f"message {i}")])
    assert len(window) == WINDOW_CAP
    assert window[0]["text"] == "message 7" and window[-1]["text"] == f"message {WINDOW_CAP + 6}"


def test_the_stored_text_covers_what_the_intake_shows_of_an_earlier_message() -> None:
    assert WINDOW_TEXT_CHARS >= WINDOW_CHARS
