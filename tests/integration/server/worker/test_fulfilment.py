"""Fulfilment against real components: Tryton over JSON-RPC, Chromium on the reference shop, PostgreSQL, Redis/arq,
moto's S3 server for evidence, the Graph API stand-in for WhatsApp.

Jobs run on arq: in-process burst workers (real Redis, real ``Retry`` deferrals) or ``procure worker`` processes,
each test on a queue of its own so the session's worker never takes its jobs. Request ids start at a fresh
offset per test because the Tryton database lives for the whole session (``PR-1-OFFICEMART`` must not meet an
order of an earlier test).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import select, text
from typer.testing import CliRunner

from core.config import Settings
from core.db import audit_log, catalog_items, fulfilments, purchase_requests
from core.domain import Line
from core.repo import get_user, load_catalog, upsert_suppliers
from server.cli import app as cli_app
from server.services import Services, redis_settings
from server.worker.jobs import FulfilmentJobs, close, enqueue, install, jobs_for, sweep_once
from tests.support.erp_fixtures import RunningTryton
from tests.support.portal_fixtures import MOTO_CREDENTIALS, RunningShop, free_port
from tests.support.stack import ROOT, TOKEN, Chat, WebServer, WorkerProcess, await_for, body_of, button_ids, stack_env
from tools import requests as R
from tools.erp.tryton import TrytonClient
from tools.fulfilment import Fulfiller, po_reference
from tools.supplier_portal.browser import BrowserPool

AMINA, BRIAN, DAN = "254700000001", "254700000002", "254700000004"
ACCOUNT, SHOP_PASSWORD = "buyer@acme.test", "s3cret"
ERP_ITEMS = [("PAP-A4-80", "2"), ("STP-STD", "1")]
WEB_ITEMS = [("TON-CF226A", "1"), ("USB-32", "3")]
_offsets = itertools.count(random.randint(100, 900) * 1000, 1000)


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture
async def people(seeded: dict[str, Any], engine: Any, graph_api: Any) -> dict[str, Any]:
    """The seeded company, request ids from a fresh offset, the Graph stand-in emptied."""
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER SEQUENCE purchase_requests_id_seq RESTART WITH {next(_offsets) + 1}"))
    graph_api.reset()
    return seeded


@pytest.fixture
async def website(shop: RunningShop, engine: Any) -> RunningShop:
    """TONERWEB registered as a website supplier on the reference shop (other suppliers order in the ERP)."""
    await upsert_suppliers(
        engine,
        [
            {
                "code": "TONERWEB",
                "name": "TonerWeb",
                "channel": "website",
                "portal": "sandbox_shop",
                "url": shop.base_url,
                "account": ACCOUNT,
            }
        ],
    )
    return shop


def settings_values(
    tryton: RunningTryton, graph_api: Any, moto_s3: str, queue: str, **overrides: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "QUEUE_NAME": queue,
        "META_GRAPH_URL": graph_api.url,
        "META_ACCESS_TOKEN": TOKEN,
        "ERP_URL": tryton.url,
        "ERP_DATABASE": tryton.database,
        "ERP_USER": tryton.login,
        "ERP_PASSWORD": tryton.password,
        "SUPPLIER_PORTAL_PASSWORD": SHOP_PASSWORD,
        "BROWSER_PACING": False,
        "FULFILMENT_MAX_TRIES": 3,
        "FULFILMENT_RETRY_BASE_SECONDS": 0.2,
        "FULFILMENT_RETRY_MAX_SECONDS": 1.0,
        "FULFILMENT_TIMEOUT_SECONDS": 60,
        "S3_ENDPOINT_URL": moto_s3,
        "S3_BUCKET": "procure-evidence",
        "S3_ACCESS_KEY_ID": MOTO_CREDENTIALS["access_key_id"],
        "S3_SECRET_ACCESS_KEY": MOTO_CREDENTIALS["secret_access_key"],
    }
    values.update(overrides)
    return values


@dataclass
class Stack:
    """In-process services with fulfilment installed, and a burst arq worker to run its queue."""

    services: Services
    fulfiller: Fulfiller

    @property
    def engine(self) -> Any:
        return self.services.engine

    @property
    def queue(self) -> FulfilmentJobs:
        """The queue the worker injects as ``Context.fulfilment`` (what the effect nodes call)."""
        queue: FulfilmentJobs = self.services.extras["fulfilment"]
        return queue

    async def fulfil(self, request_id: int) -> None:
        """What the approval graph's ``enqueue_fulfilment`` node does after an approval."""
        await self.queue.request(request_id, provider="meta")

    async def press_retry(self, fulfilment_id: int, by: int, turn_id: int) -> None:
        """What the ``retry_fulfilment`` node does with a Retry press of turn ``turn_id``."""
        await self.queue.retry(fulfilment_id, by, provider="meta", token=f"turn{turn_id}")

    async def drain(self, timeout: float = 120) -> Worker:
        """Run the queue until it is empty (deferred retries included), like one arq worker process would."""
        st = self.services.settings
        worker = Worker(
            functions=jobs_for(st),  # type: ignore[arg-type]
            redis_settings=redis_settings(self.services.redis_url),
            queue_name=st.QUEUE_NAME,
            burst=True,
            poll_delay=0.05,
            max_jobs=10,
            handle_signals=False,
            ctx={"services": self.services},
        )
        try:
            await asyncio.wait_for(worker.main(), timeout)
        finally:
            await worker.close()
        return worker

    async def rows(self, request_id: int) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(fulfilments).where(fulfilments.c.request_id == request_id))).all()
        return {r.supplier: r for r in rows}


