"""LLM intake node: reads what the rules left unresolved by calling the role's intake tools.

Called only when a model is configured and rules left text unresolved, with the last
``CONTEXT_WINDOW_MESSAGES`` messages and the static prompt ``prompts/intake.md``. The model sees the turn, the
draft, the open questions (``state["missing"]`` and the draft's typed slots) and the catalogue candidates
retrieved for the unresolved phrases, with their pack sizes. Every call's token usage (``usage_metadata``) is
recorded with the prompt version. A reply that is not a valid tool call, names a tool the role does not have,
or carries arguments that fail validation is refused and logged as a whole: nothing is written and the person
is asked to rephrase. Read-only role lookups (``explain_request``...) run with the Context's identity and their
results are sent to the person as templated text, never as model prose.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime
from pydantic import ValidationError
from sqlalchemy import insert
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from core.db import llm_usage
from core.domain import Draft, Line, State
from nodes import draft as D
from nodes.commands import render_request, request_row
from nodes.common import add_note, catalog_of, engine_of, message_time, record, user_of
from nodes.compose import t
from prompts import INTAKE_PROMPT_VERSION, load_prompt
from tools.extraction.units import convert, pack_size
from tools.intake_tools import LOOKUP_TOOLS, ROLE_TOOLS, SCHEMAS, LookupResult, run_lookup, schema_tokens, tools_for
from tools.tokens import count_tokens

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

log = logging.getLogger(__name__)
MAX_CALLS_PER_TURN = 2
#: Each window message is cut to this many characters for the model (keeps a full window within budget).
WINDOW_CHARS = 80
#: At most this many unresolved texts of at most this many characters go to the model.
UNRESOLVED_MAX, UNRESOLVED_CHARS = 2, 200
#: At most this many draft lines are shown to the model (a longer draft is shown by its first lines).
DRAFT_LINES_MAX = 10
#: At most this many catalogue candidates and open questions are shown to the model.
CANDIDATES_MAX, OPEN_MAX = 5, 4
#: Characters of a draft line's description shown: matched lines are known by SKU, free-text ones by words.
DESC_SKU_CHARS, DESC_FREE_CHARS = 24, 40
#: Documented prompt budget: tokens (o200k_base) of the largest intake prompt, system + context + tool schemas.
PROMPT_TOKEN_BUDGET = 1500
#: Tokens a chat message costs beyond its content (role and separators; OpenAI's counting guidance).
PER_MESSAGE = 4


class UsageRecord(TypedDict):
    """Token usage of one LLM call, as kept on :attr:`graphs.context.Context.usage`.

    Fields:
        input_tokens: prompt tokens the provider counted (``usage_metadata``; 0 when it reports none).
        output_tokens: completion tokens the provider counted.
        outcome: ``ok`` (applied) or ``refused`` (not a valid tool call; nothing written).
    """

    input_tokens: int
    output_tokens: int
    outcome: str


class RefusedToolCall(ValueError):
    """The model's reply was not an acceptable set of tool calls."""


def _candidate_row(item: Any) -> str:
    """``SKU | name | unit | price | 24 piece per pack`` (the pack size read from the item's name, if it states one)."""
    pack = pack_size(item)
    row = f"{item.sku} | {item.name[:40]} | {item.unit} | {item.unit_price.amount}"
    return row + (f" | {pack.count.normalize():f} {pack.unit} per {item.unit}" if pack else "")


def open_questions(state: State) -> list[str]:
    """What the agent is waiting for: the draft's typed slots if any, else the open question kinds.

    Slots (``draft["slots"]``) are read defensively: a list of ``{"kind": "item"|"quantity"|"site"|"needed_by"|
    "price_estimate", "line": index|None, ...}``; anything else is skipped. Returns at most :data:`OPEN_MAX`.
    """
    draft = state.get("draft") or {}
    rows: list[str] = []
    slots = draft.get("slots") if isinstance(draft, dict) else None
    for slot in slots if isinstance(slots, list) else []:
        if not isinstance(slot, dict) or not isinstance(slot.get("kind"), str):
            continue
        line = slot.get("line")
        where = f" line {line + 1}" if isinstance(line, int) and not isinstance(line, bool) else ""
        skus = [str(s) for s in slot.get("candidates") or slot.get("skus") or [] if isinstance(s, str)][:4]
        rows.append(f"{slot['kind'][:20]}{where}" + (f" ({', '.join(skus)})" if skus else ""))
    if not rows:
        rows = [str(k)[:20] for k in state.get("missing") or [] if k != "confirm"]
    return rows[:OPEN_MAX]


