"""Turn start and end: ``ingest`` resets the turn, ``respond`` validates the draft and composes the reply."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langgraph.runtime import Runtime

from core.domain import CatalogItem, Draft, DraftSnapshot, Line, State, WindowEntry
from core.policy import CONFIDENCE_ASK, free_text_lines, missing_fields, total_of
from nodes import draft as D
from nodes.common import message_time
from nodes.compose import (
    button_title,
    buttons_msg,
    fmt_amount,
    fmt_date,
    fmt_qty,
    list_msg,
    render_lines,
    render_summary,
    t,
    text_msg,
)
from tools.extraction.units import pack_size
from tools.requests import number_of

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

#: Interactive bodies are limited to 1,024 characters; longer summaries go out as text first.
INTERACTIVE_BODY_MAX = 1024


def ingest(state: State) -> State:
    """Start a turn: queue the turn's messages, add them to the window, clear last turn's outputs."""
    inbound = state.get("inbound") or []
    window: list[WindowEntry] = [
        {"role": "user", "text": m.get("text") or f"[{m.get('kind')}]"} for m in inbound if m.get("kind") != "reaction"
    ]
    return {
        "pending": list(range(len(inbound))),
        "window": window,
        "outbound": [],
        "effects": [],
        "notes": [],
        "questions": [],
        "unresolved": [],
        "show_summary": False,
        "llm_calls": 0,
    }


def _questions(draft: Draft, missing: list[str], ctx: Context) -> tuple[list[str], dict[str, Any] | None]:
    """Question texts for what is missing, and an optional list message for an ambiguous line."""
    lines = D.lines_of(draft)
    texts: list[str] = []
    pick: dict[str, Any] | None = None
    for kind in missing:
        if kind == "clarify_item":
            idx, ln = next((i, x) for i, x in enumerate(lines) if x.sku is None and x.candidates)
            rows = []
            for sku in ln.candidates[:10]:
                item = ctx.catalog.get(sku) if ctx.catalog else None
                desc = t("pick_row", name=item.name, price=str(item.unit_price), unit=item.unit) if item else sku
                rows.append((f"pick:{idx}:{sku}", sku, desc))
            named = [ctx.catalog.get(s) for s in ln.candidates[:3]] if ctx.catalog else []
            names = t("clarify_or").join(item.name for item in named if item)
            texts.append(t("ask_clarify", description=ln.description) + (t("clarify_names", names=names) if names else ""))
            pick = {"rows": rows}
        elif kind == "quantity":
            n, ln = next(
                (i + 1, x) for i, x in enumerate(lines) if x.sku and x.unit_price is None and x.confidence < 0.6
            )
            texts.append(_quantity_question(n, ln, ctx.catalog.get(ln.sku or "") if ctx.catalog else None))
        elif kind == "site":
            texts.append(t("ask_site", sites=", ".join(ctx.sites)))
        elif kind == "needed_by":
            nb = D.needed_by_of(draft)
            texts.append(t("ask_needed_by_past", needed_by=nb.isoformat()) if nb else t("ask_needed_by"))
        elif kind == "lines":
            texts.append(t("ask_lines"))
    return texts, pick


def _quantity_question(n: int, ln: Line, item: CatalogItem | None) -> str:
    """The question for a line whose amount is not yet in the catalogue unit (no internals shown)."""
    unit = item.unit if item else ln.unit
    asked = fmt_amount(f"{fmt_qty(ln.quantity)} {ln.unit}")
    if ln.proposal is not None:
        pack = pack_size(item) if item else None
        covers = unit
        if pack is not None:
            covers = fmt_amount(f"{fmt_qty(Decimal(ln.proposal) * pack.count)} {pack.unit}")
        return t("ask_quantity_proposal", n=n, asked=asked, unit=unit, description=ln.description,
                 proposal=ln.proposal, covers=covers)  # fmt: skip
    if ln.unit.lower() != unit.lower():
        return t("ask_quantity_unit", n=n, asked=asked, unit=unit, description=ln.description)
    return t("ask_quantity_count", n=n, unit=unit, description=ln.description)


def _free_text_note(lines: list[Line]) -> str | None:
    """One sentence per free-text line the person has not seen marked yet, or ``None``."""
    fresh = [ln for ln in free_text_lines(lines) if ln.confidence < CONFIDENCE_ASK]
    if not fresh:
        return None
    return "\n".join(t("ask_unknown", description=ln.description, short=ln.description.split()[-1]) for ln in fresh)


def _stale_choice(to: str, previous: DraftSnapshot, ctx: Context) -> dict[str, Any]:
    """The old draft's lines with the choice: add the new lines to it, or keep them apart (old one dropped)."""
    lines = D.lines_of(previous)
    stamp = previous.get("touched_at")
    when = fmt_date(datetime.fromisoformat(stamp).date()) if stamp else "—"
    body = t("stale_draft", when=when, lines="\n".join(render_lines(lines)))
    return buttons_msg(to, body[:INTERACTIVE_BODY_MAX], [("stale:add", button_title("stale_add")),
                                                         ("stale:new", button_title("stale_new"))])  # fmt: skip


