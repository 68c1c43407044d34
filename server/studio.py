"""LangGraph Studio entry (``langgraph dev``, see ``langgraph.json``): both graphs with a Context built per run.

Studio runs carry JSON only, while the nodes need a full :class:`graphs.context.Context` (database engine,
catalogue index, the sender's user row). The exported ``procurement`` and ``approval`` graphs are the
project's compiled graphs (no checkpointer: the LangGraph API server supplies its own) wrapped so that the
run's context, or ``config["configurable"]``, may carry the plain fields of :class:`StudioContext`::

    {"phone": "+254700000001", "now": "2026-11-18T10:00:00+03:00"}

and :class:`ContextResolver` turns them into a Context: the user row looked up by phone (the demo requester
:data:`DEMO_REQUESTER_PHONE` when none is given), the engine and catalogue of this process, sites, currency,
time zone and chat model from Settings.

Why a graph subclass and not a graph factory: langgraph-api 0.16 does call a factory exported in
``langgraph.json`` with the run's raw context (``ServerRuntime.context``), but it then passes the run's own
context, filtered by the graph's context schema, straight to ``astream(context=...)``, and that context wins
over any context a factory sets (``Runtime.merge``). So :class:`StudioGraph` resolves the context at the one
door every server path goes through (``astream``: runs, waits, streams, resumes with ``Command`` and
``astream_events`` all call it), and declares :class:`StudioContext` as its context schema so the server
keeps those fields and Studio shows them in its context form.

Start-up (first run, in a worker thread): the embedded default works with nothing configured. With no
``DATABASE_URL`` the embedded PostgreSQL under ``DATA_DIR`` is started or attached to (Studio never uses Redis,
so none is started), migrations are applied, and an empty database gets the demo catalogue
(``examples/catalog.csv``) and, when the ``users`` table is empty, the demo people of :data:`DEMO_USERS`.

This module is a process entry point: it reads the environment (through Settings) and configures LangSmith
tracing (:func:`server.tracing.configure_tracing`) before the first run starts. Importing it has no side
effects, so ``langgraph dev`` can load it (and draw the graphs) before any database exists.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from langgraph.graph.state import CompiledStateGraph
from sqlalchemy import func, select

from core.config import Settings, get_settings
from core.db import catalog_items, make_engine, users
from core.embedded import EmbeddedPostgres
from core.llm import make_chat_model
from core.migrate import upgrade
from core.repo import User, add_user, get_user, import_catalog, normalize_phone
from graphs import approval as approval_graph
from graphs import procurement as procurement_graph
from graphs.context import Context
from server import tracing
from tools.catalog import CatalogCache

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = ROOT / "examples" / "catalog.csv"

#: The requester Studio runs speak as when the context names no phone.
DEMO_REQUESTER_PHONE = "+254700000001"
#: People seeded into an empty ``users`` table: (phone, name, role, site, approval limit in USD).
DEMO_USERS: tuple[tuple[str, str, str, str | None, Decimal | None], ...] = (
    (DEMO_REQUESTER_PHONE, "Amina Demo", "requester", "Nairobi", None),
    ("+254700000002", "Brian Demo", "approver", "Nairobi", Decimal("2000")),
    ("+254700000003", "Carol Demo", "approver", None, Decimal("20000")),
    ("+254700000005", "Eve Demo", "admin", None, None),
)

#: Seconds a loaded catalogue index is trusted before its version is checked again.
CATALOG_CHECK_SECONDS = 5.0


@dataclass
class StudioContext:
    """What a Studio run may carry as its context (or in ``config["configurable"]``): JSON values only.

    Attributes:
        phone: the person speaking, E.164 (``+254700000001``) or wa_id digits; ``None`` means the demo
            requester (:data:`DEMO_REQUESTER_PHONE`, or the first active requester if that number is unknown).
        chat_id: the chat being answered; ``None`` means the person's own 1:1 chat (their wa_id).
        now: ISO 8601 clock override for reading dates such as "Friday" (without an offset it is read in
            ``TIMEZONE``); ``None`` uses the message time.
    """

    phone: str | None = None
    chat_id: str | None = None
    now: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> StudioContext:
        """Pick the known fields out of a run context or configurable (other keys are ignored)."""
        raw = raw or {}
        names = {f.name for f in fields(cls)}
        return cls(**{k: (str(v) if v not in (None, "") else None) for k, v in raw.items() if k in names})


def bootstrap(settings: Settings) -> str:
    """Prepare the database for Studio (blocking; run it in a thread) and return its URL.

    Starts or attaches to the embedded PostgreSQL under ``DATA_DIR`` when ``DATABASE_URL`` is unset, applies
    migrations, imports the demo catalogue into an empty catalogue and adds :data:`DEMO_USERS` to an empty
    ``users`` table. Safe to repeat and to run from several processes (migrations hold an advisory lock).
    """
    url = settings.DATABASE_URL
    if url is None:
        url = EmbeddedPostgres(Path(settings.DATA_DIR)).start()
    upgrade(url)
    # A private event loop in this worker thread: the seeding uses the async repository functions.
    asyncio.run(_seed_if_empty(url))
    _warm_up()
    return url


def _warm_up() -> None:
    """Fill caches that libraries load lazily with blocking file calls, here in the bootstrap thread.

    ``langgraph dev`` fails a run that blocks its event loop (blockbuster): dateparser asks tzlocal for the
    local zone (``os.readlink`` of /etc/localtime) on its first relative date, then caches it.
    """
    import tzlocal
    from dateparser.date import DateDataParser

    tzlocal.get_localzone()
    parser = DateDataParser(languages=["en"])
    for phrase in ("friday", "in 2 days", "18/11"):
        parser.get_date_data(phrase)


async def _seed_if_empty(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            n_items = (await conn.execute(select(func.count()).select_from(catalog_items))).scalar_one()
            n_users = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
        if n_items == 0:
            inserted, _ = await import_catalog(engine, DEMO_CATALOG)
            log.info("studio: imported the demo catalogue (%d items)", inserted)
        if n_users == 0:
            for phone, name, role, site, limit in DEMO_USERS:
                await add_user(engine, phone=phone, name=name, role=role, site=site, approval_limit=limit)
            log.info("studio: added %d demo users", len(DEMO_USERS))
    finally:
        await engine.dispose()


class ContextResolver:
    """Turns a Studio run's plain fields into a full :class:`Context`; one per process.

    Clients are created lazily: the database is prepared on the first run (:func:`bootstrap`, in a thread,
    so the server's event loop never blocks), an engine is kept per event loop (SQLAlchemy's async pools are
    bound to the loop that opened them), and the catalogue index is rebuilt when the catalogue changes.

    Args:
        settings: the process settings; ``None`` reads them (``core.config.get_settings``) on first use.
        configure_tracing: configure LangSmith for the process from the settings before the first run (the
            Studio process does; tests that resolve contexts in their own process do not).
    """

    def __init__(self, settings: Settings | None = None, *, configure_tracing: bool = True) -> None:
        self._settings = settings
        self._configure_tracing = configure_tracing
        self._database_url: str | None = None
        self._boot_lock = threading.Lock()
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._catalogs = CatalogCache(CATALOG_CHECK_SECONDS)
        self._chat_model: Any = None
        self._chat_model_made = False

    @property
    def settings(self) -> Settings:
        """The process settings."""
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    def _bootstrap_once(self) -> str:
        with self._boot_lock:
            if self._database_url is None:
                if self._configure_tracing:
                    tracing.configure_tracing(self.settings)
                self._database_url = bootstrap(self.settings)
            return self._database_url

    async def engine(self) -> Any:
        """This event loop's SQLAlchemy async engine (the database is prepared first, once per process)."""
        loop = asyncio.get_running_loop()
        engine = self._engines.get(loop)
        if engine is None:
            url = (
                self._database_url if self._database_url is not None else await asyncio.to_thread(self._bootstrap_once)
            )

            engine = self._engines.setdefault(loop, make_engine(url, pool_size=2))
        return engine

    async def catalog(self, engine: Any) -> Any:
        """The catalogue index, rebuilt when the catalogue's row count or last update changed."""
        return await self._catalogs.get(engine, embedding_model=self.settings.EMBEDDING_MODEL)

    def chat_model(self) -> Any:
        """The configured chat model (``LLM_MODEL``), or ``None`` for the deterministic path only."""
        if not self._chat_model_made:
            self._chat_model = make_chat_model(self.settings)
            self._chat_model_made = True
        return self._chat_model

    async def user(self, engine: Any, phone: str | None) -> User:
        """The active user with this phone (E.164 or wa_id digits), or the demo requester when ``phone`` is None.

        Raises:
            PermissionError: no active user has that number, or no requester exists for the default.
            ValueError: ``phone`` is not a plausible phone number.
        """
        if phone is not None:
            user = await get_user(engine, wa_id=normalize_phone(phone)[1:])
            if user is None:
                # The number stays out of the message: errors are traced too.
                raise PermissionError("no active user has the phone number given in the run context")
            return user
        user = await get_user(engine, wa_id=DEMO_REQUESTER_PHONE[1:])
        if user is not None:
            return user
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(users.c.id).where(users.c.active, users.c.role == "requester").order_by(users.c.id).limit(1)
                )
            ).first()
        user = await get_user(engine, id=row.id) if row is not None else None
        if user is None:
            raise PermissionError("no requester in the users table; add one (procure users add) or pass a phone")
        return user

    async def resolve(self, context: Any, config: Mapping[str, Any] | None = None) -> Context:
        """A full Context for one run.

        Args:
            context: the run's context: a :class:`Context` (returned as is), a :class:`StudioContext`, a
                mapping of its fields, or ``None``.
            config: the run's config; ``configurable`` fields fill what ``context`` leaves unset.

        Raises:
            PermissionError: the phone number belongs to no active user.
            ValueError: a malformed phone number or ``now``.
        """
        if isinstance(context, Context):
            return context
        configurable = (config or {}).get("configurable") or {}
        plain = StudioContext.from_mapping(configurable)
        given = context if isinstance(context, StudioContext) else StudioContext.from_mapping(context)
        for f in fields(StudioContext):
            if getattr(given, f.name) is not None:
                setattr(plain, f.name, getattr(given, f.name))
        engine = await self.engine()
        user = await self.user(engine, plain.phone)
        st = self.settings
        sites = tuple(dict.fromkeys([*st.site_list, *([user.site] if user.site else [])]))
        return Context(
            user=user,
            chat_id=plain.chat_id or user.wa_id,
            provider="meta",
            engine=engine,
            catalog=await self.catalog(engine),
            sites=sites,
            currency=st.DEFAULT_CURRENCY,
            timezone=st.TIMEZONE,
            chat_model=self.chat_model(),
            model_name=st.LLM_MODEL or "none",
            context_window=st.CONTEXT_WINDOW_MESSAGES,
            now=_parse_now(plain.now, st.TIMEZONE),
        )

    async def aclose(self) -> None:
        """Dispose of the engine of the running loop (tests; the server process simply exits)."""
        engine = self._engines.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()