def build_messages(state: State, ctx: Context, today: date, *, reserve: int = 0) -> list[BaseMessage]:
    """The model input: static system prompt, then the recent window, draft, open questions and candidates.

    Args:
        state: the procurement State.
        ctx: the run's Context (catalogue, sites, window size).
        today: the date relative dates are read against.
        reserve: tokens the bound tool schemas take (:func:`tools.intake_tools.schema_tokens`). When given, the
            oldest conversation lines are left out until system + context + ``reserve`` fit
            :data:`PROMPT_TOKEN_BUDGET` (tokens, o200k_base, :data:`PER_MESSAGE` per message); the draft, open
            questions, candidates and unresolved text are always kept.
    """
    # The person's own words only: our replies are templates whose content the DRAFT section already carries.
    # This turn's messages that are shown in full under UNRESOLVED are not repeated in the conversation.
    full = state.get("window") or []
    turn_start = len(full) - len(state.get("inbound") or [])
    shown = set((state.get("unresolved") or [])[-UNRESOLVED_MAX:])
    window = [
        m
        for i, m in enumerate(full)
        if i >= len(full) - ctx.context_window
        and m.get("role") == "user"
        and not (i >= turn_start and m.get("text") in shown)
    ]
    lines = D.lines_of(state.get("draft"))
    draft_rows = [
        f"{i}. {ln.sku or '-'} | {ln.description[: DESC_SKU_CHARS if ln.sku else DESC_FREE_CHARS]}"
        f" | {ln.quantity} {ln.unit}"
        + (f" | which: {','.join(ln.candidates[:3])}" if ln.candidates and not ln.sku else "")
        for i, ln in enumerate(lines[:DRAFT_LINES_MAX], 1)
    ]
    unresolved = [u[:UNRESOLVED_CHARS] for u in (state.get("unresolved") or [])[-UNRESOLVED_MAX:]]
    # Candidates for the unresolved phrases, then for draft lines still without an item.
    phrases = unresolved + [ln.description for ln in lines[:DRAFT_LINES_MAX] if ln.sku is None][:2]
    candidates: list[str] = []
    for text in phrases:
        for item, _score in ctx.catalog.search(text, limit=5) if ctx.catalog else []:
            row = _candidate_row(item)
            if row not in candidates:
                candidates.append(row)
    draft = state.get("draft") or {}
    head = (
        f"TODAY: {today.isoformat()}\nSITES: {', '.join(ctx.sites)}\n"
        f"DRAFT (site={draft.get('site') or '-'}, needed_by={draft.get('needed_by') or '-'}):\n"
        + ("\n".join(draft_rows) or "(empty)")
        + "\nOPEN: "
        + ("; ".join(open_questions(state)) or "-")
        + "\nCANDIDATES:\n"
        + ("\n".join(candidates[:CANDIDATES_MAX]) or "(none)")
        + "\nCONVERSATION:\n"
    )
    tail = "\nUNRESOLVED:\n" + "\n".join(unresolved)
    convo_lines = [f"- {m['text'][:WINDOW_CHARS]}" for m in window]
    system = load_prompt("intake.md")
    body = head + "\n".join(convo_lines) + tail
    if reserve:
        fixed = count_tokens(system) + 2 * PER_MESSAGE + reserve
        while convo_lines and fixed + count_tokens(body) > PROMPT_TOKEN_BUDGET:
            convo_lines.pop(0)
            body = head + "\n".join(convo_lines) + tail
    return [SystemMessage(system), HumanMessage(body)]


async def _record_usage(ctx: Context, msg: AIMessage, outcome: str, state: State) -> tuple[int, int]:
    usage = getattr(msg, "usage_metadata", None) or {}
    tin, tout = int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)
    if ctx.engine is not None:
        async with ctx.engine.begin() as conn:
            await conn.execute(
                insert(llm_usage).values(
                    thread_id=f"{ctx.provider}:{ctx.chat_id}",
                    turn_id=ctx.turn_id,
                    request_id=(state.get("draft") or {}).get("request_id") or state.get("active_request_id"),
                    node="call_model",
                    model=ctx.model_name,
                    prompt_version=INTAKE_PROMPT_VERSION,
                    input_tokens=tin,
                    output_tokens=tout,
                    outcome=outcome,
                )
            )
    ctx.usage.append({"input_tokens": tin, "output_tokens": tout, "outcome": outcome})
    return tin, tout