@contextlib.asynccontextmanager
async def open_stack(
    database_url: str,
    redis_url: str,
    values: dict[str, Any],
    *,
    browser_pool: BrowserPool | None = None,
) -> AsyncIterator[Stack]:
    settings = Settings(**values)
    services = await Services.create(settings, database_url, redis_url, pool_size=12)
    fulfiller = install(services, sweeper=False, browser_pool=browser_pool)
    try:
        yield Stack(services, fulfiller)
    finally:
        await close(services)
        await services.aclose()


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def stack(
    database_url: str,
    redis_url: str,
    tryton_server: RunningTryton,
    graph_api: Any,
    moto_s3: str,
    browser_pool: BrowserPool,
    stack_overrides: dict[str, Any],
) -> AsyncIterator[Stack]:
    """Fulfilment wired to the session's Tryton, Chromium and S3 (parametrize ``stack_overrides`` to change settings)."""
    queue = f"procure:fulfil:{uuid.uuid4().hex[:8]}"
    values = settings_values(tryton_server, graph_api, moto_s3, queue, **stack_overrides)
    async with open_stack(database_url, redis_url, values, browser_pool=browser_pool) as s:
        yield s


async def approved_request(engine: Any, people: dict[str, Any], items: list[tuple[str, str]]) -> int:
    """Submit and approve a request for ``(sku, quantity)`` items through tools.requests (policy and audit)."""
    catalog = {c.sku: c for c in await load_catalog(engine)}
    lines = [Line(catalog[sku].name, Decimal(q), catalog[sku].unit, sku, catalog[sku].unit_price) for sku, q in items]
    sub = await R.submit_request(
        engine,
        requester=people["amina"],
        lines=lines,
        site="Nairobi",
        needed_by=date.today() + timedelta(days=3),
        currency="USD",
        chat_id=AMINA,
        provider="meta",
    )
    approver = await get_user(engine, id=sub.approver.id)
    assert approver is not None
    decided = await R.decide(engine, sub.request_id, revision=1, decision="approve", actor=approver)
    assert decided.outcome == "ok"
    return sub.request_id


async def erp_orders(tryton: RunningTryton, reference: str) -> list[dict[str, Any]]:
    """Every Tryton purchase carrying ``reference`` (state, number)."""
    erp = tryton.adapter()
    try:
        rows = await erp.client.model(
            "purchase.purchase", "search_read", [["reference", "=", reference]], 0, None, None, ["number", "state"]
        )
    finally:
        await erp.aclose()
    return list(rows)


async def audit_of(engine: Any, request_id: int, action: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.details)
                .where(audit_log.c.request_id == request_id, audit_log.c.action == action)
                .order_by(audit_log.c.id)
            )
        ).all()
    return [r.details for r in rows]


