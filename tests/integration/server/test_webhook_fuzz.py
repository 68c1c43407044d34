"""Fuzz: signed, mutated Meta payloads against ``POST /webhooks/meta`` never get a 5xx while the database is up.

Payloads start from real shapes (pywa's example webhooks under ``tests/data/whatsapp/meta/pywa``, MIT, and the
sandbox's builders) and are mutated by hypothesis: values replaced by odd ones (NUL characters, long strings,
huge or non-finite numbers, wrong JSON types), keys dropped, structures nested hundreds of levels deep, ids
reused, bytes flipped. Every body is signed with the app secret (a few are not, or wrongly), so it reaches the
parser and the database. Then a normal message from a registered person must still be stored and answered by the
worker, which must still be alive.

Examples: ``FUZZ_EXAMPLES`` (default 1,000, what CI runs; ``FUZZ_EXAMPLES=10000`` on demand). The counts by
status code are printed (``-s`` shows them).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from core.db import inbox
from tests.support.paths import DATA
from tests.support.payloads import button_reply, contact, envelope, list_reply, sign, status, text_message
from tests.support.stack import SECRET, await_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
#: The chats fuzzed messages come from: few, so their bursts merge into few turns for the worker.
SENDERS = ["254700000001", "254700000006", "254711111111", "254722222222"]
#: Status codes the webhook may answer with the database up.
ALLOWED = {200, 400, 401, 403, 413}
_ids = itertools.count(1)


def _bases() -> list[dict[str, Any]]:
    """Every example body of pywa's fixtures plus the sandbox's builders: the shapes Meta sends."""
    out: list[dict[str, Any]] = []
    for path in sorted(Path(DATA / "whatsapp" / "meta" / "pywa" / "updates").glob("*.json")):
        out += list(json.loads(path.read_text(encoding="utf-8")).values())
    now = time.time()
    location = {
        "from": SENDERS[0],
        "id": "wamid.LOC",
        "timestamp": str(int(now)),
        "type": "location",
        "location": {"latitude": -1.28, "longitude": 36.82, "name": "Nairobi office", "address": "Moi Ave"},
    }
    out += [
        envelope([text_message(SENDERS[0], "need 20 boxes a4 paper")], contacts=[contact(SENDERS[0], "Amina")]),
        envelope([text_message(SENDERS[1], "and 5 toner HP"), text_message(SENDERS[1], "for nairobi by friday")]),
        envelope([button_reply(SENDERS[0], "confirm", "Confirm")]),
        envelope([list_reply(SENDERS[1], "pick:1", "TON-CF226A")]),
        envelope([location]),
        envelope(statuses=[status("wamid.OUT1", SENDERS[0], "failed", code=131047), status("wamid.OUT2", "1", "read")]),
    ]
    return out


BASES = _bases()

odd_strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "wamid.\x00",
            "a\x00b",
            "9" * 300,
            "1e300",
            "nan",
            "-inf",
            "-62135596800",
            "99999999999999",
            "\ud7ff\ue000\U0010ffff",
            "x" * 10_000,
            "𝟙𝟚𝟛",
            "¹²³",
        ]
    ),
)
odd_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e300, -1e300, 5e-324, 0.0, -0.0, 91.0, 181.0, -90.5]),
    odd_strings,
)
odd_values = st.recursive(
    odd_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(odd_strings, inner, max_size=4)),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return root


def _messages(body: Any) -> list[dict[str, Any]]:
    try:
        return [
            m
            for e in body["entry"]
            for c in e["changes"]
            for m in c["value"].get("messages", [])
            if isinstance(m, dict)
        ]
    except (KeyError, TypeError, AttributeError):
        return []


@st.composite
def webhook_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """``(raw body, how it is signed: "good" | "bad" | "none")``."""
    body: Any = copy.deepcopy(draw(st.sampled_from(BASES)))
    # sampled_from shrinks and leans towards its first element: the common case comes first in each choice.
    if draw(st.sampled_from([True] * 7 + [False] * 3)):  # most bodies carry new messages from our chats, as now
        for m in _messages(body):
            m["id"] = f"wamid.FUZZ{next(_ids):07d}.{time.time_ns()}"
            m["from"] = draw(st.sampled_from(SENDERS))
            m["timestamp"] = str(int(time.time()))
    messages = _messages(body)
    if messages and draw(st.sampled_from([False] * 4 + [True])):  # an odd id, sender or text where it matters most
        m = draw(st.sampled_from(messages))
        field = draw(st.sampled_from(["id", "from", "timestamp", "type"]))
        m[field] = draw(odd_strings)
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(body)[1:]  # not the root: a body that is not an object is the damaged-bytes case
        if not paths:
            break
        inner = [p for p in paths if "messages" in p[:-1] or "statuses" in p[:-1] or "contacts" in p[:-1]]
        # Mostly inside messages, statuses and contacts (what varies in real traffic); sometimes the envelope.
        path = draw(st.sampled_from(inner if inner and draw(st.sampled_from([True] * 4 + [False])) else paths))
        if draw(st.sampled_from([False] * 4 + [True])):
            body = _set(body, path, None, delete=True)
        else:
            body = _set(body, path, draw(odd_values))
    deep = draw(st.sampled_from([0] * 8 + [260, 1000]))
    if deep:
        body = _set(body, draw(st.sampled_from(_paths(body)[1:] or [()])), "__DEEP__")
    raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", errors="surrogatepass")
    if deep:
        raw = raw.replace(b'"__DEEP__"', b"[" * deep + b"1" + b"]" * deep, 1)
    if draw(st.sampled_from([False] * 19 + [True])):  # damaged bytes
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at + 1 :]
    signing = draw(st.sampled_from(["good"] * 18 + ["bad", "none"]))
    return raw, signing


@pytest.fixture
async def fuzz_ready(fresh, engine):
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE dead_letters RESTART IDENTITY"))
    return fresh


@pytest.mark.timeout(max(300, EXAMPLES // 20 + 240))  # ~30 ms per example under load, plus the worker's tail
async def test_fuzzed_signed_payloads_never_get_a_5xx_and_a_normal_message_still_goes_through(
    web, worker, graph_api, fuzz_ready, engine
):
    counts: Counter[int] = Counter()
    client = httpx.Client(base_url=web.url, timeout=30)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(webhook_bodies())
    def post_one(case: tuple[bytes, str]) -> None:
        raw, signing = case
        headers = {"Content-Type": "application/json"}
        if signing != "none":
            headers["X-Hub-Signature-256"] = sign(raw, SECRET if signing == "good" else "not-the-secret")
        r = client.post("/webhooks/meta", content=raw, headers=headers)
        counts[r.status_code] += 1
        assert r.status_code in ALLOWED, (r.status_code, r.text, raw[:300])

    try:
        post_one()  # blocks this test's loop only: the web server runs in its own thread and loop
    finally:
        client.close()
        print(f"\nfuzz: {sum(counts.values())} requests, by status: {dict(sorted(counts.items()))}")
    assert not [c for c in counts if c >= 500]
    assert counts[200] > EXAMPLES // 2  # most bodies got through to the database, not only the parser

    # Afterwards a normal message from a registered person is stored and answered, by a worker still alive.
    mid = f"wamid.AFTERFUZZ{time.time_ns()}"
    before = len([m for m in graph_api.sent_messages() if m.get("to") == "254700000005"])
    body = json.dumps(envelope([text_message("254700000005", "help", mid=mid)])).encode()
    r = httpx.post(web.url + "/webhooks/meta", content=body, headers={"X-Hub-Signature-256": sign(body, SECRET)})
    assert r.status_code == 200 and r.json()["stored"] == 1

    async def processed() -> Any:
        async with engine.connect() as conn:
            q = select(inbox.c.processed_at).where(inbox.c.provider_message_id == mid)
            return (await conn.execute(q)).scalar_one_or_none()

    assert await await_for(processed, timeout=180)
    async with engine.connect() as conn:
        figures = {
            "inbox rows": (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one(),
            "dead letters": (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar_one(),
            "turns by status": dict(
                (await conn.execute(text("SELECT status, count(*) FROM turns GROUP BY status"))).all()  # type: ignore[arg-type]
            ),
        }
    print(f"fuzz: after the run {figures}")
    await await_for(lambda: len([m for m in graph_api.sent_messages() if m.get("to") == "254700000005"]) > before, 60)
    assert worker.proc is not None and worker.proc.poll() is None
