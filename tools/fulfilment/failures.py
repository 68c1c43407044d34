"""Failure handling: classify the exception that ended an attempt, and tell our own outages from the destination's."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tools.erp.base import ErpError
from tools.fulfilment.model import FulfilmentError


def is_transient(exc: BaseException) -> bool:
    """Our own infrastructure failed (database, Redis, a retryable WhatsApp send): retry the job unchanged."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
    if isinstance(exc, psycopg.OperationalError | PoolTimeout | RedisConnectionError | RedisTimeout | OSError):
        return True
    # server.channels.base.ChannelSendError (tools cannot import the server layer): retryable sends.
    return bool(getattr(exc, "retryable", False)) and type(exc).__name__ == "ChannelSendError"


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt, classified.

    Attributes:
        reason: one line shown to buyers and stored in ``fulfilments.error`` (never holds a password).
        retryable: the same attempt may succeed later unchanged.
        evidence_keys: object-storage keys of the failed run's screenshot and trace (websites).
        retry_after: seconds the destination asked us to wait (HTTP 429 ``Retry-After``), if it said.
        unexpected: not a failure the adapters anticipate (a bug, or an unknown library error): logged with
            its traceback.
    """

    reason: str
    retryable: bool
    evidence_keys: tuple[str, ...] = ()
    retry_after: float | None = None
    unexpected: bool = False


def describe_failure(exc: BaseException, *, budget_seconds: float) -> Failure:
    """Classify the exception that ended an attempt (ERP and portal errors carry their own ``retryable``).

    Args:
        exc: what the attempt raised.
        budget_seconds: the attempt's time budget (named in the reason of a timeout).
    """
    # Lazily: the portal package loads Playwright, which ERP-only workers never need.
    from tools.supplier_portal.base import PortalError, PortalRateLimited

    if isinstance(exc, ErpError):
        return Failure(f"ERP: {exc.message}", exc.retryable)
    if isinstance(exc, PortalError):
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
        wait = exc.retry_after if isinstance(exc, PortalRateLimited) else None
        return Failure(f"website: {reason}", exc.retryable, tuple(exc.evidence_keys), wait)
    if isinstance(exc, FulfilmentError):
        return Failure(str(exc), False)
    if isinstance(exc, TimeoutError):
        return Failure(f"the destination did not finish within {budget_seconds:.0f} s", True)
    if isinstance(exc, ValueError):
        return Failure(f"the order is not valid: {exc}", False)
    # Anything else is unexpected: safe to retry (every attempt looks the order up first) until tries run out.
    return Failure(f"unexpected error: {type(exc).__name__}: {exc}", True, unexpected=True)
