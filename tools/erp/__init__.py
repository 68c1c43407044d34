"""ERP integration: the adapter interface, the Tryton adapter, and the bundled reference Tryton server.

Run-time code imports :mod:`tools.erp.base` and :mod:`tools.erp.tryton` (plain JSON-RPC over httpx);
the bundled reference Tryton is prepared and served by :mod:`sandboxes.tryton` (trytond, proteus).
"""

from tools.erp.base import (
    CANCELLED,
    CONFIRMED,
    DONE,
    DRAFT,
    PLACED_STATES,
    PROCESSING,
    QUOTATION,
    ErpAdapter,
    ErpAuthError,
    ErpDuplicate,
    ErpError,
    ErpLine,
    ErpNotFound,
    ErpOrder,
    ErpProtocolError,
    ErpRejected,
    ErpUnavailable,
)
from tools.erp.tryton import TrytonClient, TrytonErp

__all__ = [
    "CANCELLED",
    "CONFIRMED",
    "DONE",
    "DRAFT",
    "PLACED_STATES",
    "PROCESSING",
    "QUOTATION",
    "ErpAdapter",
    "ErpAuthError",
    "ErpDuplicate",
    "ErpError",
    "ErpLine",
    "ErpNotFound",
    "ErpOrder",
    "ErpProtocolError",
    "ErpRejected",
    "ErpUnavailable",
    "TrytonClient",
    "TrytonErp",
]
