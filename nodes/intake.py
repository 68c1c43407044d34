"""Intake nodes: free text into the draft (rules first), confirmations, media, submission."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

from langgraph.runtime import Runtime
from sqlalchemy import update

from core.db import llm_usage
from core.domain import Awaiting, Draft, Inbound, Line, State
from core.policy import NoApproverError, missing_fields
from nodes import draft as D
from nodes.common import add_note, catalog_of, current, engine_of, message_time, record, user_of
from nodes.compose import t
from nodes.routing import DENY_WORDS
from tools import requests as R
from tools.catalog import tokens
from tools.catalog.aliases import learn as learn_alias
from tools.catalog.text import has_digit
from tools.extraction import extract, parse_edits

if TYPE_CHECKING:  # the Context type only: nodes never import the graphs layer at run time
    from graphs.context import Context

#: Inbound kinds with a name of their own in the "can't read that yet" reply (``media_<kind>`` in replies.toml).
_MEDIA_NAMED = frozenset({"image", "audio", "voice", "video", "document", "sticker", "location", "contacts", "order"})


# Request numbers and phone numbers are identifiers, never quantities ("PR-7", "+254 711 000 111").
_IDENTIFIERS = re.compile(r"\bpr[-\s#]?\d{1,9}\b|\+?\d[\d\s-]{8,}\d", re.IGNORECASE)


def for_extraction(text: str) -> str:
    """The message with request numbers and phone numbers blanked out before rules read quantities."""
    return _IDENTIFIERS.sub(" ", text)


def _today(msg: Inbound, ctx: Context) -> date:
    return message_time(msg, ctx).date()


async def interpret_text(state: State, runtime: Runtime[Context]) -> State:
    """Read one free-text message with the rule extractor: corrections to the draft, or new lines/site/date.

    A message the rules cannot read at all goes to ``unresolved`` (for the LLM, or a "please rephrase").
    Corrections to an already submitted request re-open its approval (a new revision). A draft left idle
    longer than ``DRAFT_TTL_HOURS`` does not swallow the message: it is read as a new draft, and the old one is
    shown with the choice to add the new lines to it or keep them apart (see :func:`resolve_stale`).
    """
    ctx = runtime.context
    msg, _ = current(state)
    draft = state.get("draft")
    awaiting = state.get("awaiting")
    if awaiting is not None and awaiting.get("kind") == "stale_draft":
        choice = STALE_WORDS.get(_words(msg.get("text") or ""))
        if choice is not None:
            _, pending = current(state)
            return {"pending": pending, **resolve_stale(state, choice)}
    if D.lines_of(draft) and D.idle_hours(draft, message_time(msg, ctx)) > ctx.draft_ttl_hours:
        update = await _interpret({**state, "draft": None}, runtime)
        fresh = update.get("draft") or D.empty_draft()
        stale: Awaiting = {"kind": "stale_draft"}
        update.update({"draft": D.set_field(fresh, previous=D.snapshot(draft)), "awaiting": stale, "show_summary": True})
        await record(runtime, "draft.stale", msg=msg, details={"idle_hours": round(D.idle_hours(draft, message_time(msg, ctx)))})
        return update
    return await _interpret(state, runtime)


STALE_WORDS = {
    **dict.fromkeys(["add", "add to it", "add to old", "add to the old one", "continue", "same", "endelea", "ongeza"], "add"),
    **dict.fromkeys(["new", "start new", "separate", "keep separate", "mpya", "new one", "a new one", "start a new one",
                     "new request", "anza upya", "upya", "anza mpya"], "new"),
}
"""Typed answers to the stale-draft choice (the buttons send ``stale:add`` / ``stale:new``)."""


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+", text.lower()))


def resolve_stale(state: State, choice: str) -> State:
    """Apply the person's stale-draft choice: ``"add"`` the new lines to the old draft, or ``"new"`` (drop it).

    Returns:
        The State update (``draft``, ``awaiting`` cleared, ``show_summary``).
    """
    draft = state.get("draft") or D.empty_draft()
    previous = draft.get("previous")
    merged = D.set_field(draft, previous=None)
    if choice == "add" and previous:
        merged = D.add_lines(D.with_lines(merged, D.lines_of(previous)), D.lines_of(draft))
        merged = D.set_field(merged, site=draft.get("site") or previous.get("site"),
                             needed_by=draft.get("needed_by") or previous.get("needed_by"))  # fmt: skip
    merged.pop("previous", None)
    return {"draft": merged, "awaiting": None, "show_summary": True}


async def _interpret(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    msg, pending = current(state)
    raw_text = msg.get("text") or ""
    text = for_extraction(raw_text)
    now = message_time(msg, ctx)
    draft = with_attachment(state.get("draft"), msg)  # a photo's caption: keep the photo with the draft
    lines = D.lines_of(draft)
    update: State = {"pending": pending}
    if draft is not state.get("draft"):
        update["draft"] = draft
    sites = list(ctx.sites)

    if lines:
        edits = parse_edits(text, lines, catalog_of(ctx), now=now, sites=sites)
        if edits:
            new_draft, log = D.apply_edits(draft, edits)
            await record(runtime, "draft.edited", msg=msg, details={"changes": log})
            await _learn_from_edits(runtime, log, msg)
            update.update({"draft": new_draft, "show_summary": True})
            return update
    elif (active := state.get("active_request_id")) and ctx.engine is not None:
        req = await R.get_request(ctx.engine, active)
        user = user_of(runtime)
        if req is not None and req.status in R.OPEN_STATUSES and req.requester.id == user.id:
            edits = parse_edits(text, req.lines, catalog_of(ctx), now=now, sites=sites)
            if edits:
                base = D.set_field(
                    D.with_lines(None, req.lines), site=req.site, needed_by=req.needed_by, request_id=req.id
                )
                new_draft, log = D.apply_edits(base, edits)
                await record(runtime, "request.amendment_drafted", request_id=req.id, msg=msg, details={"changes": log})
                update.update({"draft": new_draft, "show_summary": True})
                return update
        elif (
            req is not None
            and req.requester.id == user.id
            and parse_edits(text, req.lines, catalog_of(ctx), now=now, sites=sites)
        ):
            # A correction to a request that is already approved (and being ordered): say so, change nothing.
            status = req.status.replace("_", " ")
            update["notes"] = add_note(state, t("amend_locked", number=req.number, status=status))
            return update

    result = extract(text, catalog_of(ctx), now=now, sites=sites)
    if not result.lines and not result.site and not result.needed_by:
        update["unresolved"] = [*(state.get("unresolved") or []), raw_text]
        return update
    unknown = [ln for ln in result.lines if ln.sku is None and not ln.candidates]
    if unknown and ctx.chat_model is not None:
        # Items the catalogue rules could not place go to the LLM (which sees the draft and the catalogue);
        # without a model they stay as free-text lines and the person is asked about them.
        result.lines = [ln for ln in result.lines if not (ln.sku is None and not ln.candidates)]
        update["unresolved"] = [*(state.get("unresolved") or []), raw_text]
    if result.lines and lines:
        words = set(re.findall(r"[a-z]+", text.lower()))
        new_draft, log = D.merge_lines(draft, result.lines, additive=bool(words & set(D.ADDITIVE_CUES)))
        if any(entry["op"] != "add" for entry in log):
            await record(runtime, "draft.edited", msg=msg, details={"changes": log})
    elif result.lines:
        new_draft = D.add_lines(draft, result.lines)
    else:
        new_draft = draft or D.empty_draft()
    if not result.lines and not result.site and not result.needed_by:
        return update
    if result.site:
        new_draft = D.set_field(new_draft, site=result.site)
    if result.needed_by:
        new_draft = D.set_field(new_draft, needed_by=result.needed_by)
    if not result.lines and not lines:
        # Only a site or a date and nothing to order yet ("show me all requests at the Mombasa site"): keep
        # them for the request that may follow in this burst, but do not start asking questions about it.
        update["draft"] = new_draft
        update["unresolved"] = [*(update.get("unresolved") or state.get("unresolved") or []), raw_text]
        return update
    update.update({"draft": new_draft, "show_summary": True})
    return update


async def learn_choice(runtime: Runtime[Context], phrase: str, sku: str, msg: Inbound | None = None) -> bool:
    """Remember the person's words for the item they chose, when the words say something the catalogue does not.

    Only a phrase with at least one word absent from the catalogue's own vocabulary is learned ("biros" -> the
    blue ballpoint box, "simenti" -> the cement): a choice between variants the catalogue already names
    ("reflector vests" -> the orange one) is a one-off and must not bias the next person's match. Learned
    aliases are listed and removed with ``procure catalog aliases list|remove``.

    Returns:
        Whether an alias was stored.
    """
    ctx = runtime.context
    if ctx.engine is None or ctx.catalog is None:
        return False
    words = [w for w in tokens(phrase) if not has_digit(w)]
    if not words or all(w in ctx.catalog.vocabulary for w in words):
        return False
    user = ctx.user
    try:
        await learn_alias(engine_of(ctx), phrase, sku, user.id if user is not None else None)
    except ValueError:
        return False
    await record(runtime, "catalog.alias_learned", msg=msg, details={"phrase": phrase, "sku": sku})
    return True


async def _learn_from_edits(runtime: Runtime[Context], log: list[dict[str, Any]], msg: Inbound) -> None:
    """Learn from edits that settled an ambiguous line (the person's phrase -> the item they named)."""
    for entry in log:
        before, after = entry.get("before") or {}, entry.get("after") or {}
        if entry.get("op") == "replace_item" and before.get("candidates") and not before.get("sku") and after.get("sku"):
            await learn_choice(runtime, before.get("description") or "", after["sku"], msg)


def _complete(draft: Draft | None, today: date) -> bool:
    lines = D.lines_of(draft)
    return not missing_fields(lines, (draft or {}).get("site"), D.needed_by_of(draft), today=today)


async def submit_draft(state: State, runtime: Runtime[Context], msg: Inbound) -> State:
    """Submit the complete draft as a purchase request (or as an amendment of the submitted one).

    Returns the State update: the draft is cleared, the requester is told who approves it, and an effect asks
    the worker to start the request's approval thread.
    """
    ctx = runtime.context
    user = user_of(runtime)
    draft: Draft = state.get("draft") or {}
    lines: list[Line] = D.lines_of(draft)
    needed_by = D.needed_by_of(draft)
    site, request_id = draft.get("site"), draft.get("request_id")
    if needed_by is None or not site:
        raise ValueError("submit_draft needs a draft with a site and a needed-by date")
    effects = list(state.get("effects") or [])
    try:
        if request_id:
            try:
                sub = await R.amend_request(
                    engine_of(ctx),
                    request_id,
                    actor=user,
                    lines=lines,
                    site=site,
                    needed_by=needed_by,
                    change={"lines": [ln.to_dict() for ln in lines]},
                    inbox_id=msg.get("inbox_id"),
                )
            except (LookupError, PermissionError) as exc:
                status = str(exc)
                return {"notes": add_note(state, t("amend_locked", number=R.number_of(request_id), status=status))}
            note = t("resubmitted", number=sub.number, approver=sub.approver.name)
        else:
            sub = await R.submit_request(
                engine_of(ctx),
                requester=user,
                lines=lines,
                site=site,
                needed_by=needed_by,
                currency=ctx.currency,
                chat_id=ctx.chat_id,
                provider=ctx.provider,
                notes="\n".join(draft.get("notes") or []) or None,
                attachments=draft.get("attachments") or [],
                inbox_id=msg.get("inbox_id"),
            )
            note = t("submitted", number=sub.number, approver=sub.approver.name)
    except NoApproverError:
        return {"notes": add_note(state, t("no_approver"))}
    effects.append({"type": "start_approval", "request_id": sub.request_id, "revision": sub.revision})
    await _attribute_usage(ctx, sub.request_id)
    return {
        "draft": None,
        "active_request_id": sub.request_id,
        "notes": add_note(state, note),
        "effects": effects,
        "show_summary": False,
    }


async def _attribute_usage(ctx: Context, request_id: int) -> None:
    """Charge the chat's LLM calls made while drafting (no request yet) to the request just submitted."""
    async with engine_of(ctx).begin() as conn:
        await conn.execute(
            update(llm_usage)
            .where(llm_usage.c.thread_id == f"{ctx.provider}:{ctx.chat_id}", llm_usage.c.request_id.is_(None))
            .values(request_id=request_id)
        )


async def handle_confirmation(state: State, runtime: Runtime[Context]) -> State:
    """A typed yes/no: confirm a complete draft, accept free-text lines, or decline."""
    ctx = runtime.context
    msg, pending = current(state)
    draft = state.get("draft")
    word = (msg.get("text") or "").strip().lower().rstrip("!.")
    base: State = {"pending": pending}
    if not D.lines_of(draft):
        if word in DENY_WORDS:
            return base
        return {**base, "notes": add_note(state, t("no_draft"))}
    if word in DENY_WORDS:
        return {**base, "notes": add_note(state, t("deny_draft"))}
    today = _today(msg, ctx)
    missing = missing_fields(D.lines_of(draft), (draft or {}).get("site"), D.needed_by_of(draft), today=today)
    if missing and missing[0] == "quantity" and ctx.catalog is not None:
        # "ok" to the offered whole number of catalogue units ("50 bottles is 2.08 packs: order 3 packs?").
        lines = D.lines_of(draft)
        accepted = D.accept_proposal(lines, ctx.catalog)
        if accepted is not None:
            await record(runtime, "draft.edited", msg=msg, details={"changes": [accepted]})
            return {**base, "draft": D.with_lines(draft, lines), "show_summary": True}
    if missing:
        return {**base, "show_summary": True}
    return {**base, **(await submit_draft({**state, "pending": pending}, runtime, msg))}


def with_attachment(draft: Draft | None, msg: Inbound) -> Draft | None:
    """The draft with the message's stored media attached (by storage key only), or unchanged."""
    key = msg.get("storage_key")
    if not key:
        return draft
    attachments = list((draft or {}).get("attachments") or [])
    if key in attachments:
        return draft
    return D.set_field(draft, attachments=[*attachments, key])


async def handle_media(state: State, runtime: Runtime[Context]) -> State:
    """A photo, voice note, document... without text: keep it with the draft, say what can't be read yet."""
    msg, pending = current(state)
    kind = msg.get("kind") or ""
    what = t(f"media_{kind}") if kind in _MEDIA_NAMED else t("media_other")
    update: State = {"pending": pending}
    note = t("unsupported_media", what=what)
    if msg.get("storage_key"):
        update["draft"] = with_attachment(state.get("draft"), msg)
        note += " " + t("media_attached")
    update["notes"] = add_note(state, note)
    return update


async def skip_message(state: State) -> State:
    """Reactions and empty messages: nothing to answer."""
    _, pending = current(state)
    return {"pending": pending}
