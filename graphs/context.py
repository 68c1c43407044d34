"""Per-run Context: identity and clients, injected by the process that runs the graph (``runtime.context``).

Identity comes from the channel metadata and the database, never from the model. Graph code never reads the
environment: the worker builds a Context from Settings and the sender's user row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from langchain_core.language_models import BaseChatModel
from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo import User
from nodes.effects import ApprovalThreads, FulfilmentQueue
from nodes.llm_intake import UsageRecord
from tools.catalog import CatalogIndex


@dataclass
class Context:
    """Who is talking and the clients nodes may use.

    Attributes:
        user: the sender's user row (identity, role, site, approval limit); ``None`` only in Studio sessions.
        chat_id: the chat (WhatsApp: the sender's wa_id for 1:1 chats).
        provider: channel name (``meta``...).
        engine: SQLAlchemy async engine (PostgreSQL); ``None`` only in graph-drawing and pure-node tests.
        catalog: the index over the active catalogue; ``None`` when no catalogue is loaded.
        sites: known site names, canonical spelling.
        currency: default ISO 4217 currency.
        timezone: IANA zone for reading dates such as "Friday".
        chat_model: a LangChain chat model for the intake node, or ``None`` (deterministic only).
        model_name: name of the model, for usage records.
        context_window: how many recent messages the LLM sees.
        now: clock override (tests, evals); ``None`` uses the message time.
        turn_id: the turn being run (for usage records).
        approvals: runs approval threads for the effect nodes (the worker's, on its checkpointer); ``None``
            leaves approval effects in the State for the caller (Studio, graph tests, evaluations).
        fulfilment: creates fulfilments and enqueues their jobs for the effect nodes; ``None`` when this
            process places no orders.
        draft_ttl_hours: a draft idle longer than this (hours) is shown before new text is added to it.
        usage: token usage of every LLM call made with this Context, appended by the intake node (evaluations
            sum it; the database's ``llm_usage`` table is the durable record).
    """

    user: User | None = None
    chat_id: str = ""
    provider: str = "meta"
    engine: AsyncEngine | None = None
    catalog: CatalogIndex | None = None
    sites: tuple[str, ...] = ()
    currency: str = "USD"
    timezone: str = "Africa/Nairobi"
    chat_model: BaseChatModel | None = None
    model_name: str = "none"
    context_window: int = 20
    now: datetime | None = None
    turn_id: int | None = None
    approvals: ApprovalThreads | None = None
    fulfilment: FulfilmentQueue | None = None
    draft_ttl_hours: float = 24.0
    usage: list[UsageRecord] = field(default_factory=list)