def validate_calls(msg: AIMessage, allowed: tuple[str, ...]) -> list[tuple[str, Any, str]]:
    """Check every tool call: known to the role, arguments valid. Returns ``(name, args model, call id)``.

    Raises:
        RefusedToolCall: no tool call, an unknown or forbidden tool, or invalid arguments.
    """
    calls = getattr(msg, "tool_calls", None) or []
    if not calls or getattr(msg, "invalid_tool_calls", None):
        raise RefusedToolCall("reply is not a valid tool call")
    out = []
    for c in calls:
        name = c.get("name")
        if name not in allowed or name not in SCHEMAS:
            raise RefusedToolCall(f"tool {name!r} is not available to this role")
        try:
            args = SCHEMAS[name].model_validate(c.get("args") or {})
        except ValidationError as exc:
            raise RefusedToolCall(f"invalid arguments for {name}: {exc.errors()[0]['msg']}") from exc
        out.append((name, args, c.get("id") or name))
    return out


def apply_calls(
    draft: Draft | None, calls: list[tuple[str, Any, str]], ctx: Context, today: date
) -> tuple[Draft, list[str]]:
    """Apply validated calls to a copy of the draft; returns the draft and question kinds asked.

    Raises:
        RefusedToolCall: a SKU not in the catalogue, a line number out of range, an unknown site, a past date.
    """
    d = D.with_lines(draft, D.lines_of(draft))
    asked: list[str] = []
    for name, a, _ in calls:
        lines = D.lines_of(d)
        if name == "search_catalog" or name in LOOKUP_TOOLS:
            continue
        if name == "add_line":
            ln = _line(ctx, a.sku, a.description, Decimal(a.quantity), a.unit)
            d = D.add_lines(d, [ln])
        elif name in ("update_line", "remove_line"):
            if not 1 <= a.line_number <= len(lines):
                raise RefusedToolCall(f"line {a.line_number} does not exist")
            i = a.line_number - 1
            if name == "remove_line":
                lines.pop(i)
            else:
                old = lines[i]
                lines[i] = _line(
                    ctx,
                    a.sku or old.sku,
                    old.description,
                    Decimal(a.quantity) if a.quantity else old.quantity,
                    a.unit or old.unit,
                )
            d = D.with_lines(d, lines)
        elif name == "set_site":
            site = next((s for s in ctx.sites if s.lower() == a.site.strip().lower()), None)
            if site is None:
                raise RefusedToolCall(f"unknown site {a.site!r}")
            d = D.set_field(d, site=site)
        elif name == "set_needed_by":
            when = date.fromisoformat(a.date)
            if when < today:
                raise RefusedToolCall("date in the past")
            d = D.set_field(d, needed_by=when)
        elif name == "ask_clarification":
            if a.kind == "clarify_item":
                catalog = catalog_of(ctx)
                found = [(s, item) for s in a.skus if (item := catalog.get(s)) is not None]
                skus = [s for s, _ in found]
                if len(skus) < 2:
                    raise RefusedToolCall("clarify_item needs at least two catalogue SKUs")
                first = found[0][1]
                d = D.add_lines(
                    d, [Line(first.name.split("(")[0].strip(), Decimal(1), first.unit, None, None, 0.4, skus)]
                )
            asked.append(a.kind)
    return d, asked


def _line(ctx: Context, sku: str | None, description: str, quantity: Decimal, unit: str) -> Line:
    if sku is None:
        return Line(description, quantity, unit.lower(), None, None, 0.3)
    item = ctx.catalog.get(sku) if ctx.catalog else None
    if item is None:
        raise RefusedToolCall(f"SKU {sku!r} is not in the catalogue")
    conv = convert(quantity, unit.lower(), item)
    if conv.unit != item.unit:
        return Line(item.name, conv.quantity, conv.unit, item.sku, None, 0.45)
    return Line(item.name, conv.quantity, item.unit, item.sku, item.unit_price, 0.9)