async def respond(state: State, runtime: Runtime[Context]) -> State:
    """Compose the turn's reply: notes, then (if the draft changed) the summary with questions or Confirm."""
    ctx = runtime.context
    to = ctx.chat_id
    inbound = state.get("inbound") or [{}]
    today = message_time(inbound[-1], ctx).date()
    notes = list(state.get("notes") or [])
    outbound = list(state.get("outbound") or [])
    questions: list[str] = list(state.get("questions") or [])
    draft = state.get("draft")
    missing: list[str] = []

    if (state.get("unresolved") or []) and not state.get("show_summary") and state.get("llm_calls", 0) == 0:
        notes.append(t("not_understood"))

    if draft and not draft.get("site") and ctx.user is not None and ctx.user.site:
        # The person's usual site is the default; they can still say "deliver to Mombasa instead".
        draft = D.set_field(draft, site=ctx.user.site)
    awaiting = state.get("awaiting")
    previous = draft.get("previous") if draft else None
    stale_pending = bool(previous) and awaiting is not None and awaiting.get("kind") == "stale_draft"
    if draft and state.get("show_summary") and stale_pending:
        # The person first chooses what to do with the idle draft; questions about the new lines wait for that.
        lines = D.lines_of(draft)
        header = t("draft_header")
        summary = render_summary(header, lines, draft.get("site"), D.needed_by_of(draft), total_of(lines, ctx.currency))
        outbound.append(text_msg(to, "\n\n".join([*notes, summary])))
        notes = []
    elif draft and state.get("show_summary"):
        lines = D.lines_of(draft)
        nb = D.needed_by_of(draft)
        missing = missing_fields(lines, draft.get("site"), nb, today=today)
        amends = draft.get("request_id")
        header = t("change_header", number=number_of(amends)) if amends else t("draft_header")
        summary = render_summary(header, lines, draft.get("site"), nb, total_of(lines, ctx.currency))
        q_texts, pick = _questions(draft, missing, ctx)
        questions += [m for m in missing if m != "lines"] + (["lines"] if "lines" in missing else [])
        free_note = _free_text_note(lines)
        if free_note:
            # Free-text lines are told once and then confirmed with the rest (no extra "ok" round).
            q_texts.insert(0, free_note)
            questions.append("unknown_item")
            for ln in free_text_lines(lines):
                ln.confidence = max(ln.confidence, CONFIDENCE_ASK)
            draft = D.with_lines(draft, lines)
        if notes:
            outbound.append(text_msg(to, "\n\n".join(notes)))
            notes = []
        if missing:
            body = summary + "\n\n" + "\n".join(q_texts)
            if pick:
                if len(body) > INTERACTIVE_BODY_MAX:
                    outbound.append(text_msg(to, summary))
                    body = "\n".join(q_texts)[:INTERACTIVE_BODY_MAX]
                outbound.append(list_msg(to, body, button_title("pick_list"), pick["rows"]))
            else:
                outbound.append(text_msg(to, body))
        else:
            body = summary + "\n\n" + "\n".join([*q_texts, t("ask_confirm")])
            if len(body) > INTERACTIVE_BODY_MAX:
                outbound.append(text_msg(to, summary))
                body = t("ask_confirm")
            buttons = [("confirm", button_title("confirm")), ("cancel_draft", button_title("cancel_draft"))]
            outbound.append(buttons_msg(to, body, buttons))
    if previous and stale_pending:
        outbound.append(_stale_choice(to, previous, ctx))
        questions.append("stale_draft")
    if notes:
        outbound.append(text_msg(to, "\n\n".join(notes)))
    if draft and (state.get("show_summary") or draft is not state.get("draft")):
        # Stamp when the draft was last worked on: an idle draft is shown before new text goes into it.
        draft = D.set_field(draft, touched_at=message_time(inbound[-1], ctx).isoformat())
    window: list[WindowEntry] = [
        {"role": "assistant", "text": m["text"][:500]} for m in outbound if m.get("to") == to
    ]
    update: State = {
        "outbound": outbound,
        "missing": missing,
        "questions": questions,
        "notes": [],
        "window": window,
    }
    if draft is not state.get("draft"):
        update["draft"] = draft
    return update