async def request_status(engine: Any, request_id: int) -> str:
    async with engine.connect() as conn:
        return str(
            (
                await conn.execute(select(purchase_requests.c.status).where(purchase_requests.c.id == request_id))
            ).scalar_one()
        )


def sent_to(graph_api: Any, wa_id: str) -> list[dict[str, Any]]:
    return [m for m in graph_api.sent_messages() if m["to"] == wa_id]


# --------------------------------------------------------------------------- the whole flow over WhatsApp


async def test_approved_request_orders_in_erp_and_on_website_over_whatsapp(
    people, website, tryton_server, graph_api, moto_s3, database_url, redis_url, data_dir, engine
):
    """Requester asks, approver approves on WhatsApp: one Tryton purchase, one website order, both told."""
    env = stack_env(
        database_url,
        redis_url,
        graph_api.url,
        data_dir,
        **settings_values(tryton_server, graph_api, moto_s3, "procure:fulfil-e2e"),
    )
    web = WebServer(env).start()
    worker = WorkerProcess(env).start()
    try:
        amina, brian, dan = Chat(web, graph_api, AMINA), Chat(web, graph_api, BRIAN), Chat(web, graph_api, DAN)
        out = amina.say("need 2 boxes a4 paper and 1 hp 26a toner for nairobi by friday")
        assert button_ids(out[-1]) == ["confirm", "cancel_draft"], out
        out = amina.press("confirm")
        approval = [m for m in out if m["to"] == BRIAN]
        [approve] = [b for b in button_ids(approval[0]) if b.startswith("approve:")]
        rid = int(approve.split(":")[1])
        brian.press(approve)

        def told(wa_id: str, supplier: str) -> bool:
            return any(f"ordered from {supplier}" in body_of(m) for m in sent_to(graph_api, wa_id))

        await await_for(lambda: all(told(w, s) for w in (AMINA, DAN) for s in ("OFFICEMART", "TONERWEB")), timeout=90)
        erp_ref, web_ref = po_reference(rid, "OFFICEMART"), po_reference(rid, "TONERWEB")
        [purchase] = await erp_orders(tryton_server, erp_ref)
        assert purchase["state"] in ("confirmed", "processing")
        [web_order] = website.orders(po=web_ref)
        assert {ln["sku"]: ln["quantity"] for ln in web_order["lines"]} == {"TON-CF226A": 1}
        assert await request_status(engine, rid) == "ordered"
        # The numbers people were told are the destinations' numbers.
        dan_texts = " ".join(body_of(m) for m in sent_to(graph_api, DAN))
        assert purchase["number"] in dan_texts and web_order["number"] in dan_texts

        out = dan.say(f"orders PR-{rid}")
        view = body_of(out[-1])
        assert f"Orders for PR-{rid}" in view and "(ordered)" in view
        assert f"OFFICEMART (ERP, ref {erp_ref}): placed — order *{purchase['number']}*" in view
        assert f"TONERWEB (website, ref {web_ref}): placed — order *{web_order['number']}*" in view
        out = amina.say(f"orders PR-{rid}")  # requesters may not see where orders went
        assert "can't do that" in body_of(out[-1])
        # Each outcome was announced once, to each person.
        assert sum("ordered from" in body_of(m) for m in sent_to(graph_api, AMINA)) == 2
        assert sum("ordered from" in body_of(m) for m in sent_to(graph_api, DAN)) == 2
    finally:
        worker.stop()
        web.stop()


async def test_fulfilment_not_configured_leaves_request_approved(
    people, engine, database_url, redis_url, graph_api, moto_s3
):
    """No ERP_URL and no registered supplier (a fresh embedded install): approval only, nothing written."""
    values = {"ENVIRONMENT": "test", "META_GRAPH_URL": graph_api.url, "META_ACCESS_TOKEN": TOKEN}
    async with open_stack(database_url, redis_url, values) as s:
        rid = await approved_request(engine, people, ERP_ITEMS)
        await s.fulfil(rid)
        assert await s.rows(rid) == {}
        assert await request_status(engine, rid) == "approved"


# ---------------------------------------------------------------------------------------- exactly once


