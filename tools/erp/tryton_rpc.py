"""Tryton over plain JSON-RPC: the async client, the marshalling of Tryton's types and its errors as ErpErrors.

Protocol (https://docs.tryton.org/projects/server/en/latest/topics/rpc.html and ``trytond.protocols``):

* endpoint ``POST {url}/{database}/rpc/`` with ``{"id", "method", "params"}``;
* ``common.db.login`` with ``[login, {"password": pw}, language]`` answers ``[user_id, session, bus_url]``;
  later calls carry ``Authorization: Session base64("login:user_id:session")``; a session expires after
  ``[session] timeout`` seconds of inactivity (300 by default) and then calls answer HTTP 401;
* every ``model.<name>.<method>`` call takes the context dict as its last parameter (the user's context comes
  from ``model.res.user.get_preferences`` with ``[True, {}]``);
* values that JSON lacks travel as objects: ``{"__class__": "Decimal", "decimal": "3.50"}``,
  ``{"__class__": "date", "year": .., "month": .., "day": ..}`` (``trytond.protocols.jsonrpc``);
* a failed call answers HTTP 200 with an ``error`` member: ``["UserError", [message, description, domain]]``
  and the like for Tryton exceptions, ``[str(exception), traceback]`` for anything else (a unique violation
  surfaces that way).

The purchase adapter built on this client is :class:`tools.erp.tryton.TrytonErp`. Proteus is not used at run
time: it is synchronous, and each of its record reads costs extra round trips.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from tools.erp.base import (
    ErpAuthError,
    ErpDuplicate,
    ErpError,
    ErpProtocolError,
    ErpRejected,
    ErpUnavailable,
)

if TYPE_CHECKING:
    from core.config import Settings

logger = logging.getLogger(__name__)

#: Name of the unique index on ``purchase_purchase(reference)`` that ``sandboxes.tryton`` creates. Tryton drops
#: indexes named ``idx_*`` or ``*_index`` it does not know on module update, so the name avoids both.
REFERENCE_INDEX = "purchase_reference_uniq"


# --------------------------------------------------------------------------------------------------- encoding


def _encode(obj: Any) -> Any:
    """``json.dumps`` hook for the types Tryton marshals as ``{"__class__": ...}`` objects."""
    if isinstance(obj, Decimal):
        return {"__class__": "Decimal", "decimal": str(obj)}
    if isinstance(obj, dt.datetime):
        return {
            "__class__": "datetime",
            "year": obj.year,
            "month": obj.month,
            "day": obj.day,
            "hour": obj.hour,
            "minute": obj.minute,
            "second": obj.second,
            "microsecond": obj.microsecond,
        }
    if isinstance(obj, dt.date):
        return {"__class__": "date", "year": obj.year, "month": obj.month, "day": obj.day}
    if isinstance(obj, dt.time):
        return {
            "__class__": "time",
            "hour": obj.hour,
            "minute": obj.minute,
            "second": obj.second,
            "microsecond": obj.microsecond,
        }
    if isinstance(obj, dt.timedelta):
        return {"__class__": "timedelta", "seconds": obj.total_seconds()}
    if isinstance(obj, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} for Tryton JSON-RPC")


def _decode(d: dict[str, Any]) -> Any:
    """``json.loads`` object hook, inverse of :func:`_encode`."""
    cls = d.get("__class__")
    if cls is None:
        return d
    if cls == "Decimal":
        return Decimal(d["decimal"])
    if cls == "date":
        return dt.date(d["year"], d["month"], d["day"])
    if cls == "datetime":
        return dt.datetime(d["year"], d["month"], d["day"], d["hour"], d["minute"], d["second"], d["microsecond"])
    if cls == "time":
        return dt.time(d["hour"], d["minute"], d["second"], d["microsecond"])
    if cls == "timedelta":
        return dt.timedelta(seconds=d["seconds"])
    if cls == "bytes":
        return base64.b64decode(d["base64"])
    return d


def dumps(payload: Any) -> bytes:
    """Encode a JSON-RPC payload the way trytond decodes it (Decimal, date, datetime... as objects)."""
    return json.dumps(payload, default=_encode, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """Decode a trytond JSON-RPC answer (Decimal, date, datetime... objects become Python values)."""
    return json.loads(data, object_hook=_decode)


# ----------------------------------------------------------------------------------------------------- errors

# Tryton's access-right messages (trytond/ir/message.xml, msg_access_*, msg_read/write/create/delete_error).
_ACCESS_RE = re.compile(
    r"You are not allowed to (access|create records|read records|write to records|delete records|execute)"
    r"|Calling button .* is not allowed"
)
_TRANSIENT_RE = re.compile(
    r"database is locked|could not serialize|deadlock detected|OperationalError|TimeoutError|"
    r"canceling statement due to|too many connections|server closed the connection",
    re.IGNORECASE,
)


def map_tryton_error(method: str, error: Any) -> ErpError:
    """Turn the ``error`` member of a trytond JSON-RPC answer into a typed :class:`ErpError`.

    Args:
        method: the RPC method called (for the message).
        error: ``[exception_name, args]`` for Tryton exceptions (``UserError``, ``UserWarning``,
            ``LoginException``, ``ConcurrencyException``), ``[str(exception), traceback]`` for others.

    Returns:
        ErpDuplicate for a unique violation on the purchase reference, ErpAuthError for access-right and login
        errors, ErpUnavailable for lock/serialisation failures, ErpRejected for other user errors (business
        rules), ErpProtocolError for anything unexpected.
    """
    if isinstance(error, list | tuple) and error:
        kind, args = str(error[0]), (error[1] if len(error) > 1 else None)
    else:
        kind, args = str(error), None
    if kind == "UserError" and isinstance(args, list | tuple) and args:
        message = str(args[0])
        description = str(args[1]) if len(args) > 1 and args[1] else ""
        text = f"{message} ({description})" if description else message
        if _ACCESS_RE.search(message):
            return ErpAuthError(f"{method}: access denied by the ERP: {text}", detail=text)
        return ErpRejected(f"{method}: {text}", detail=text)
    if kind == "UserWarning" and isinstance(args, list | tuple) and len(args) > 1:
        return ErpRejected(f"{method}: ERP warning needs a human: {args[1]}", detail=str(args))
    if kind == "LoginException":
        return ErpAuthError(f"{method}: the ERP asks for another login step ({args})", detail=str(args))
    if kind == "ConcurrencyException":
        return ErpUnavailable(f"{method}: record modified concurrently, retry", detail=str(args))
    detail = kind if args is None else f"{kind}\n{args}"
    first_line = kind.strip().splitlines()[0] if kind.strip() else "unknown error"
    if REFERENCE_INDEX in kind or "purchase_purchase.reference" in kind:
        return ErpDuplicate(f"{method}: a purchase with this reference already exists", detail=detail)
    if _TRANSIENT_RE.search(kind):
        return ErpUnavailable(f"{method}: transient ERP database error: {first_line}", detail=detail)
    return ErpProtocolError(f"{method}: unexpected ERP error: {first_line}", detail=detail)


class _SessionRejected(Exception):
    """HTTP 401/403 on a call made with a session: log in again once."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# ----------------------------------------------------------------------------------------------------- client


