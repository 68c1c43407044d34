"""Fulfilment: place an approved request's orders where each supplier takes them, exactly once, and say so.

By concern:

* :mod:`~tools.fulfilment.model`: states, references, rows (``Fulfilment``, ``Supplier``), an attempt's outcome
  (``Placed``), errors (``FulfilmentError``; ``RetryLater``, which the worker maps to its queue's retry);
* :mod:`~tools.fulfilment.store`: the SQL state machine with its audit records, and advisory-lock sessions;
* :mod:`~tools.fulfilment.placement`: ERP and website placement (look the reference up before ordering);
* :mod:`~tools.fulfilment.failures`: classifying what ended an attempt;
* :mod:`~tools.fulfilment.notices`: WhatsApp notices (wording in ``prompts/replies.toml``);
* :mod:`~tools.fulfilment.fulfiller`: the job body and Retry presses, tying the above together.
"""

from tools.fulfilment.failures import Failure, describe_failure, is_transient
from tools.fulfilment.fulfiller import Fulfiller
from tools.fulfilment.model import (
    CANCELLED,
    CHANNELS,
    ERP,
    FAILED,
    OPEN_STATES,
    PENDING,
    PLACED,
    PLACING,
    WEBSITE,
    Fulfilment,
    FulfilmentError,
    Notify,
    Placed,
    RetryLater,
    RetryOutcome,
    Supplier,
    job_id,
    po_reference,
)
from tools.fulfilment.placement import portal_factories

__all__ = [
    "CANCELLED",
    "CHANNELS",
    "ERP",
    "FAILED",
    "OPEN_STATES",
    "PENDING",
    "PLACED",
    "PLACING",
    "WEBSITE",
    "Failure",
    "Fulfiller",
    "Fulfilment",
    "FulfilmentError",
    "Notify",
    "Placed",
    "RetryLater",
    "RetryOutcome",
    "Supplier",
    "describe_failure",
    "is_transient",
    "job_id",
    "po_reference",
    "portal_factories",
]