@pytest.mark.parametrize("channel", ["erp", "website"])
async def test_eight_concurrent_attempts_make_one_order(people, website, stack, tryton_server, channel):
    rid = await approved_request(stack.engine, people, ERP_ITEMS if channel == "erp" else WEB_ITEMS)
    await stack.fulfil(rid)
    [row] = (await stack.rows(rid)).values()
    assert row.channel == channel and row.idempotency_key == po_reference(rid, row.supplier)
    # Seven more jobs for the same fulfilment under other ids: eight attempts race in one arq worker.
    for i in range(7):
        assert await enqueue(stack.services, row.id, f"race:{row.id}:{i}")
    await stack.drain()
    row = (await stack.rows(rid))[row.supplier]
    assert row.state == "placed" and row.attempts == 1  # the others found it placed under the lock
    if channel == "erp":
        orders = await erp_orders(tryton_server, row.idempotency_key)
        assert [o["number"] for o in orders] == [row.external_order_id]
    else:
        assert [o["number"] for o in website.orders(po=row.idempotency_key)] == [row.external_order_id]
    assert await request_status(stack.engine, rid) == "ordered"


async def test_worker_sigkilled_after_destination_recorded_does_not_order_again(
    people, website, tryton_server, graph_api, moto_s3, database_url, redis_url, data_dir, engine
):
    """The destinations hold the orders, the worker dies before recording them: the retry finds them by reference."""
    queue = f"procure:fulfil-kill:{uuid.uuid4().hex[:6]}"
    values = settings_values(
        tryton_server,
        graph_api,
        moto_s3,
        queue,
        FULFILMENT_TIMEOUT_SECONDS=12,
        TURN_TIMEOUT_SECONDS=12,
        SWEEP_INTERVAL_SECONDS=1,
    )
    env = stack_env(database_url, redis_url, graph_api.url, data_dir, **values)
    rid = await approved_request(engine, people, ERP_ITEMS + WEB_ITEMS)
    erp_ref, web_ref = po_reference(rid, "OFFICEMART"), po_reference(rid, "TONERWEB")
    first = WorkerProcess(dict(env, TEST_FULFILMENT_RECORD_DELAY_SECONDS="60")).start()
    second = None
    try:
        async with open_stack(database_url, redis_url, values) as s:
            await s.fulfil(rid)  # enqueues both jobs on the test's queue

            async def both_recorded_there() -> bool:
                return bool(website.orders(po=web_ref)) and bool(await erp_orders(tryton_server, erp_ref))

            await await_for(both_recorded_there, timeout=60, interval=0.1)
            first.kill()
            rows = await s.rows(rid)
            assert {r.state for r in rows.values()} == {"placing"}
            assert all(r.external_order_id is None for r in rows.values())

            second = WorkerProcess(env).start()

            async def both_placed() -> bool:
                return {r.state for r in (await s.rows(rid)).values()} == {"placed"}

            await await_for(both_placed, timeout=90, interval=0.3)
            rows = await s.rows(rid)
        assert len(await erp_orders(tryton_server, erp_ref)) == 1
        assert len(website.orders(po=web_ref)) == 1
        placed = await audit_of(engine, rid, "fulfilment.placed")
        assert sorted(d["how"] for d in placed) == ["already_placed", "already_placed"]
        # The dead attempt and at least one retry (the sweeper and arq may both retry; only one places).
        assert all(r.attempts >= 2 for r in rows.values())
        assert await request_status(engine, rid) == "ordered"
    finally:
        first.kill()
        if second is not None:
            second.stop()


async def test_two_workers_share_one_website_account_without_mixing_carts(
    people, website, tryton_server, graph_api, moto_s3, database_url, redis_url, data_dir, engine
):
    """The shop keeps one cart per account: orders of two worker processes take turns on the account's lock."""
    values = settings_values(tryton_server, graph_api, moto_s3, f"procure:fulfil-2w:{uuid.uuid4().hex[:6]}")
    # One job at a time per process, so that the two processes, not one process's jobs, compete for the account.
    env = stack_env(database_url, redis_url, graph_api.url, data_dir, WORKER_MAX_JOBS=1, **values)
    baskets = [[("TON-CF226A", "1")], [("USB-32", "2")], [("MOU-USB", "3"), ("KBD-USB", "1")], [("TON-CE285A", "2")]]
    rids = [await approved_request(engine, people, items) for items in baskets]
    workers = [WorkerProcess(env).start() for _ in range(2)]
    try:
        async with open_stack(database_url, redis_url, values) as s:
            for rid in rids:
                await s.fulfil(rid)

            async def all_placed() -> bool:
                states = [(await s.rows(rid))["TONERWEB"].state for rid in rids]
                return states == ["placed"] * len(rids)

            await await_for(all_placed, timeout=90, interval=0.3)
    finally:
        for w in workers:
            w.stop()
    for rid, items in zip(rids, baskets, strict=True):
        [order] = website.orders(po=po_reference(rid, "TONERWEB"))
        assert {ln["sku"]: ln["quantity"] for ln in order["lines"]} == {sku: int(q) for sku, q in items}
        assert await audit_of(engine, rid, "fulfilment.attempt_failed") == []  # no cart mix-up to recover from