def _parse_now(value: str | None, timezone: str) -> datetime | None:
    """``StudioContext.now`` as an aware datetime (a time without offset is read in the company's zone)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(timezone))


class StudioGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph whose runs get their :class:`Context` from a :class:`ContextResolver`.

    Built with :func:`studio_graph`. ``Pregel.copy`` (which the API server calls to attach its checkpointer
    and store) rebuilds the object from its attributes, so the resolver is a constructor argument.
    """

    def __init__(self, *, resolver: ContextResolver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resolver = resolver

    async def astream(
        self, input: Any, config: Any = None, *, context: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """``Pregel.astream`` with the run's plain context resolved into a full Context first."""
        ctx = await self.resolver.resolve(context, config)
        async for part in super().astream(input, config, context=ctx, **kwargs):
            yield part


def studio_graph(compiled: CompiledStateGraph[Any, Any, Any, Any], resolver: ContextResolver) -> StudioGraph:
    """Wrap a compiled graph (without checkpointer) for Studio: :class:`StudioContext` in, Context resolved."""
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    attrs["context_schema"] = StudioContext
    return StudioGraph(resolver=resolver, **attrs)


#: The process's resolver: Settings are read, tracing configured and the database prepared on the first run.
resolver = ContextResolver()

#: The per-chat conversation graph (``{"inbound": [message dicts], "turn_id": int}`` in).
procurement = studio_graph(procurement_graph.graph, resolver)
#: The approval graph (``{"request_id": int, "revision": int}`` in; resume with
#: ``Command(resume={"decision": "approve"|"reject", "reason": ...})`` and the approver's phone in the context:
#: the decider is the run's user, never a field of the answer).
approval = studio_graph(approval_graph.graph, resolver)
