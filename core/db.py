"""Database schema (SQLAlchemy Core) and engine factory. Migrations live in ``core/migrations`` (Alembic).

Every durable fact lives here: users, catalogue, inbox, turns, outbound messages, purchase requests and their
lines, LLM usage, fulfilments, audit log. LangGraph checkpoints live in the same database (tables created by
``AsyncPostgresSaver.setup()``).
"""

from __future__ import annotations

import time
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.embedded import sqlalchemy_url

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Dimensions of catalogue embeddings (all-MiniLM-L6-v2).
EMBEDDING_DIM = 384
MONEY = Numeric(14, 4)
QTY = Numeric(14, 3)
TS = DateTime(timezone=True)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phone", String(20), nullable=False, unique=True, comment="E.164, with +"),
    Column("wa_id", String(20), nullable=False, unique=True, comment="E.164 digits without +"),
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("site", String(100)),
    Column("approval_limit", MONEY, comment="highest total this user may approve, in approval_currency"),
    Column("approval_currency", String(3)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
)

catalog_items = Table(
    "catalog_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(300), nullable=False),
    Column("unit", String(20), nullable=False),
    Column("unit_price", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("supplier", String(64), nullable=False),
    Column("category", String(100), nullable=False, server_default=""),
    Column("aliases", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("embedding", Vector(EMBEDDING_DIM), nullable=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)

catalog_aliases = Table(
    "catalog_aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phrase", String(200), nullable=False, comment="normalised words a person used for the item"),
    Column("sku", String(64), nullable=False),
    Column("created_by", Integer, ForeignKey("users.id"), comment="users.id of the person whose choice taught it"),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("uses", Integer, nullable=False, server_default="1", comment="times a person confirmed it"),
    UniqueConstraint("phrase", "sku", name="uq_catalog_aliases_phrase"),
)
Index("ix_catalog_items_embedding", catalog_items.c.embedding, postgresql_using="hnsw",
      postgresql_ops={"embedding": "vector_cosine_ops"})

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, comment="shown as T-<id>"),
    Column("requester_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("request_id", Integer, ForeignKey("purchase_requests.id"), comment="the purchase request it is about"),
    Column("kind", String(30), nullable=False, comment="wrong_item, not_delivered, damaged, other"),
    Column("text", Text, nullable=False, comment="the person's words"),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("assignee_id", Integer, ForeignKey("users.id"), comment="the buyer notified"),
    Column("chat_id", String(100), nullable=False),
    Column("provider", String(20), nullable=False, server_default="meta"),
    Column(
        "source_message_id",
        String(200),
        unique=True,
        comment="provider message id that opened it: a re-run turn finds its ticket instead of a second",
    ),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)
Index("ix_tickets_requester", tickets.c.requester_id)
Index("ix_tickets_request", tickets.c.request_id)


inbox = Table(
    "inbox",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("provider_message_id", String(200), nullable=False),
    Column("chat_id", String(100), nullable=False),
    Column("sender", String(100), nullable=False),
    Column("type", String(20), nullable=False),
    Column("message", JSONB, nullable=False, comment="normalised InboundMessage.to_dict()"),
    Column("raw_payload", JSONB, nullable=False),
    Column("sent_at", TS, comment="provider timestamp of the message"),
    Column("received_at", TS, nullable=False, server_default=func.now()),
    Column("turn_id", BigInteger, ForeignKey("turns.id")),
    Column("processed_at", TS),
    UniqueConstraint("provider_message_id", name="uq_inbox_provider_message_id"),
)
Index("ix_inbox_pending", inbox.c.chat_id, inbox.c.id, postgresql_where=inbox.c.turn_id.is_(None))

turns = Table(
    "turns",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("chat_id", String(100), nullable=False),
    Column("thread_id", String(200), nullable=False),
    Column("status", String(20), nullable=False, server_default="running", comment="running|done|failed"),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("started_at", TS, nullable=False, server_default=func.now()),
    Column("finished_at", TS),
    Column("error", Text),
    Column("graph_ms", Integer, comment="time spent in the graph, milliseconds"),
)
Index("ix_turns_running", turns.c.chat_id, postgresql_where=turns.c.status == "running")

outbound_messages = Table(
    "outbound_messages",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("provider", String(20), nullable=False),
    Column("to", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("turn_id", BigInteger),
    Column("provider_message_id", String(200), unique=True),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("status_history", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("error", Text),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("sent_at", TS),
    Column("attempted_at", TS, comment="set just before the provider call; unconfirmed while no provider id"),
    Column("attempts", Integer, nullable=False, server_default="0", comment="provider calls made for this key"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("reason", Text, nullable=False, comment="why the message could not be stored or processed"),
    Column("raw_body", LargeBinary, nullable=False, comment="the request body exactly as received"),
    Column("message", JSONB, comment="the parsed message, when parsing got that far"),
    Column("provider_message_id", String(200)),
    Column("received_at", TS, nullable=False, server_default=func.now()),
    Column("replayed_at", TS),
    Column("replay_result", Text),
)
Index("ix_dead_letters_pending", dead_letters.c.id, postgresql_where=dead_letters.c.replayed_at.is_(None))

unknown_sender_replies = Table(
    "unknown_sender_replies",
    metadata,
    Column("provider", String(20), primary_key=True),
    Column("chat_id", String(100), primary_key=True),
    Column("replied_at", TS, nullable=False, server_default=func.now()),
    Column("suppressed", Integer, nullable=False, server_default="0", comment="bursts not answered since replied_at"),
)

purchase_requests = Table(
    "purchase_requests",
    metadata,
    Column("id", Integer, primary_key=True, comment="shown as PR-<id>"),
    Column("requester_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("status", String(30), nullable=False),
    Column("site", String(100)),
    Column("needed_by", Date),
    Column("currency", String(3), nullable=False),
    Column("total", MONEY, nullable=False, server_default="0"),
    Column("approver_id", Integer, ForeignKey("users.id")),
    Column("decided_by", Integer, ForeignKey("users.id")),
    Column("decision_reason", Text),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("notes", Text),
    Column("attachments", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("chat_id", String(100), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    Column("decided_at", TS),
)

purchase_request_lines = Table(
    "purchase_request_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("purchase_requests.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("sku", String(64)),
    Column("description", Text, nullable=False),
    Column("quantity", QTY, nullable=False),
    Column("unit", String(20), nullable=False),
    Column("unit_price", MONEY),
    Column("currency", String(3)),
    Column("supplier", String(64)),
    UniqueConstraint("request_id", "position", name="uq_pr_lines_position"),
)

llm_usage = Table(
    "llm_usage",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", TS, nullable=False, server_default=func.now()),
    Column("thread_id", String(200)),
    Column("turn_id", BigInteger),
    Column("request_id", Integer),
    Column("node", String(50), nullable=False),
    Column("model", String(100), nullable=False),
    Column("prompt_version", String(50), nullable=False),
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("outcome", String(30), nullable=False, server_default="ok"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", TS, nullable=False, server_default=func.now()),
    Column("actor_id", Integer, comment="users.id, NULL for the system"),
    Column("action", String(60), nullable=False),
    Column("request_id", Integer),
    Column("inbox_id", BigInteger, comment="the message that caused it"),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
Index("ix_audit_request", audit_log.c.request_id)


#: A pooled connection idle longer than this (seconds) is pinged before use; busier ones are used as they are.
PING_IDLE_SECONDS = 1.0


def make_engine(database_url: str, *, pool_size: int = 5, echo: bool = False) -> AsyncEngine:
    """Async SQLAlchemy engine (psycopg 3) for ``database_url``.

    Dead connections heal without a ping per checkout (``pool_pre_ping`` cost a round trip for every transaction):
    a connection idle for more than :data:`PING_IDLE_SECONDS` is pinged when checked out, and a failed ping makes
    the pool open a fresh one (SQLAlchemy's ``DisconnectionError`` recipe). A connection that broke within that
    second (a database restart during traffic) fails its statement once; SQLAlchemy then sees the disconnect and
    discards every pooled connection older than it, and the caller's transient-failure path retries (the worker's
    turn job, :func:`server.worker.turns.is_transient`).

    Args:
        database_url: a ``postgresql://`` URI (unix-socket ``?host=/dir`` form accepted).
        pool_size: connections kept open per process.
        echo: log SQL.
    """
    engine = create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=False,
        pool_timeout=5,
        echo=echo,
    )
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since <= PING_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool invalidates this connection and checks out another (3 tries)
            raise DisconnectionError(f"pooled connection failed its ping: {type(exc).__name__}") from exc

    return engine


suppliers = Table(
    "suppliers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("channel", String(20), nullable=False, comment="erp|website: where this supplier takes orders"),
    Column("portal", String(50), comment="page-object name for website suppliers"),
    Column("url", Text, comment="website base URL"),
    Column("account", String(200), comment="website login; the password comes from settings"),
)

fulfilments = Table(
    "fulfilments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("purchase_requests.id"), nullable=False),
    Column("supplier", String(64), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("idempotency_key", String(100), nullable=False, unique=True, comment="our PO reference"),
    Column("state", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("external_order_id", String(100)),
    Column("error", Text),
    Column("evidence_keys", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    Column("placed_at", TS),
    Column(
        "retries",
        Integer,
        nullable=False,
        server_default="0",
        comment="rounds started by a Retry press; part of the job id",
    ),
    Column(
        "round_attempts",
        Integer,
        nullable=False,
        server_default="0",
        comment="attempts since the round started (a Retry press resets it); attempts counts them all",
    ),
    Column(
        "lines",
        JSONB,
        nullable=False,
        server_default=text("'[]'::jsonb"),
        comment="the request lines this order carries, as approved",
    ),
    Column(
        "external_state", String(30), comment="the order's state at the destination (ERP: confirmed, processing...)"
    ),
    Column("attempted_at", TS, comment="start of the latest attempt"),
    Column("failed_at", TS),
    UniqueConstraint("request_id", "supplier", name="uq_fulfilments_request_supplier"),
    CheckConstraint("state IN ('pending', 'placing', 'placed', 'failed', 'cancelled')", name="ck_fulfilments_state"),
)
Index(
    "ix_fulfilments_open",
    fulfilments.c.state,
    fulfilments.c.updated_at,
    postgresql_where=fulfilments.c.state.in_(["pending", "placing"]),
)
Index("ix_fulfilments_request", fulfilments.c.request_id)
