"""``procure demo``: a realistic WhatsApp conversation replayed through the real HTTP webhook.

It runs the whole path on the embedded default: signed Cloud API payloads -> the FastAPI webhook -> inbox ->
debounced turn on arq -> worker process -> graphs with the Postgres checkpointer -> replies sent to a local
Graph API stand-in (instead of Meta) -> approval by a second user -> the final request from the API.
The demo uses its own database (``procure_demo``) and queue, recreated on each run, so real data is untouched.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn

from core.config import Settings
from core.db import make_engine
from core.embedded import ensure_services
from core.migrate import upgrade
from core.repo import add_user, import_catalog
from server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "examples" / "catalog.csv"
AMINA, BRIAN = "254711000001", "254711000002"
NAMES = {AMINA: "Amina (requester, Nairobi)", BRIAN: "Brian (approver)"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _body(msg: dict[str, Any]) -> str:
    if msg.get("type") == "text":
        return str(msg["text"]["body"])
    inter = msg.get("interactive") or {}
    text = str(inter.get("body", {}).get("text", ""))
    if inter.get("type") == "button":
        text += "\n  " + "  ".join(f"[{b['reply']['title']}]" for b in inter["action"]["buttons"])
    elif inter.get("type") == "list":
        rows = [r for sec in inter["action"]["sections"] for r in sec["rows"]]
        text += "\n  " + "\n  ".join(f"( ) {r['title']}: {r.get('description', '')}" for r in rows)
    return text


def _print(who: str, text: str) -> None:
    pad = "\n      "
    print(f"  {who}:{pad}{pad.join(text.splitlines())}")


async def run_demo(settings: Settings, *, keep: bool = False) -> int:
    """Run the demo conversation; returns a process exit code (0 when the request ended approved)."""
    # Reference systems (the Graph API stand-in, signed payloads) are development-only: imported on use.
    from sandboxes.whatsapp.meta_graph_api import GraphAPIStandIn
    from sandboxes.whatsapp.meta_payloads import button_reply, envelope, list_reply, signed, text_message

    t0 = time.perf_counter()
    svc = ensure_services(settings.DATABASE_URL, settings.REDIS_URL, Path(settings.DATA_DIR))
    demo_db = svc.database_url.replace("/procure?", "/procure_demo?") if "/procure?" in svc.database_url else None
    if demo_db is None:
        base, _, query = svc.database_url.partition("?")
        demo_db = base.rsplit("/", 1)[0] + "/procure_demo" + ("?" + query if query else "")
    with psycopg.connect(svc.database_url, autocommit=True) as conn:
        if not keep:
            conn.execute("DROP DATABASE IF EXISTS procure_demo WITH (FORCE)")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'procure_demo'").fetchone()
        if not exists:
            conn.execute("CREATE DATABASE procure_demo")
    upgrade(demo_db)

    secret, token, admin = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(16)
    graph = GraphAPIStandIn(access_token=token).start()
    env = {
        "ENVIRONMENT": "development",
        "DATABASE_URL": demo_db,
        "REDIS_URL": svc.redis_url,
        "META_APP_SECRET": secret,
        "META_VERIFY_TOKEN": secrets.token_hex(8),
        "META_ACCESS_TOKEN": token,
        "META_GRAPH_URL": graph.url,
        "ADMIN_API_TOKEN": admin,
        "QUEUE_NAME": "procure:demo",
        "DEBOUNCE_SECONDS": "1.0",
        "DEBOUNCE_MAX_SECONDS": "4",
        "LLM_MODEL": "",
        "LOG_LEVEL": "WARNING",
    }
    demo_settings = Settings(**{k: v for k, v in env.items() if k in Settings.model_fields and v != ""})  # type: ignore[arg-type]

    engine = make_engine(demo_db, pool_size=2)
    await import_catalog(engine, CATALOG)
    await add_user(engine, phone="+" + AMINA, name="Amina Wanjiru", role="requester", site="Nairobi")
    await add_user(
        engine, phone="+" + BRIAN, name="Brian Otieno", role="approver", site="Nairobi", approval_limit=Decimal("2500")
    )
    await add_user(engine, phone="+254711000003", name="Carol Mwangi", role="admin")
    await engine.dispose()

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(demo_settings, demo_db, svc.redis_url), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    worker_env = {k: v for k, v in {**os.environ, **env}.items() if v != ""}
    worker_env.pop("LLM_MODEL", None)
    worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=worker_env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(200):
                try:
                    if (await http.get(url + "/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

            seen = 0

            async def send(sender: str, *messages: dict[str, Any], show: list[str]) -> None:
                nonlocal seen
                for m, label in zip(messages, show, strict=True):
                    _print(f"{NAMES[sender]} -> agent", label)
                    body, headers = signed(envelope([m]), secret)
                    r = await http.post(url + "/webhooks/meta", content=body, headers=headers)
                    r.raise_for_status()
                    await asyncio.sleep(0.3)
                deadline = time.time() + 30
                while time.time() < deadline and len(graph.sent_messages()) == seen:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.2)  # let the turn's other messages (approver notices) go out
                for out in graph.sent_messages()[seen:]:
                    _print(f"agent -> {NAMES.get(out['to'], out['to'])}", _body(out))
                seen = len(graph.sent_messages())

            print("\n=== WhatsApp conversation (replayed through the real webhook) ===\n")
            await send(
                AMINA,
                text_message(AMINA, "Hi, need 20 boxes a4 paper"),
                text_message(AMINA, "and 5 toner HP"),
                text_message(AMINA, "for nairobi site by friday"),
                show=["Hi, need 20 boxes a4 paper", "and 5 toner HP", "for nairobi site by friday"],
            )
            await send(AMINA, list_reply(AMINA, "pick:1:TON-CF226X", "TON-CF226X"), show=["(picks) TON-CF226X"])
            await send(AMINA, text_message(AMINA, "actually make the paper 30"), show=["actually make the paper 30"])
            await send(AMINA, button_reply(AMINA, "confirm", "Confirm"), show=["[Confirm]"])
            r = await http.get(url + "/api/purchase-requests", headers={"Authorization": f"Bearer {admin}"})
            pr = r.json()["items"][0]
            await send(
                BRIAN, button_reply(BRIAN, f"approve:{pr['id']}:{pr['revision']}", "Approve"), show=["[Approve]"]
            )

            r = await http.get(url + f"/api/purchase-requests/{pr['id']}", headers={"Authorization": f"Bearer {admin}"})
            final = r.json()
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.should_exit = True
        graph.stop()
    print("\n=== Final purchase request (GET /api/purchase-requests/{id}) ===\n")
    print(f"  {final['number']}  status: {final['status']}  site: {final['site']}  needed by: {final['needed_by']}")
    print(
        f"  requester: {final['requester']['name']}  approver: {final['approver']['name'] if final['approver'] else '-'}"
    )
    for ln in final["lines"]:
        print(
            f"  - {ln['sku']}: {ln['quantity']} {ln['unit']} @ {ln['unit_price']} {ln['currency']}  ({ln['description']})"
        )
    print(f"  total: {final['currency']} {final['total']}")
    print(f"  history: {', '.join(h['action'] for h in final['history'])}")
    print(f"\n  demo finished in {time.perf_counter() - t0:.1f} s; LLM calls: {final['llm_usage']['calls']}\n")
    return 0 if final["status"] == "approved" else 1