async def call_model(state: State, runtime: Runtime[Context]) -> State:
    """Ask the configured model to turn the unresolved text into tool calls, validate and apply them."""
    ctx = runtime.context
    user = user_of(runtime)
    inbound = state.get("inbound") or [{}]
    today = message_time(inbound[-1], ctx).date()
    allowed = ROLE_TOOLS[user.role]
    if ctx.chat_model is None:
        raise RuntimeError("call_model needs a chat model in the run context")
    model = ctx.chat_model.bind_tools(tools_for(user.role))
    messages = build_messages(state, ctx, today, reserve=schema_tokens(user.role))
    calls_made = 0
    try:
        while True:
            calls_made += 1
            reply = await model.ainvoke(messages)
            if not isinstance(reply, AIMessage):
                raise RefusedToolCall("model returned no message")
            try:
                calls = validate_calls(reply, allowed)
                searches = [c for c in calls if c[0] == "search_catalog"]
                if searches and len(searches) == len(calls) and calls_made < MAX_CALLS_PER_TURN:
                    await _record_usage(ctx, reply, "ok", state)
                    messages.append(reply)
                    for _, a, cid in searches:
                        found = ctx.catalog.search(a.query, limit=5) if ctx.catalog else []
                        rows = "\n".join(_candidate_row(i) for i, _s in found)
                        messages.append(ToolMessage(rows or "(no match)", tool_call_id=cid))
                    continue
                new_draft, asked = apply_calls(state.get("draft"), calls, ctx, today)
                looked_up = await _run_lookups(runtime, calls)
            except RefusedToolCall:
                await _record_usage(ctx, reply, "refused", state)
                raise
            await _record_usage(ctx, reply, "ok", state)
            break
    except (RefusedToolCall, ValueError) as exc:
        log.warning("LLM reply refused: %s", exc)
        await record(
            runtime, "llm.refused", details={"reason": str(exc)[:300], "prompt_version": INTAKE_PROMPT_VERSION}
        )
        return {
            "llm_calls": (state.get("llm_calls") or 0) + calls_made,
            "notes": add_note(state, t("rephrase")),
            "unresolved": [],
        }
    await record(
        runtime,
        "llm.applied",
        details={"tools": [c[0] for c in calls], "prompt_version": INTAKE_PROMPT_VERSION, "model": ctx.model_name},
    )
    update: State = {
        "llm_calls": (state.get("llm_calls") or 0) + calls_made,
        "unresolved": [],
        "questions": [*(state.get("questions") or []), *[k for k in asked if k != "not_a_request"]],
    }
    writes = [c for c in calls if c[0] not in LOOKUP_TOOLS and c[0] != "search_catalog"]
    if looked_up:
        update["notes"] = [*(state.get("notes") or []), *looked_up]
    if "not_a_request" in asked and len(calls) == 1:
        update["notes"] = add_note(state, t("not_understood"))
    elif writes:
        update.update({"draft": new_draft, "show_summary": True})
    return update


async def _run_lookups(runtime: Runtime[Context], calls: list[tuple[str, Any, str]]) -> list[str]:
    """Run the reply's read-only role lookups as the Context's user; their texts for the person.

    Raises:
        RefusedToolCall: a lookup that is not the user's role's (checked again by ``run_lookup``).
    """
    ctx = runtime.context
    user = user_of(runtime)
    texts: list[str] = []
    for name, args, _ in calls:
        if name not in LOOKUP_TOOLS:
            continue
        try:
            res = await run_lookup(name, args, engine=engine_of(ctx), user=user)
        except PermissionError as exc:
            raise RefusedToolCall(str(exc)) from exc
        if res.refused is not None:
            await record(runtime, "llm.lookup_refused", details={"tool": name, "request": res.refused})
            texts.append(t("lookup_denied", number=res.refused))
        else:
            texts.append(await _render_lookup(res, ctx))
    return texts


async def _render_lookup(res: LookupResult, ctx: Context) -> str:
    """Templated text of a lookup's result (never model prose)."""
    if res.tool == "request_orders":
        from tools.fulfilment_view import orders_text

        return await orders_text(engine_of(ctx), res.requests[0])
    if res.single:
        return render_request(res.requests[0])
    if not res.requests:
        return t("pending_none") if res.tool == "list_pending_approvals" else t("lookup_none")
    header = t("pending_header") if res.tool == "list_pending_approvals" else t("lookup_requests_header")
    return header + "\n" + "\n".join(request_row(r, who=True) for r in res.requests)