async def test_sweeper_requeues_a_fulfilment_nobody_works_on(people, website, stack, tryton_server):
    """A row left ``placing`` past the job timeout (worker gone, arq gave up) gets a new job from the sweeper."""
    rid = await approved_request(stack.engine, people, ERP_ITEMS)
    [f] = await stack.fulfiller.create_for_request(rid)  # rows only: as if the enqueue had been lost
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE fulfilments SET state = 'placing', updated_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": f.id},
        )
    assert await sweep_once(stack.services) == 1
    assert await sweep_once(stack.services) == 0  # the same job is already queued
    await stack.drain()
    row = (await stack.rows(rid))["OFFICEMART"]
    assert row.state == "placed" and len(await erp_orders(tryton_server, row.idempotency_key)) == 1


# ------------------------------------------------------------------------------ a misbehaving website

SWITCHES = {
    "slow": {"slow": 800},
    "rate_limited": {"rate_limit": {"next": 4, "retry_after": 1}},
    "session_expiry": {"session_expiry": 1},
    "interstitial": {"interstitial": {"delay_ms": 700}},
    "fail_after_record_500": {"fail_after_record": "500"},
    "fail_after_record_drop": {"fail_after_record": "drop"},
}


@pytest.mark.parametrize("switch", list(SWITCHES))
async def test_website_switch_ends_in_one_order_or_reported_failure(
    people, website, stack, evidence_storage, graph_api, switch
):
    website.set_switches(**SWITCHES[switch])
    rid = await approved_request(stack.engine, people, WEB_ITEMS)
    await stack.fulfil(rid)
    await stack.drain()
    row = (await stack.rows(rid))["TONERWEB"]
    orders = website.orders(po=row.idempotency_key)
    # With these switches the site is bad but not hopeless: one order, found under our PO reference, announced.
    assert row.state == "placed", (row.state, row.error)
    assert [o["number"] for o in orders] == [row.external_order_id]
    assert sum(row.external_order_id in body_of(m) for m in sent_to(graph_api, DAN)) == 1
    for key in row.evidence_keys:  # every failed run left its screenshot and trace in the bucket
        assert evidence_storage.exists(key), key
    [placed] = await audit_of(stack.engine, rid, "fulfilment.placed")
    if switch == "rate_limited":
        # More 429s than the page object waits out: the job deferred once, the failed run kept as evidence.
        assert row.attempts == 2 and len(row.evidence_keys) == 2
        assert len(await audit_of(stack.engine, rid, "fulfilment.attempt_failed")) == 1
    if switch.startswith("fail_after_record"):
        # The shop recorded the order and then failed: found by its PO reference, the failed run kept as evidence.
        assert placed["how"] == "recovered" and any(k.endswith("trace.zip") for k in row.evidence_keys)
    else:
        assert placed["how"] == "placed"


