"""Purchase requests: reading, changing, and the LLM usage recorded per request.

Reading is :mod:`~tools.requests.view`, changing :mod:`~tools.requests.changes`, LLM usage
:mod:`~tools.requests.usage`. Callers use ``from tools import requests as R``.
"""

from tools.requests.changes import (
    Decision,
    Submitted,
    amend_request,
    cancel_request,
    decide,
    submit_request,
)
from tools.requests.usage import usage_of
from tools.requests.view import (
    NUMBER_RE,
    OPEN_STATUSES,
    RequestView,
    get_request,
    history,
    latest_open_request,
    list_requests,
    number_of,
    parse_number,
    pending_for,
)

__all__ = [
    "NUMBER_RE",
    "OPEN_STATUSES",
    "Decision",
    "RequestView",
    "Submitted",
    "amend_request",
    "cancel_request",
    "decide",
    "get_request",
    "history",
    "latest_open_request",
    "list_requests",
    "number_of",
    "parse_number",
    "pending_for",
    "submit_request",
    "usage_of",
]
