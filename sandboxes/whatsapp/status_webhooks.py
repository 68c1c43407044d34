"""Status webhooks of the Graph API stand-in: each message it sends is followed by signed ``statuses`` posts.

Meta posts a status object for every change of a sent message (``sent``, ``delivered``, ``read``, ``failed``) to the
app's webhook, signed like inbound messages, and echoes the send's ``biz_opaque_callback_data`` in it
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#status--message-sent,
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages: "biz_opaque_callback_data: an
arbitrary string, useful for tracking ... included in the status webhooks", at most 512 characters).
:class:`StatusWebhooks` does the same for :class:`sandboxes.whatsapp.meta_graph_api.GraphAPIStandIn`: the
stand-in calls :meth:`StatusWebhooks.message_sent` from its own event loop, and the posts go out in the
background so the send's answer is not held up by them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from sandboxes.whatsapp.meta_payloads import envelope, sign

__all__ = ["PostedStatus", "StatusWebhooks"]


@dataclass(frozen=True, slots=True)
class PostedStatus:
    """One status webhook the stand-in posted.

    Attributes:
        status: the status object (``id``, ``status``, ``timestamp``, ``recipient_id``, and
            ``biz_opaque_callback_data`` when the send carried one).
        http_status: what the webhook answered, or ``None`` when the post failed (connection error).
    """

    status: dict[str, Any]
    http_status: int | None


class StatusWebhooks:
    """Posts signed Meta status webhooks for the messages the stand-in sends.

    Args:
        url: the app's webhook URL, e.g. ``http://127.0.0.1:8000/webhooks/meta``.
        app_secret: the Meta app secret the app checks ``X-Hub-Signature-256`` with.
        statuses: the statuses posted for each sent message, in order (Meta may skip ``delivered``).
        delay: seconds to wait after the send before the first post.
        phone_number_id: our business number id put in ``metadata``.
        transport: an httpx transport to post through (tests: ``httpx.ASGITransport`` of an app); the network
            by default.

    Attributes:
        paused: while true, sent messages get no status at all (a provider that accepted a message but never
            reports on it); :meth:`message_sent` drops them.
    """

    def __init__(
        self,
        url: str,
        app_secret: str,
        *,
        statuses: tuple[str, ...] = ("sent", "delivered"),
        delay: float = 0.0,
        phone_number_id: str = "000000000000000",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.app_secret = app_secret
        self.statuses = statuses
        self.delay = delay
        self.phone_number_id = phone_number_id
        self.paused = False
        self._transport = transport
        self._lock = threading.Lock()
        self._posted: list[PostedStatus] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def posted(self) -> list[PostedStatus]:
        """Every status posted so far, in order (a copy)."""
        with self._lock:
            return list(self._posted)

    def message_sent(self, wamid: str, payload: dict[str, Any]) -> None:
        """Schedule the status posts of a message just sent (call from the stand-in's event loop).

        Args:
            wamid: the id the stand-in gave the message.
            payload: the send request's JSON (``to`` and ``biz_opaque_callback_data`` are read).
        """
        if self.paused:
            return
        base: dict[str, Any] = {"id": wamid, "recipient_id": str(payload.get("to") or "").lstrip("+")}
        tag = payload.get("biz_opaque_callback_data")
        if isinstance(tag, str) and tag:
            base["biz_opaque_callback_data"] = tag
        task = asyncio.get_running_loop().create_task(self._post_all(base))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_all(self, base: dict[str, Any]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        async with httpx.AsyncClient(timeout=10.0, transport=self._transport) as client:
            for state in self.statuses:
                status = {**base, "status": state, "timestamp": str(int(time.time()))}
                body = json.dumps(envelope(statuses=[status], phone_number_id=self.phone_number_id)).encode()
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, self.app_secret)}
                try:
                    answer: int | None = (await client.post(self.url, content=body, headers=headers)).status_code
                except httpx.HTTPError:
                    answer = None
                with self._lock:
                    self._posted.append(PostedStatus(status=status, http_status=answer))
