"""What every fault scenario ends with: the ledger of messages, turns and replies, read from the stack itself.

:func:`ledger` reads the inbox, turns and outbox from PostgreSQL and what the Graph stand-in received, and
counts each reply the provider got against the outbox key it belongs to: by the callback data the send carries
(our key, when the channel sends it), else by the provider message id the outbox recorded, else (a send whose
answer never got recorded, e.g. the worker died waiting for it) by recipient and text. A key counted twice is a
person messaged twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.support.stack import body_of


@dataclass
class Ledger:
    """Counts that decide a scenario; :meth:`problems` lists what breaks "processed once, one reply per turn".

    Attributes:
        sent: distinct messages the traffic delivered (accepted with 200) to the webhook.
        inbox: inbox rows.
        processed: inbox rows claimed by a turn that finished ``done``.
        turns: turns; ``turns_done``: of them ``done``; ``turn_status``: count per status.
        keys: outbox keys of the turns (one per reply); ``per_key``: sends the stand-in received, per key.
        unattributed: sends the stand-in received that match no outbox key.
        missing_wamids: messages accepted by the webhook with no inbox row.
        turns_without_reply: done turns with no outbox key.
    """

    sent: int
    inbox: int
    processed: int
    turns: int
    turns_done: int
    turn_status: dict[str, int]
    keys: int
    per_key: dict[str, int]
    unattributed: int
    missing_wamids: list[str] = field(default_factory=list)
    turns_without_reply: list[int] = field(default_factory=list)

    @property
    def duplicated(self) -> int:
        """Replies the provider received more than once (extra copies)."""
        return sum(n - 1 for n in self.per_key.values() if n > 1) + self.unattributed

    @property
    def unreplied(self) -> int:
        """Outbox keys the provider never received."""
        return sum(1 for n in self.per_key.values() if n == 0)

    @property
    def replies_per_turn(self) -> str:
        """``"1.00"`` when every reply of every turn reached the provider exactly once (sends / keys)."""
        received = sum(self.per_key.values()) + self.unattributed
        return f"{received / self.keys:.2f}" if self.keys else "n/a"

    def settled(self) -> bool:
        """Every accepted message is in a done turn and every reply was received (duplicates may remain)."""
        return (
            self.inbox >= self.sent
            and self.processed == self.inbox
            and self.turns_done == self.turns
            and self.unreplied == 0
            and not self.turns_without_reply
        )

    def problems(self) -> list[str]:
        """What breaks the suite's promise, in words (empty when the scenario passed)."""
        out = []
        if self.missing_wamids:
            out.append(f"{len(self.missing_wamids)} accepted messages missing from the inbox")
        if self.inbox != self.sent:
            out.append(f"inbox has {self.inbox} rows for {self.sent} distinct messages")
        if self.processed != self.inbox:
            out.append(f"{self.inbox - self.processed} of {self.inbox} messages not processed by a done turn")
        if self.turns_done != self.turns:
            out.append(f"turns not done: {self.turn_status}")
        if self.turns_without_reply:
            out.append(f"{len(self.turns_without_reply)} done turns sent no reply")
        if self.unreplied:
            out.append(f"{self.unreplied} replies never reached the provider")
        if self.duplicated:
            twice = sorted(k for k, n in self.per_key.items() if n > 1)[:5]
            out.append(
                f"{self.duplicated} replies sent more than once (e.g. {twice}; {self.unattributed} unattributed)"
            )
        return out

    def summary(self) -> str:
        """One line of figures for the report."""
        return (
            f"sent={self.sent} inbox={self.inbox} processed_once={self.processed} turns={self.turns} "
            f"done={self.turns_done} replies={self.keys} replies_per_turn_key={self.replies_per_turn} "
            f"duplicated={self.duplicated} unreplied={self.unreplied}"
        )


def _visible(body: dict[str, Any]) -> str:
    """The visible text of an outbox row's stored body (``{"text": ...}`` for texts, the message for the rest)."""
    return str(body.get("text") or "")