@pytest.mark.parametrize("stack_overrides", [{"FULFILMENT_MAX_TRIES": 2}])
async def test_persistent_failure_tells_buyer_with_evidence_and_retry_button(
    people, website, stack, evidence_storage, graph_api
):
    website.set_switches(rate_limit={"probability": 1.0, "retry_after": 1})
    rid = await approved_request(stack.engine, people, WEB_ITEMS)
    await stack.fulfil(rid)
    await stack.drain()
    row = (await stack.rows(rid))["TONERWEB"]
    assert row.state == "failed" and row.round_attempts == 2 and row.error.startswith("website:")
    assert website.orders(po=row.idempotency_key) == []
    screenshots = [k for k in row.evidence_keys if k.endswith("screenshot.png")]
    traces = [k for k in row.evidence_keys if k.endswith("trace.zip")]
    assert len(screenshots) == 2 and len(traces) == 2  # one of each per failed run
    assert all(evidence_storage.exists(k) for k in row.evidence_keys)

    to_dan = sent_to(graph_api, DAN)
    [detail] = [m for m in to_dan if "could not be placed" in body_of(m)]
    assert f"PR-{rid}" in body_of(detail) and "Reason: website:" in body_of(detail)
    link = body_of(detail).split("Screenshot: ")[1].split()[0]
    image = httpx.get(link, timeout=10)  # the presigned link works
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    [button] = [m for m in to_dan if button_ids(m)]
    assert button_ids(button) == [f"retry:{row.id}"]
    assert any("could not be placed yet" in body_of(m) for m in sent_to(graph_api, AMINA))
    assert not any(button_ids(m) for m in sent_to(graph_api, AMINA))

    # A requester pressing a forwarded button: refused server-side, nothing queued.
    await stack.press_retry(row.id, people["amina"].id, turn_id=1)
    assert (await stack.rows(rid))["TONERWEB"].state == "failed"
    assert await audit_of(stack.engine, rid, "fulfilment.retry_refused")

    # The site recovers; the buyer presses Retry: a new round places exactly one order.
    website.set_switches(rate_limit=0)
    await stack.press_retry(row.id, people["dan"].id, turn_id=2)
    await stack.press_retry(row.id, people["dan"].id, turn_id=2)  # the turn re-run after a crash: same job
    await stack.drain()
    row = (await stack.rows(rid))["TONERWEB"]
    assert row.state == "placed" and row.retries == 1 and row.attempts == 3
    assert [o["number"] for o in website.orders(po=row.idempotency_key)] == [row.external_order_id]
    assert await request_status(stack.engine, rid) == "ordered"
    await stack.press_retry(row.id, people["dan"].id, turn_id=3)  # pressing again: already placed
    assert any("already placed" in body_of(m) for m in sent_to(graph_api, DAN))


# ------------------------------------------------------------------------------------------ ERP failures


async def _erp_failure(stack: Stack, people: dict[str, Any], tryton: RunningTryton, graph_api: Any, items):
    rid = await approved_request(stack.engine, people, items)
    await stack.fulfil(rid)
    await stack.drain()
    row = (await stack.rows(rid))["OFFICEMART"]
    assert row.state == "failed", row
    assert await erp_orders(tryton, row.idempotency_key) == []  # nothing partial left in the ERP
    [detail] = [m for m in sent_to(graph_api, DAN) if "could not be placed" in body_of(m)]
    assert [button_ids(m) for m in sent_to(graph_api, DAN) if button_ids(m)] == [[f"retry:{row.id}"]]
    assert await request_status(stack.engine, rid) == "approved"
    return row, body_of(detail)


@pytest.mark.parametrize("stack_overrides", [{"ERP_PASSWORD": "not-the-password-42"}])
async def test_wrong_erp_password_fails_at_once_clearly(people, stack, tryton_server, graph_api):
    row, told = await _erp_failure(stack, people, tryton_server, graph_api, ERP_ITEMS)
    assert row.attempts == 1  # not retryable
    assert "Reason: ERP:" in told and ("password" in told.lower() or "login" in told.lower())


async def test_erp_down_retries_then_reports(people, stack, tryton_server, graph_api, database_url, redis_url, moto_s3):
    dead = f"http://127.0.0.1:{free_port()}"
    values = settings_values(tryton_server, graph_api, moto_s3, f"procure:fulfil:{uuid.uuid4().hex[:8]}", ERP_URL=dead)
    async with open_stack(database_url, redis_url, values) as down:
        row, told = await _erp_failure(down, people, tryton_server, graph_api, ERP_ITEMS)
    assert row.attempts == 3  # FULFILMENT_MAX_TRIES
    assert "Reason: ERP:" in told and "after 3 attempts" in told
    assert len(await audit_of(stack.engine, row.request_id, "fulfilment.attempt_failed")) == 2