class TrytonClient:
    """Async JSON-RPC client for one Tryton database, with session login and transparent re-login.

    One instance keeps one HTTP connection pool and one session; it is safe to share between tasks of one
    event loop. Construct, then ``await client.login()`` (or let the first call log in), and ``await
    client.aclose()`` when done (or use ``async with``).

    Args:
        url: server base URL, e.g. ``http://127.0.0.1:8000`` (the database is appended).
        database: Tryton database name.
        login: Tryton user login.
        password: the user's password; kept out of logs and reprs.
        timeout: seconds per HTTP request (connect, read, write each). A confirm takes ~0.2 s on SQLite.
        language: language code sent at login (messages come back in it).
        transport: an ``httpx.AsyncBaseTransport`` (tests); the default retries a refused connect once.
    """

    def __init__(
        self,
        url: str,
        database: str,
        login: str,
        password: str | SecretStr,
        *,
        timeout: float = 30.0,
        language: str = "en",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.login_name = login
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self.language = language
        self.endpoint = f"{self.url}/{database}/rpc/"
        # retries=1 only re-attempts failed connects (nothing was sent), never a request.
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport or httpx.AsyncHTTPTransport(retries=1),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        self._ids = itertools.count(1)
        self._auth: str | None = None
        self._session_gen = 0
        self._login_lock = asyncio.Lock()
        self.user_id: int | None = None
        self.context: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> TrytonClient:
        """Build a client from ``ERP_URL``, ``ERP_DATABASE``, ``ERP_USER``, ``ERP_PASSWORD``.

        Raises:
            ErpProtocolError: ``ERP_URL`` is not set.
        """
        if not settings.ERP_URL:
            raise ErpProtocolError("ERP_URL is not set")
        return cls(settings.ERP_URL, settings.ERP_DATABASE, settings.ERP_USER, settings.ERP_PASSWORD, **kwargs)

    def __repr__(self) -> str:
        return f"TrytonClient({self.endpoint!r}, login={self.login_name!r})"

    async def __aenter__(self) -> TrytonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (the server-side session is left to expire)."""
        await self._http.aclose()

    @property
    def logged_in(self) -> bool:
        """True when the client holds a session (it may have expired server-side)."""
        return self._auth is not None

    async def login(self) -> None:
        """Open a session and load the user's context (2 round trips).

        Raises:
            ErpAuthError: wrong login or password (HTTP 401), or a login step other than the password.
            ErpUnavailable: server unreachable, 5xx, or login rate-limited (HTTP 429).
            ErpProtocolError: unknown database (HTTP 404) or unexpected answer.
        """
        async with self._login_lock:
            await self._login_locked()

    async def _login_locked(self) -> None:
        params = [self.login_name, {"password": self._password.get_secret_value()}, self.language]
        try:
            result = await self._post("common.db.login", params, auth=None)
        except _SessionRejected as exc:
            raise ErpAuthError(
                f"ERP login refused for user {self.login_name!r} on {self.database!r} (HTTP {exc.status})"
            ) from None
        try:
            user_id, session = int(result[0]), str(result[1])
        except (TypeError, ValueError, IndexError, KeyError):
            raise ErpProtocolError(f"unexpected login answer from {self.endpoint}") from None
        token = base64.b64encode(f"{self.login_name}:{user_id}:{session}".encode()).decode("ascii")
        auth = f"Session {token}"
        try:
            context = await self._post("model.res.user.get_preferences", [True, {}], auth=auth)
        except _SessionRejected as exc:
            raise ErpAuthError(f"ERP session refused right after login (HTTP {exc.status})") from None
        if not isinstance(context, dict):
            raise ErpProtocolError("unexpected answer to res.user.get_preferences")
        self._auth, self.user_id, self.context = auth, user_id, context
        self._session_gen += 1
        logger.debug("tryton login ok: %s@%s (user %s)", self.login_name, self.database, user_id)

    async def ensure_logged_in(self) -> None:
        """Log in unless a session is held (concurrent callers share one login)."""
        if self._auth is None:
            async with self._login_lock:
                if self._auth is None:
                    await self._login_locked()

    async def logout(self) -> None:
        """Close the session server-side and forget it locally (errors are ignored: it may have expired)."""
        auth, self._auth = self._auth, None
        if auth is None:
            return
        try:
            await self._post("common.db.logout", [], auth=auth)
        except (ErpError, _SessionRejected):
            pass

    async def rpc(self, method: str, params: Sequence[Any]) -> Any:
        """Make one raw call with the current session (no context added, no re-login).

        Args:
            method: e.g. ``common.db.logout`` or ``model.purchase.purchase.read``.
            params: positional parameters, sent as given.

        Raises:
            ErpAuthError: no session, or the server refused it (HTTP 401/403).
            ErpError: see :meth:`call`.
        """
        if self._auth is None:
            raise ErpAuthError("not logged in")
        try:
            return await self._post(method, list(params), auth=self._auth)
        except _SessionRejected as exc:
            raise ErpAuthError(f"{method}: session refused (HTTP {exc.status})") from None

    async def call(self, method: str, *args: Any) -> Any:
        """Call a ``model.*``/``wizard.*`` method; the user context is appended as the last parameter.

        Logs in first if needed. When the server refuses the session (HTTP 401/403: expired, logged out,
        server restarted with a new session table) it logs in again ONCE and repeats the call.

        Args:
            method: full method name, e.g. ``model.purchase.purchase.search_read``.
            *args: the method's positional parameters, without the context.

        Returns:
            The decoded ``result`` member (Decimals and dates as Python values).

        Raises:
            ErpAuthError: login refused, or still refused after re-login, or an access-right error.
            ErpUnavailable: connection refused or reset, timeout, HTTP 5xx/429, database lock (retryable).
            ErpDuplicate: unique violation on the purchase reference.
            ErpRejected: a Tryton user error (validation, business rule).
            ErpProtocolError: unknown database, unexpected payload or server exception.
        """
        for attempt in (1, 2):
            await self.ensure_logged_in()
            gen, auth = self._session_gen, self._auth
            try:
                return await self._post(method, [*args, self.context], auth=auth)
            except _SessionRejected as exc:
                if attempt == 2:
                    raise ErpAuthError(f"{method}: session refused again after re-login (HTTP {exc.status})") from None
                logger.info("tryton session refused (HTTP %s) on %s; logging in again", exc.status, method)
                async with self._login_lock:
                    # Another task may have logged in again already: only the first one does.
                    if self._session_gen == gen:
                        self._auth = None
                        await self._login_locked()
        raise AssertionError("unreachable")

    async def model(self, model: str, method: str, *args: Any) -> Any:
        """Shorthand for ``call(f"model.{model}.{method}", *args)``."""
        return await self.call(f"model.{model}.{method}", *args)

    async def _post(self, method: str, params: list[Any], *, auth: str | None) -> Any:
        body = dumps({"id": next(self._ids), "method": method, "params": params})
        headers = {"Authorization": auth} if auth else None
        try:
            response = await self._http.post(self.endpoint, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ErpUnavailable(f"{method}: ERP timed out ({type(exc).__name__}) at {self.url}") from exc
        except httpx.TransportError as exc:
            raise ErpUnavailable(f"{method}: cannot reach the ERP at {self.url}: {exc!r}") from exc
        status = response.status_code
        if status in (401, 403):
            raise _SessionRejected(status)
        if status == 404:
            raise ErpProtocolError(f"{method}: database {self.database!r} not found at {self.url} (HTTP 404)")
        if status == 429:
            raise ErpUnavailable(f"{method}: ERP rate limit (HTTP 429)")
        if status >= 500:
            raise ErpUnavailable(f"{method}: ERP server error HTTP {status}", detail=response.text[:2000])
        if status != 200:
            raise ErpProtocolError(f"{method}: unexpected HTTP {status}", detail=response.text[:2000])
        try:
            payload = loads(response.content)
        except ValueError as exc:
            raise ErpProtocolError(f"{method}: ERP answer is not JSON") from exc
        if not isinstance(payload, dict):
            raise ErpProtocolError(f"{method}: ERP answer is not a JSON-RPC object")
        if payload.get("error") is not None:
            raise map_tryton_error(method, payload["error"])
        if "result" not in payload:
            raise ErpProtocolError(f"{method}: ERP answer has neither result nor error")
        return payload["result"]