def attribute(out_rows: list[dict[str, Any]], requests: list[Any]) -> tuple[dict[str, int], int]:
    """Count the sends the provider received per outbox key.

    Args:
        out_rows: outbox rows (``idempotency_key``, ``to``, ``body``, ``provider_message_id``).
        requests: the stand-in's :class:`~sandboxes.whatsapp.meta_graph_api.RecordedRequest` list; only message
            sends it answered 200 count (not read receipts, not refused sends).

    Returns:
        ``(per_key, unattributed)``: sends per key (0 = never received), and sends that match no key at all.
        A send is matched by its ``biz_opaque_callback_data`` (our key), else by the provider id the outbox
        recorded, else (an answer never recorded) by recipient and text: first to a key not yet received
        (the lost answer of its only send), else to the first such key (a second send).
    """
    per_key: dict[str, int] = {r["idempotency_key"]: 0 for r in out_rows}
    by_pmid = {r["provider_message_id"]: r["idempotency_key"] for r in out_rows if r["provider_message_id"]}
    by_text: dict[tuple[str, str], list[str]] = {}
    for r in out_rows:
        by_text.setdefault((r["to"].lstrip("+"), _visible(r["body"])), []).append(r["idempotency_key"])
    orphans: list[tuple[str, str]] = []
    for req in requests:
        if not (req.is_message_send and req.status == 200):
            continue
        msg, answer = req.json, req.response or {}
        wamid = ((answer.get("messages") or [{}])[0]).get("id")
        key = msg.get("biz_opaque_callback_data") or by_pmid.get(wamid)
        if key in per_key:
            per_key[key] += 1
        else:
            orphans.append((str(msg.get("to", "")).lstrip("+"), body_of(msg)))
    unattributed = 0
    for to, text in orphans:
        candidates = by_text.get((to, text), [])
        unsent = [k for k in candidates if per_key[k] == 0]
        if unsent:
            per_key[unsent[0]] += 1
        elif candidates:
            per_key[candidates[0]] += 1
        else:
            unattributed += 1
    return per_key, unattributed


def ledger(database_url: str, graph: Any, wamids: set[str]) -> Ledger:
    """Read the stack's state now (a fresh connection each time: the database may have restarted).

    Args:
        database_url: the stack's PostgreSQL.
        graph: the Graph stand-in (its ``requests``).
        wamids: provider message ids the traffic had accepted (200) by the webhook.
    """
    with psycopg.connect(database_url, row_factory=dict_row, connect_timeout=5) as conn:
        inbox_rows = conn.execute(
            "SELECT i.provider_message_id, i.turn_id, i.processed_at, t.status FROM inbox i "
            "LEFT JOIN turns t ON t.id = i.turn_id"
        ).fetchall()
        turn_rows = conn.execute("SELECT id, status FROM turns").fetchall()
        out_rows = conn.execute(
            'SELECT idempotency_key, turn_id, "to", body, provider_message_id FROM outbound_messages'
        ).fetchall()
    per_key, unattributed = attribute(out_rows, graph.requests)
    keyed_turns = Counter(r["turn_id"] for r in out_rows if r["turn_id"] is not None)
    status = Counter(r["status"] for r in turn_rows)
    seen = {r["provider_message_id"] for r in inbox_rows}
    return Ledger(
        sent=len(wamids),
        inbox=len(inbox_rows),
        processed=sum(1 for r in inbox_rows if r["turn_id"] and r["processed_at"] and r["status"] == "done"),
        turns=len(turn_rows),
        turns_done=status.get("done", 0),
        turn_status=dict(status),
        keys=len(per_key),
        per_key=per_key,
        unattributed=unattributed,
        missing_wamids=sorted(wamids - seen),
        turns_without_reply=sorted(r["id"] for r in turn_rows if r["status"] == "done" and not keyed_turns[r["id"]]),
    )


def backlog_cleared(database_url: str, wamids: set[str]) -> bool:
    """Whether every message in ``wamids`` is in a done turn (False while the database is unreachable)."""
    if not wamids:
        return True
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM inbox i JOIN turns t ON t.id = i.turn_id "
                "WHERE t.status = 'done' AND i.provider_message_id = ANY(%s)",
                (list(wamids),),
            ).fetchone()
    except psycopg.Error:
        return False
    return bool(row) and row[0] == len(wamids)
