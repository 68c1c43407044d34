"""Per-role LLM tool sets: what each role has bound, and lookups that refuse data the role may not see.

The model is a fake that emits scripted tool calls; identity always comes from the run's Context, so a model
that asks for someone else's request gets the same "not found" as for a missing one (checked server-side).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool
from sqlalchemy import select

from core.db import audit_log
from core.domain import Line, Role
from core.repo import parse_catalog_csv
from graphs.context import Context
from nodes.llm_intake import PROMPT_TOKEN_BUDGET, build_messages, open_questions
from tests.support.fake_llm import ToolCallingFake, calls
from tests.support.harness import Company, button
from tests.support.paths import CATALOG_CSV
from tests.unit.nodes.test_prompt_budget import PER_MESSAGE_OVERHEAD, full_state
from tools import intake_tools as IT
from tools.catalog import CatalogIndex
from tools.tokens import count_tokens

DRAFT = {"search_catalog", "add_line", "update_line", "remove_line", "set_site", "set_needed_by", "ask_clarification"}
EXPECTED = {
    "requester": DRAFT | {"explain_request"},
    "approver": DRAFT | {"explain_request", "list_pending_approvals"},
    "buyer": DRAFT | {"explain_request", "request_orders"},
    "admin": DRAFT | {"find_requests", "request_orders"},
}
UNREADABLE = "can you tell me about that thing from before"


async def _ask(engine, user, *replies):
    """One turn whose unreadable text reaches the fake model; returns (outbound, fake, company)."""
    fake = ToolCallingFake(responses=list(replies))
    co = Company(engine, chat_model=fake)
    out = await co.turn(user, UNREADABLE)
    return out, fake, co


async def _submitted(engine, seeded) -> None:
    """PR-1: Amina's request (Nairobi), pending Brian's approval."""
    co = Company(engine)
    amina = seeded["amina"]
    await co.turn(amina, "10 boxes a4 paper for nairobi by friday")
    await co.turn(amina, button("confirm", amina.wa_id))


async def _audit(engine, action):
    async with engine.connect() as conn:
        return (await conn.execute(select(audit_log).where(audit_log.c.action == action))).all()


async def test_bound_tool_names_differ_per_role(engine, seeded):
    bound = {}
    for name in ("amina", "brian", "dan", "eve"):
        user = seeded[name]
        _, fake, _ = await _ask(engine, user, calls(("ask_clarification", {"kind": "not_a_request"})))
        bound[user.role.value] = {t.name for t in fake.bound}
    assert bound == EXPECTED
    assert len({frozenset(v) for v in bound.values()}) == 4  # four different tool sets
    assert not any("approve" in n or "reject" in n or "decide" in n for v in bound.values() for n in v)


async def test_requester_cannot_read_someone_elses_request(engine, seeded):
    await _submitted(engine, seeded)
    felix, amina = seeded["felix"], seeded["amina"]
    out, _, co = await _ask(engine, felix, calls(("explain_request", {"number": "PR-1"})))
    assert out[-1]["to"] == felix.wa_id and out[-1]["text"] == "I couldn't find *PR-1*."
    assert "paper" not in " ".join(m["text"] for m in out).lower()
    assert not co.last_state.get("draft")
    (refused,) = await _audit(engine, "llm.lookup_refused")
    assert refused.actor_id == felix.id and refused.details == {"tool": "explain_request", "request": "PR-1"}
    # the owner gets it
    out, _, _ = await _ask(engine, amina, calls(("explain_request", {"number": "pr 1"})))
    assert "*PR-1* (pending approval)" in out[-1]["text"] and "A4 copy paper" in out[-1]["text"]


async def test_requester_model_asking_for_another_roles_tool_is_refused(engine, seeded):
    await _submitted(engine, seeded)
    amina = seeded["amina"]
    for bad in ("list_pending_approvals", "request_orders", "find_requests"):
        args = {} if bad == "list_pending_approvals" else {"number": "PR-1"}
        out, _, _ = await _ask(engine, amina, calls((bad, args)))
        assert "rephrase" in out[-1]["text"], bad
        assert "Orders for" not in out[-1]["text"] and "Waiting" not in out[-1]["text"]
    assert len(await _audit(engine, "llm.refused")) == 3


async def test_approver_lists_only_own_pending_and_reads_only_assigned(engine, seeded):
    await _submitted(engine, seeded)
    brian, carol = seeded["brian"], seeded["carol"]
    out, _, _ = await _ask(engine, brian, calls(("list_pending_approvals", {})))
    assert "Waiting for your approval" in out[-1]["text"] and "PR-1" in out[-1]["text"]
    assert "Amina" in out[-1]["text"]
    out, _, _ = await _ask(engine, brian, calls(("explain_request", {"number": "PR-1"})))
    assert "*PR-1*" in out[-1]["text"] and "Approver: Brian Approver" in out[-1]["text"]
    # Carol approves other requests (higher limit) but is not PR-1's approver
    out, _, _ = await _ask(engine, carol, calls(("list_pending_approvals", {})))
    assert out[-1]["text"] == "Nothing is waiting for your approval."
    out, _, _ = await _ask(engine, carol, calls(("explain_request", {"number": "PR-1"})))
    assert out[-1]["text"] == "I couldn't find *PR-1*."


async def test_buyer_sees_orders_of_any_request(engine, seeded):
    await _submitted(engine, seeded)
    dan = seeded["dan"]
    out, _, co = await _ask(engine, dan, calls(("request_orders", {"number": "PR-1"})))
    assert "Orders for PR-1" in out[-1]["text"]
    assert not co.last_state.get("draft")
    out, _, _ = await _ask(engine, dan, calls(("request_orders", {"number": "PR-77"})))
    assert out[-1]["text"] == "I couldn't find *PR-77*."


async def test_admin_searches_all_requests(engine, seeded):
    await _submitted(engine, seeded)
    eve = seeded["eve"]
    out, _, _ = await _ask(engine, eve, calls(("find_requests", {"status": "pending_approval"})))
    assert "Requests found" in out[-1]["text"] and "PR-1" in out[-1]["text"] and "Amina" in out[-1]["text"]
    out, _, _ = await _ask(engine, eve, calls(("find_requests", {"site": "Mombasa"})))
    assert out[-1]["text"] == "I found nothing for that."
    out, _, _ = await _ask(engine, eve, calls(("find_requests", {"number": "PR-1"})))
    assert "*PR-1* (pending approval)" in out[-1]["text"]
    out, _, _ = await _ask(engine, eve, calls(("find_requests", {"status": "lost"})))
    assert "rephrase" in out[-1]["text"]  # arguments are validated before anything runs


async def test_lookup_rechecks_role_even_without_the_graph(engine, seeded):
    await _submitted(engine, seeded)
    amina = seeded["amina"]
    with pytest.raises(PermissionError):
        await IT.run_lookup("list_pending_approvals", IT.ListPendingApprovals(), engine=engine, user=amina)
    with pytest.raises(PermissionError):
        await IT.run_lookup("find_requests", IT.FindRequests(), engine=engine, user=seeded["dan"])
    res = await IT.run_lookup("explain_request", IT.ExplainRequest(number="PR-1"), engine=engine, user=seeded["felix"])
    assert res.refused == "PR-1" and res.requests == []


class LongestNames(CatalogIndex):
    """A catalogue whose search always returns the items with the longest names: the largest candidate list."""

    def search(self, query: str, limit: int = 5):
        return [(i, 50.0) for i in sorted(self.items, key=lambda i: -len(i.name))[:limit]]


def _prompt(state: dict, role: Role, catalog: CatalogIndex) -> tuple[int, str]:
    """Tokens of the prompt the node sends for ``role`` (system + context + bound tools), and its context text."""
    ctx = Context(catalog=catalog, sites=("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret"), context_window=20)
    msgs = build_messages(state, ctx, date(2026, 11, 18), reserve=IT.schema_tokens(role))
    tools = json.dumps([convert_to_openai_tool(t) for t in IT.tools_for(role)])
    assert count_tokens(tools) == IT.schema_tokens(role)
    return sum(count_tokens(str(m.content)) + PER_MESSAGE_OVERHEAD for m in msgs) + count_tokens(tools), str(
        msgs[1].content
    )


def test_every_roles_full_prompt_fits_the_budget():
    items = parse_catalog_csv(CATALOG_CSV.read_text())
    sizes = {role.value: _prompt(full_state(), role, CatalogIndex(items))[0] for role in Role}
    # the worst case: a full window, every open question, and the longest catalogue candidates
    worst = {**full_state(), "missing": ["clarify_item", "quantity", "site", "needed_by"]}
    worst["window"] = [{"role": "user", "text": f"message {i} " + "x" * 120} for i in range(20)]
    sized = {role.value: _prompt(worst, role, LongestNames(items)) for role in Role}
    print(f"\nintake prompt tokens at a full window, per role: {sizes}; with the longest candidates and every open "
          f"question: { {r: n for r, (n, _) in sized.items()} } (budget {PROMPT_TOKEN_BUDGET})")  # fmt: skip
    assert max(sizes.values()) <= PROMPT_TOKEN_BUDGET
    for n, body in sized.values():
        assert n <= PROMPT_TOKEN_BUDGET
        assert "message 19 " in body and "CANDIDATES:\n(none)" not in body  # newest words and candidates kept
    assert "message 0 " not in sized["admin"][1]  # the oldest conversation lines made room


def test_model_sees_open_questions_slots_and_pack_sizes():
    catalog = CatalogIndex(parse_catalog_csv(CATALOG_CSV.read_text()))
    ctx = Context(catalog=catalog, sites=("Nairobi",), context_window=20)
    lines = [
        Line("A4 copy paper", Decimal(15), "ream", None, None, 0.4, ["PAP-A4-80", "PAP-A3-80"]).to_dict(),
        Line("gloves", Decimal(12), "pair", None, None, 0.3).to_dict(),
    ]
    slots = [
        {"kind": "item", "line": 0, "candidates": ["PAP-A4-80", "PAP-A3-80"]},
        {"kind": "site", "line": None},
        "garbage",
        {"line": 1},
    ]
    state = {
        "window": [{"role": "user", "text": "15 reams of A4"}, {"role": "user", "text": "white copy paper, the 80gsm"}],
        "draft": {"lines": lines, "slots": slots},
        "missing": ["clarify_item", "site"],
        "unresolved": ["white copy paper, the 80gsm"],
    }
    assert open_questions(state) == ["item line 1 (PAP-A4-80, PAP-A3-80)", "site"]
    body = str(build_messages(state, ctx, date(2026, 11, 18))[1].content)
    assert "OPEN: item line 1 (PAP-A4-80, PAP-A3-80); site" in body
    assert "PAP-A4-80 | A4 copy paper 80gsm (box of 5 reams) | box | 24.50 | 5 ream per box" in body
    assert "which: PAP-A4-80,PAP-A3-80" in body
    # without slots the open question kinds are shown
    body = str(build_messages({**state, "draft": {"lines": lines}}, ctx, date(2026, 11, 18))[1].content)
    assert "OPEN: clarify_item; site" in body
