"""The intake prompt's size: the largest prompt the LLM node can send stays within the documented budget.

Measured with tiktoken (o200k_base, offline copy): system prompt + context message + every tool schema bound
for the role. A full window is CONTEXT_WINDOW_MESSAGES messages at the longest the node passes on.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from langchain_core.utils.function_calling import convert_to_openai_tool

from core.domain import Line, Money, Role
from core.repo import parse_catalog_csv
from graphs.context import Context
from nodes.llm_intake import PROMPT_TOKEN_BUDGET, build_messages
from tests.support.paths import CATALOG_CSV
from tools.catalog import CatalogIndex
from tools.intake_tools import tools_for
from tools.tokens import count_tokens

PER_MESSAGE_OVERHEAD = 4  # role and separators per chat message (OpenAI's counting guidance)


def prompt_tokens(state: dict, window: int = 20) -> int:
    catalog = CatalogIndex(parse_catalog_csv(CATALOG_CSV.read_text()))
    ctx = Context(catalog=catalog, sites=("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret"), context_window=window)
    msgs = build_messages(state, ctx, date(2026, 11, 18))
    tools = json.dumps([convert_to_openai_tool(t) for t in tools_for(Role.REQUESTER)])
    return sum(count_tokens(str(m.content)) + PER_MESSAGE_OVERHEAD for m in msgs) + count_tokens(tools)


def full_state() -> dict:
    long = "we need the usual printer supplies and some cleaning stuff for the new office on the third floor " * 8
    lines = [
        Line(
            f"item {i} with a fairly long description of what it is",
            Decimal(i + 1),
            "piece",
            "STP-STD",
            Money(Decimal("7.80"), "USD"),
        ).to_dict()
        for i in range(25)
    ]
    return {
        "window": [{"role": "user" if i % 2 else "assistant", "text": long} for i in range(40)],
        "draft": {"lines": lines, "site": "Nairobi", "needed_by": "2026-11-20"},
        "unresolved": [long, long, long, long],
    }


def test_prompt_budget_full_window_with_all_tools():
    empty = prompt_tokens({"window": [], "draft": None, "unresolved": ["need printer ink"]})
    full = prompt_tokens(full_state())
    print(f"\nintake prompt tokens: empty window {empty}, full window {full} (budget {PROMPT_TOKEN_BUDGET})")
    assert empty < full <= PROMPT_TOKEN_BUDGET
