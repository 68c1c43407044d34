"""LangSmith tracing: on only when ``LANGSMITH_API_KEY`` is configured, and never with personal data.

Without a key, tracing is switched off explicitly (``langsmith.configure(enabled=False)`` and
``LANGSMITH_TRACING=false``), so nothing leaves the machine whatever the environment says. With a key, one
LangSmith client is configured for the process with an ``anonymizer`` (langsmith ``Client(anonymizer=...)``,
applied client-side to every run's inputs, outputs, metadata and error before upload) that:

- replaces phone numbers and wa_ids (digit runs of phone length) with stable pseudonyms (``p-<10 hex>``, an HMAC
  keyed from the API key, so one person's runs still group together without their number);
- replaces the values of identity keys (``sender``, ``chat_id``, ``to``, ``wa_id``, ``phone``...) with those
  pseudonyms, names under name keys (``display_name``, ``sender_name``...) with ``[name]``, and WhatsApp
  message ids (a wamid is the base64 of the sender's number) with ``[id]``;
- replaces the known users' display names (and their words) inside free text with ``[name]``; the names are
  read from the ``users`` table by :func:`turn_config` (at most once a minute, only while tracing is on).

This module is the only place that sets LangSmith's environment; process entry points call
:func:`configure_tracing` at start-up (``server/studio.py`` does; :func:`turn_config` does it once for a process
that has not). Token counts reach LangSmith through the chat model's ``usage_metadata`` without extra code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from core.config import Settings
from core.db import users
from graphs.context import Context
from prompts import INTAKE_PROMPT_VERSION, REPLIES_VERSION

log = logging.getLogger(__name__)

#: Keys whose values identify a person by number (WhatsApp ids, phone numbers, chat ids): pseudonymised.
IDENTITY_KEYS = frozenset(
    {
        "sender",
        "chat_id",
        "to",
        "from",
        "wa_id",
        "phone",
        "phone_number",
        "recipient_id",
        "sender_user_id",
        "user_id",
        "jid",
        "remote_jid",
    }
)
#: Keys whose values are a person's name: replaced with ``[name]``.
NAME_KEYS = frozenset(
    {
        "display_name",
        "sender_name",
        "profile_name",
        "contact_name",
        "full_name",
        "first_name",
        "last_name",
        "username",
        "requester_name",
        "approver_name",
    }
)
#: Provider message ids: a Cloud API wamid is base64 of the sender's number, so the whole value goes.
ID_KEYS = frozenset({"provider_message_id", "wamid", "context_id", "message_id"})
#: Keys never kept in run metadata (identities, names, ids, the API server's auth user).
METADATA_DROP_KEYS = IDENTITY_KEYS | NAME_KEYS | ID_KEYS | {"user", "name", "langgraph_auth_user"}

# A phone number or wa_id inside any string: "+" and 7-15 digits, or 9-15 digits without "+", optionally
# grouped by single spaces ("+254 700 000 001", "0712 345 678"). Not part of a longer word or decimal, so
# SKUs, dates ("2026-11-18"), amounts ("1234.50") and ISO times stay readable.
_PHONE = re.compile(r"(?<![\w.+])(\+?)(\d(?: ?\d){6,14})(?![\w]|\.\d)")

_NAME_REFRESH_SECONDS = 60.0


class _State:
    """Process-wide tracing state (set by :func:`configure_tracing`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.configured = False
        self.enabled = False
        self.client: Any = None
        self.key = hashlib.sha256(b"procure-trace-pseudonym:").digest()
        self.names: frozenset[str] = frozenset()
        self.names_re: re.Pattern[str] | None = None
        # Words that stay readable even when they are part of someone's name ("Stores Nairobi").
        self.keep_words: frozenset[str] = frozenset()
        self.names_loaded_at = 0.0


_state = _State()


def tracing_enabled() -> bool:
    """Whether this process sends traces to LangSmith (only after :func:`configure_tracing` with a key)."""
    return _state.enabled


def configure_tracing(settings: Settings) -> bool:
    """Configure LangSmith for this process from Settings; call once at process start.

    Without ``LANGSMITH_API_KEY`` tracing is switched off explicitly, whatever ``LANGSMITH_TRACING`` says.
    With it, a client for ``LANGSMITH_ENDPOINT`` (default: LangSmith's own) sends runs to ``LANGSMITH_PROJECT``
    through the redacting :func:`scrub` anonymizer. The key itself is never written to the environment.

    Args:
        settings: the process settings.

    Returns:
        True when tracing is on.
    """
    import langsmith

    key = settings.LANGSMITH_API_KEY.get_secret_value() if settings.LANGSMITH_API_KEY else ""
    with _state.lock:
        old = _state.client
        _state.keep_words = frozenset(settings.site_list)
        if not key:
            # Libraries and child processes that read the environment must agree that tracing is off.
            os.environ["LANGSMITH_TRACING"] = "false"
            os.environ["LANGCHAIN_TRACING_V2"] = "false"
            langsmith.configure(enabled=False, client=None)
            _state.enabled, _state.client = False, None
        else:
            _state.key = hashlib.sha256(b"procure-trace-pseudonym:" + key.encode()).digest()
            client = langsmith.Client(
                api_url=settings.LANGSMITH_ENDPOINT or None,
                api_key=key,
                anonymizer=scrub,
            )
            os.environ["LANGSMITH_TRACING"] = "true"
            os.environ["LANGSMITH_PROJECT"] = settings.LANGSMITH_PROJECT
            if settings.LANGSMITH_ENDPOINT:
                os.environ["LANGSMITH_ENDPOINT"] = settings.LANGSMITH_ENDPOINT
            langsmith.configure(client=client, enabled=True, project_name=settings.LANGSMITH_PROJECT)
            _state.enabled, _state.client = True, client
        _state.configured = True
    if old is not None and old is not _state.client:
        _flush_client(old, 5.0)
    log.info("LangSmith tracing %s", "on (redacted)" if _state.enabled else "off")
    return _state.enabled


def flush_tracing(timeout: float = 10.0) -> None:
    """Send runs still queued in the background (call before a short-lived process exits)."""
    if _state.client is not None:
        _flush_client(_state.client, timeout)


def _flush_client(client: Any, timeout: float) -> None:
    try:
        client.flush(timeout=timeout)
    except Exception as exc:  # tracing must never break the program
        log.warning("could not flush LangSmith runs: %s", exc)


def pseudonym(digits: str) -> str:
    """Stable pseudonym of a phone number or wa_id (``p-`` and 10 hex digits; only the digits count)."""
    only = re.sub(r"\D", "", digits)
    return "p-" + hmac.new(_state.key, only.encode(), hashlib.sha256).hexdigest()[:10]


def thread_ref(thread_id: str) -> str:
    """A thread id fit for traces: ``meta:254700000001`` becomes ``meta:p-…``; ``approval:PR-3:r1`` stays."""
    return _PHONE.sub(lambda m: pseudonym(m.group(2)) if _is_phone(m) else m.group(0), thread_id)


def _is_phone(m: re.Match[str]) -> bool:
    digits = sum(c.isdigit() for c in m.group(2))
    return digits >= (7 if m.group(1) else 9)


def set_known_names(names: Iterable[str]) -> None:
    """Names to hide inside free text: each full name and each of its words of 3 letters or more.

    Full names match in any letter case; single words match as written (names are capitalised in replies),
    so a surname like "Approver" does not swallow the word "approver" in a role field. Configured site names
    are never hidden on their own (a shared account may be called "Stores Nairobi").
    """
    full: set[str] = set()
    words: set[str] = set()
    for name in names:
        name = " ".join((name or "").split())
        if not name:
            continue
        full.add(name)
        words.update(w for w in re.findall(r"[^\W\d_]{3,}", name) if w not in _state.keep_words)
    if frozenset(full) == _state.names and _state.names_re is not None:
        return
    pattern = None
    if full:
        alts = sorted(full, key=len, reverse=True)
        parts = [f"(?i:{re.escape(n)})" for n in alts] + [re.escape(w) for w in sorted(words, key=len, reverse=True)]
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")
    with _state.lock:
        _state.names = frozenset(full)
        _state.names_re = pattern


async def refresh_known_names(engine: Any, *, max_age: float = _NAME_REFRESH_SECONDS) -> None:
    """Reload the users' display names for :func:`scrub` (no-op while tracing is off or the list is fresh).

    Args:
        engine: SQLAlchemy async engine.
        max_age: seconds a loaded list is trusted.
    """
    if not _state.enabled or engine is None or time.monotonic() - _state.names_loaded_at < max_age:
        return
    try:
        async with engine.connect() as conn:
            names = list((await conn.execute(select(users.c.display_name))).scalars())
    except Exception as exc:  # the turn matters more than the redaction list; keep the old one
        log.warning("could not load user names for trace redaction: %s", exc)
        return
    set_known_names(names)
    _state.names_loaded_at = time.monotonic()


def scrub_text(text: str) -> str:
    """A string with phone numbers pseudonymised and known names replaced by ``[name]``."""
    out = _PHONE.sub(lambda m: pseudonym(m.group(2)) if _is_phone(m) else m.group(0), text)
    pattern = _state.names_re
    return pattern.sub("[name]", out) if pattern is not None else out


def scrub(data: Any) -> Any:
    """The LangSmith anonymizer: a copy of ``data`` without phone numbers, wa_ids, message ids or names.

    Walks dicts and lists (LangSmith passes JSON-decoded inputs, outputs, metadata and ``{"error": str}``).
    Identity keys get pseudonyms, name keys ``[name]``, message-id keys ``[id]``; every other string is
    passed through :func:`scrub_text`. Numbers, booleans and ``None`` are kept.
    """
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        for k, v in data.items():
            key = k.lower() if isinstance(k, str) else k
            if key == "langgraph_auth_user":
                continue
            if key in IDENTITY_KEYS and v is not None and not isinstance(v, bool):
                out[k] = _identity(v)
            elif key in NAME_KEYS and v is not None:
                out[k] = "[name]"
            elif key in ID_KEYS and v is not None:
                out[k] = "[id]"
            else:
                out[k] = scrub(v)
        return out
    if isinstance(data, list | tuple):
        return [scrub(v) for v in data]
    if isinstance(data, str):
        return scrub_text(data)
    return data


def _identity(value: Any) -> Any:
    if isinstance(value, str | int):
        text = str(value)
        return pseudonym(text) if any(c.isdigit() for c in text) else "[redacted]"
    return scrub(value) if isinstance(value, Mapping | list | tuple) else "[redacted]"


def scrub_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Run metadata without identity, name or id keys, and with phone numbers pseudonymised in the rest."""
    kept = {k: v for k, v in metadata.items() if k.lower() not in METADATA_DROP_KEYS and v is not None}
    return {k: scrub_text(v) if isinstance(v, str) else scrub(v) for k, v in kept.items()}


_RUN_NAMES = {"procurement": "procurement turn", "approval": "approval step"}


async def turn_config(
    graph: str,
    ctx: Context,
    *,
    thread_id: str,
    request_id: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The ``run_name``, ``tags`` and ``metadata`` of a ``RunnableConfig`` for one graph run of a turn.

    Merge the result into the config passed to ``ainvoke`` (``configurable.thread_id`` stays as it is; the
    metadata's ``thread_id`` is the pseudonymised :func:`thread_ref`, which LangGraph then keeps instead of
    copying the real one in).

    Args:
        graph: ``"procurement"`` or ``"approval"``.
        ctx: the run's Context (role, provider, model name and turn id are read from it).
        thread_id: the LangGraph thread id.
        request_id: the purchase request the run is about, when known.
        settings: when given and this process has not configured tracing yet, :func:`configure_tracing` runs
            once with them (a safety net for entry points that do not call it themselves).

    Returns:
        ``{"run_name": str, "tags": [str], "metadata": {str: str | int}}``; no phone numbers, wa_ids or names.
    """
    if settings is not None and not _state.configured:
        configure_tracing(settings)
    await refresh_known_names(ctx.engine)
    role = str(ctx.user.role) if ctx.user is not None else "unknown"
    metadata = scrub_metadata(
        {
            "graph": graph,
            "thread_id": thread_ref(thread_id),
            "turn_id": ctx.turn_id,
            "request_number": f"PR-{request_id}" if request_id is not None else None,
            "prompt_version": INTAKE_PROMPT_VERSION,
            "replies_version": REPLIES_VERSION,
            "role": role,
            "provider": ctx.provider,
            "model_name": ctx.model_name,
        }
    )
    return {
        "run_name": _RUN_NAMES.get(graph, f"{graph} run"),
        "tags": [f"graph:{graph}", f"provider:{ctx.provider}", f"role:{role}"],
        "metadata": metadata,
    }