async def test_unknown_erp_product_fails_and_leaves_nothing(people, stack, tryton_server, graph_api):
    async with stack.engine.begin() as conn:  # in our catalogue, not in the ERP
        await conn.execute(
            catalog_items.insert().values(
                sku="PAP-NEW-90",
                name="A4 paper 90gsm",
                unit="box",
                unit_price=Decimal("30"),
                currency="USD",
                supplier="OFFICEMART",
            )
        )
    row, told = await _erp_failure(stack, people, tryton_server, graph_api, [*ERP_ITEMS, ("PAP-NEW-90", "1")])
    assert row.attempts == 1
    assert "PAP-NEW-90" in told


# ----------------------------------------------------------------------------------------------- CLI


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_cli_suppliers_add_and_list(database_url, redis_url, data_dir, clean):
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, DATA_DIR=str(data_dir), LOG_LEVEL="WARNING")
    added = _cli(
        env,
        "suppliers",
        "add",
        "--code",
        "tonerweb",
        "--name",
        "TonerWeb",
        "--channel",
        "website",
        "--url",
        "http://127.0.0.1:8090/",
        "--account",
        ACCOUNT,
    )
    assert added.returncode == 0, added.stderr
    # Refused before touching the database (in-process: no subprocess needed).
    refused = CliRunner().invoke(cli_app, ["suppliers", "add", "--code", "X", "--name", "X", "--channel", "fax"])
    assert refused.exit_code == 2 and "erp or website" in refused.output
    listed = _cli(env, "suppliers", "list")
    assert listed.stdout.split("\n")[0].split("\t") == [
        "TONERWEB",
        "TonerWeb",
        "website",
        "sandbox_shop",
        "http://127.0.0.1:8090",
        ACCOUNT,
    ]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


async def test_cli_sandbox_supplier_and_erp_serve(served, tmp_path, tryton_server):
    shop_port, erp_port = free_port(), free_port()
    served.append(
        subprocess.Popen(
            [sys.executable, "-m", "server.cli", "sandbox", "supplier", "--port", str(shop_port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    # `procure erp serve` on a copy of the session's prepared database.
    db_dir = tmp_path / "tryton" / "db"
    db_dir.mkdir(parents=True)
    (db_dir / f"{tryton_server.database}.sqlite").write_bytes(tryton_server.sqlite_path.read_bytes())
    env = dict(os.environ, DATA_DIR=str(tmp_path), ERP_DATABASE=tryton_server.database, LOG_LEVEL="WARNING")
    served.append(
        subprocess.Popen(
            [sys.executable, "-m", "server.cli", "erp", "serve", "--port", str(erp_port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    )

    async def shop_up() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as c:
                return (await c.get(f"http://127.0.0.1:{shop_port}/_admin/health")).status_code == 200
        return False

    await await_for(shop_up, timeout=30, interval=0.2)
    client = TrytonClient(
        f"http://127.0.0.1:{erp_port}", tryton_server.database, tryton_server.login, tryton_server.password
    )

    async def erp_up() -> bool:
        with contextlib.suppress(Exception):
            await client.login()
            return True
        return False

    try:
        await await_for(erp_up, timeout=60, interval=0.5)
    finally:
        await client.aclose()
    served[1].send_signal(signal.SIGTERM)
    assert served[1].wait(20) == 0


# --------------------------------------------------------------------------------------------- structure


def test_tools_import_no_worker_framework() -> None:
    """``tools`` ask for a retry with their own exception; only ``server`` knows arq."""
    import ast

    offenders = []
    for path in sorted((ROOT / "tools").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "arq" or n.startswith("arq.") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


async def test_retry_later_becomes_arq_retry() -> None:
    """The job maps the tools' :class:`RetryLater` to ``arq.Retry`` with the same deferral."""
    from arq import Retry

    from server.worker import jobs as fulfilment_jobs
    from tools.fulfilment import RetryLater

    class Busy:
        async def place(self, fulfilment_id: int, *, job_try: int = 1) -> str:
            raise RetryLater(2.5)

    services = SimpleNamespace(extras={"fulfiller": Busy()})
    with pytest.raises(Retry) as caught:
        await fulfilment_jobs.place_fulfilment({"services": services, "job_try": 1}, 7)
    assert caught.value.defer_score == 2500
