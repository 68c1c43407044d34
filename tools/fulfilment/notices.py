"""Fulfilment notices on WhatsApp: outcome, failure with Retry button, unassigned lines, answers to Retry presses.

Every message goes through the idempotent outbox with a key of its own, so sending again (a job that meets an
already-finished fulfilment, a turn re-run after a crash) never repeats one. The wording is in
``prompts/replies.toml`` (the ``fulfil_*`` templates).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from core.repo import User
from tools.fulfilment.model import CANCELLED, OPEN_STATES, PLACED, Fulfilment, Notify
from tools.fulfilment.replies import say, text_message
from tools.fulfilment.store import FulfilmentStore
from tools.requests import RequestView, get_request

if TYPE_CHECKING:
    from tools.storage import ObjectStorage

log = logging.getLogger(__name__)

#: How long evidence links sent on WhatsApp stay valid: 7 days, the longest an S3 SigV4 presigned URL allows.
EVIDENCE_LINK_SECONDS: Final = 7 * 24 * 3600
#: Evidence files linked in failure notices (the newest of each), with their template names.
_EVIDENCE: Final = {"screenshot.png": "fulfil_evidence_screenshot", "trace.zip": "fulfil_evidence_trace"}


class Notices:
    """Tells requesters and buyers what happened to their orders.

    Args:
        store: the fulfilment store (buyers, requests).
        notify: the outbox; ``notify(provider, key_prefix, messages)`` sends each message once per key.
        storage: returns the evidence storage (called only when a failure has evidence to link).
    """

    def __init__(self, store: FulfilmentStore, notify: Notify, storage: Callable[[], ObjectStorage]) -> None:
        self.store = store
        self.notify = notify
        self.storage = storage

    async def announce(self, f: Fulfilment) -> None:
        """Tell the requester and the buyers the outcome (each message once per key; no-op for open states)."""
        if f.state in OPEN_STATES:
            return
        req = await get_request(self.store.engine, f.request_id)
        if req is None:
            return
        buyers = await self.store.buyers()
        if f.state == PLACED:
            await self._placed(f, req, buyers)
        elif f.state == CANCELLED:
            body = say(
                "fulfil_cancelled", number=req.number, supplier=f.supplier, order=f.external_order_id, where=f.where
            )
            for person in [req.requester, *[b for b in buyers if b.id != req.requester.id]]:
                await self.notify(
                    req.provider, f"fulfil:{f.id}:cancelled:{person.id}", [text_message(person.wa_id, body)]
                )
        else:
            await self._failed(f, req, buyers)

    async def _placed(self, f: Fulfilment, req: RequestView, buyers: list[User]) -> None:
        body = say(
            "fulfil_placed_requester",
            number=req.number,
            supplier=f.supplier,
            lines=f.lines_text(),
            order=f.external_order_id,
        )
        await self.notify(
            req.provider, f"fulfil:{f.id}:placed:{req.requester.id}", [text_message(req.requester.wa_id, body)]
        )
        for buyer in buyers:
            if buyer.id == req.requester.id:
                continue
            body = say(
                "fulfil_placed_buyer",
                number=req.number,
                requester=req.requester.display_name,
                supplier=f.supplier,
                where=f.where,
                order=f.external_order_id,
                external_state=f.external_state or PLACED,
                reference=f.reference,
                lines=f.lines_text(),
            )
            await self.notify(req.provider, f"fulfil:{f.id}:placed:{buyer.id}", [text_message(buyer.wa_id, body)])

    async def _failed(self, f: Fulfilment, req: RequestView, buyers: list[User]) -> None:
        """Buyers get the reason, evidence links and a Retry button; the requester a short notice."""
        attempts = say("fulfil_attempt_one" if f.round_attempts == 1 else "fulfil_attempts", n=f.round_attempts)
        detail = say(
            "fulfil_failed_buyer",
            number=req.number,
            requester=req.requester.display_name,
            supplier=f.supplier,
            where=f.where,
            attempts=attempts,
            reason=f.error or say("fulfil_unknown_reason"),
            reference=f.reference,
        )
        links = await self.evidence_links(f)
        if links:
            detail += "\n" + "\n".join(say("fulfil_evidence_link", name=name, url=url) for name, url in links)
        for buyer in buyers:
            await self.notify(
                req.provider,
                f"fulfil:{f.id}:failed:{f.retries}:{buyer.id}",
                [
                    text_message(buyer.wa_id, detail),
                    {
                        "to": buyer.wa_id,
                        "type": "buttons",
                        "text": say("fulfil_retry_question", supplier=f.supplier, number=req.number),
                        "buttons": [[f"retry:{f.id}", say("fulfil_retry_button")]],
                    },
                ],
            )
        if all(b.id != req.requester.id for b in buyers):
            body = say("fulfil_failed_requester", number=req.number, supplier=f.supplier)
            await self.notify(
                req.provider,
                f"fulfil:{f.id}:failed:{f.retries}:{req.requester.id}",
                [text_message(req.requester.wa_id, body)],
            )

    async def evidence_links(self, f: Fulfilment) -> list[tuple[str, str]]:
        """Presigned links ``(name, url)`` to the latest screenshot and trace (empty when none or storage fails)."""
        latest: dict[str, str] = {}
        for key in f.evidence_keys:
            name = key.rsplit("/", 1)[-1]
            if name in _EVIDENCE:
                latest[name] = key
        links = []
        for name, key in latest.items():
            try:
                links.append((say(_EVIDENCE[name]), await self.storage().aurl(key, EVIDENCE_LINK_SECONDS)))
            except Exception as exc:  # a missing link must not stop the failure notice
                log.warning("no link for %s: %s", key, exc)
        return links

    async def unassigned(self, req: RequestView, lines: list[dict[str, Any]], provider: str | None) -> None:
        """Tell the buyers, once, which lines have no supplier and must be ordered by hand."""
        if not lines:
            return
        what = ", ".join(f"{ln['quantity']} {ln['unit']} {ln['description']}" for ln in lines)
        body = say("fulfil_unassigned", number=req.number, lines=what)
        for buyer in await self.store.buyers():
            await self.notify(
                provider or req.provider,
                f"fulfil:{req.number}:unassigned:{buyer.id}",
                [text_message(buyer.wa_id, body)],
            )

    async def retry_refused(self, row: Fulfilment, actor: User, *, provider: str, token: str) -> None:
        """Answer a Retry press by someone who is neither buyer nor admin."""
        await self.notify(
            provider,
            f"fulfil:{row.id}:retry:{token}:{actor.id}",
            [text_message(actor.wa_id, say("fulfil_retry_refused"))],
        )

    async def nothing_to_retry(self, row: Fulfilment, actor: User, *, provider: str, token: str) -> None:
        """Answer a Retry press on a fulfilment that is already placed or was cancelled at the destination."""
        if row.state == PLACED:
            answer = say("fulfil_retry_placed", number=row.number, supplier=row.supplier, order=row.external_order_id)
        else:
            answer = say("fulfil_retry_cancelled", number=row.number, supplier=row.supplier, where=row.where)
        await self.notify(provider, f"fulfil:{row.id}:retry:{token}:{actor.id}", [text_message(actor.wa_id, answer)])
