"""LangGraph Studio: ``langgraph dev`` serves both graphs from ``langgraph.json`` with contexts built per run.

The server runs as a subprocess, offline, on a free port, against the test session's PostgreSQL; the
conversation and the approval go through ``langgraph_sdk`` the way Studio drives them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.config import Settings
from core.db import purchase_requests

ROOT = Path(__file__).resolve().parents[3]
STARTUP_SECONDS = 60
NOW = "2026-11-18T10:00:00+03:00"  # a Wednesday: "by friday" is the 20th


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(kind: str, sender: str, n: int, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "sender": sender,
        "chat_id": sender,
        "timestamp": "2026-11-18T07:00:00+00:00",
        "provider_message_id": f"wamid.studio{n}",
        **fields,
    }


@pytest.fixture
def studio_url(database_url: str, seeded: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """``langgraph dev`` on a free port, offline, with the session database (users and catalogue seeded)."""
    port = free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "LLM_MODEL": "",
    }
    for name in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "REDIS_URL"):
        env.pop(name, None)
    log_path = tmp_path / "langgraph-dev.log"  # outside the tree: a log inside it would trigger reloads
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "langgraph_cli", "dev", "--port", str(port), "--no-browser", "--no-reload"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the server's children go with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(url + "/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not start in {STARTUP_SECONDS} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


async def test_studio_conversation_and_approval(studio_url: str, engine: Any, seeded: dict[str, Any]) -> None:
    from langgraph_sdk import get_client

    amina, brian = seeded["amina"], seeded["brian"]
    client = get_client(url=studio_url)
    assistants = {a["graph_id"] for a in await client.assistants.search()}
    assert {"procurement", "approval"} <= assistants

    chat = await client.threads.create()
    approval_thread = await client.threads.create()
    try:
        # Plain fields in the run context become a full Context (user row by phone, engine, catalogue).
        state = await client.runs.wait(
            chat["thread_id"],
            "procurement",
            input={"inbound": [message("text", amina.wa_id, 1, text="need 2 staplers for nairobi by friday")]},
            context={"phone": amina.phone, "now": NOW},
        )
        summary = state["outbound"][-1]
        assert summary["type"] == "buttons" and summary["to"] == amina.wa_id, state["outbound"]
        assert "STP-STD" in summary["text"] and "Fri 20 Nov 2026" in summary["text"]
        assert ["confirm", "Confirm"] in summary["buttons"]

        # The same fields may come in config["configurable"] instead.
        state = await client.runs.wait(
            chat["thread_id"],
            "procurement",
            input={"inbound": [message("button", amina.wa_id, 2, reply_id="confirm", text="Confirm")]},
            config={"configurable": {"phone": amina.wa_id, "now": NOW}},
        )
        assert any("PR-1" in m["text"] and brian.display_name in m["text"] for m in state["outbound"])
        effect = state["effects"][0]
        assert effect == {"type": "start_approval", "request_id": 1, "revision": 1}

        # The worker's effect, by hand: the approval thread pauses at its interrupt.
        state = await client.runs.wait(
            approval_thread["thread_id"],
            "approval",
            input={"request_id": effect["request_id"], "revision": effect["revision"]},
            context={"phone": brian.phone},
        )
        assert state["outbound"][0]["to"] == brian.wa_id and state["outbound"][0]["type"] == "buttons"
        snapshot = await client.threads.get_state(approval_thread["thread_id"])
        assert snapshot["next"] == ["await_decision"]
        [interrupt] = snapshot["interrupts"]
        payload = interrupt["value"]
        assert {k: payload[k] for k in ("request_id", "number", "revision", "allowed")} == {
            "request_id": 1,
            "number": "PR-1",
            "revision": 1,
            "allowed": ["approve", "reject"],
        }
        # approver_id: await_decision reads state["approver_id"], which no node sets yet (None today).
        assert payload["approver_id"] in (None, brian.id)

        state = await client.runs.wait(
            approval_thread["thread_id"],
            "approval",
            # The decider is the run's context (Brian), never a field of the answer.
            command={"resume": {"decision": "approve", "reason": None}},
            context={"phone": brian.phone},
        )
        assert state["outcome"] == "ok"
        assert state["effects"] == [{"type": "fulfil", "request_id": 1}]
        async with engine.connect() as conn:
            status = (
                await conn.execute(select(purchase_requests.c.status).where(purchase_requests.c.id == 1))
            ).scalar_one()
        assert status == "approved"

        # Identity comes from the users table only: an unknown number fails the run.
        with pytest.raises(Exception, match="PermissionError"):
            await client.runs.wait(
                chat["thread_id"],
                "procurement",
                input={"inbound": [message("text", "254799999999", 3, text="status")]},
                context={"phone": "+254799999999"},
            )
    finally:
        for thread in (chat, approval_thread):
            await client.threads.delete(thread["thread_id"])


async def test_resolver_builds_the_context(database_url: str, seeded: dict[str, Any]) -> None:
    from server.studio import ContextResolver, StudioContext

    settings = Settings(_env_file=None, DATABASE_URL=database_url, SITES="Nairobi,Mombasa")  # type: ignore[call-arg]
    resolver = ContextResolver(settings, configure_tracing=False)
    try:
        ctx = await resolver.resolve({"phone": seeded["brian"].phone, "now": NOW})
        assert ctx.user == seeded["brian"] and ctx.chat_id == seeded["brian"].wa_id
        assert ctx.engine is not None and ctx.catalog.get("STP-STD") is not None
        assert ctx.sites == ("Nairobi", "Mombasa") and ctx.now is not None and ctx.now.isoformat() == NOW
        # configurable fills in; the run context wins where both give a field.
        ctx = await resolver.resolve(
            StudioContext(phone=seeded["carol"].wa_id), {"configurable": {"phone": "x", "chat_id": "group-1"}}
        )
        assert ctx.user == seeded["carol"] and ctx.chat_id == "group-1"
        # No phone: the demo requester (+254700000001, Amina in this test company).
        assert (await resolver.resolve(None)).user == seeded["amina"]
        with pytest.raises(PermissionError):
            await resolver.resolve({"phone": "+254799999999"})
    finally:
        await resolver.aclose()
