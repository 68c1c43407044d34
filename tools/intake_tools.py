"""The intake tools the LLM may call, per role, with their argument schemas, and the read-only role lookups.

No schema has a user, phone or role parameter: identity and the draft come from the run's Context and State
and are applied by :mod:`nodes.llm_intake`, never filled by the model. ``search_catalog`` is read-only; the
draft tools change only the caller's own draft. The role lookups (explain a request, pending approvals, where
a request was ordered, company-wide request search) are read-only and re-check, in :func:`run_lookup`, what the
caller (the Context's user) may see, whatever the model asked. Deciding a request is never an LLM tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain import Role
from core.repo import User
from tools import requests as R
from tools.tokens import count_tokens


class _Args(BaseModel):
    # Unknown arguments (e.g. an injected "user_id" or "role") make the whole call invalid.
    model_config = ConfigDict(extra="forbid")


class SearchCatalog(_Args):
    """Search the catalogue; returns up to 5 items (SKU, unit, price)."""

    query: str = Field(max_length=200)


class AddLine(_Args):
    """Add a line to the draft."""

    sku: str | None = Field(description="null for a free-text item", max_length=64)
    description: str = Field(max_length=200)
    quantity: str = Field(description="decimal, e.g. '20'", pattern=r"^\d{1,7}(\.\d{1,3})?$")
    unit: str = Field(max_length=20)


class UpdateLine(_Args):
    """Change a draft line's quantity, unit or item."""

    line_number: int = Field(ge=1, le=50)
    quantity: str | None = Field(default=None, pattern=r"^\d{1,7}(\.\d{1,3})?$")
    unit: str | None = Field(default=None, max_length=20)
    sku: str | None = Field(default=None, max_length=64)


class RemoveLine(_Args):
    """Remove a draft line."""

    line_number: int = Field(ge=1, le=50)


class SetSite(_Args):
    """Set the delivery site."""

    site: str = Field(max_length=100)


class SetNeededBy(_Args):
    """Set the needed-by date."""

    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")


class AskClarification(_Args):
    """Ask the person about what is unclear."""

    kind: Literal["clarify_item", "quantity", "site", "needed_by", "unknown_item", "not_a_request"]
    skus: list[str] = Field(default_factory=list, max_length=10)


_PR_NUMBER = r"^(?:[Pp][Rr][-\s]?)?\d{1,9}$"


class ExplainRequest(_Args):
    """Show request PR-n."""

    number: str = Field(pattern=_PR_NUMBER)


class ListPendingApprovals(_Args):
    """Requests awaiting my approval."""


class RequestOrders(_Args):
    """Where request PR-n was ordered."""

    number: str = Field(pattern=_PR_NUMBER)


class FindRequests(_Args):
    """Requests by number, status or site."""

    number: str | None = Field(default=None, pattern=_PR_NUMBER)
    status: Literal["pending_approval", "approved", "rejected", "cancelled", "ordered"] | None = None
    site: str | None = Field(default=None, max_length=100)


#: Tools that change the caller's draft (plus the read-only catalogue search).
DRAFT_SCHEMAS: dict[str, type[BaseModel]] = {
    "search_catalog": SearchCatalog,
    "add_line": AddLine,
    "update_line": UpdateLine,
    "remove_line": RemoveLine,
    "set_site": SetSite,
    "set_needed_by": SetNeededBy,
    "ask_clarification": AskClarification,
}
#: Read-only lookups, executed by :func:`run_lookup` with the caller's identity; results go to the person.
LOOKUP_SCHEMAS: dict[str, type[BaseModel]] = {
    "explain_request": ExplainRequest,
    "list_pending_approvals": ListPendingApprovals,
    "request_orders": RequestOrders,
    "find_requests": FindRequests,
}
SCHEMAS: dict[str, type[BaseModel]] = {**DRAFT_SCHEMAS, **LOOKUP_SCHEMAS}
DRAFT_TOOLS = tuple(DRAFT_SCHEMAS)
LOOKUP_TOOLS = frozenset(LOOKUP_SCHEMAS)

#: Tools per role. Everyone drafts for themselves; requesters, approvers and buyers look requests up by number
#: (their own; approvers also those they approve; buyers any); approvers also list what waits for them; buyers
#: also see where requests were ordered; admins search all requests (by number, status, site) and orders.
#: Deciding (approve/reject) is never an LLM tool: it stays a button answered by the approval graph.
ROLE_TOOLS: dict[Role, tuple[str, ...]] = {
    Role.REQUESTER: (*DRAFT_TOOLS, "explain_request"),
    Role.APPROVER: (*DRAFT_TOOLS, "explain_request", "list_pending_approvals"),
    Role.BUYER: (*DRAFT_TOOLS, "explain_request", "request_orders"),
    Role.ADMIN: (*DRAFT_TOOLS, "find_requests", "request_orders"),
}
#: Roles that see every request (the rule :func:`may_see_request` and the ``status PR-12`` command share).
SEE_ALL = (Role.BUYER, Role.ADMIN)
#: Most requests a lookup returns.
LOOKUP_LIMIT = 10


def may_see_request(user: User, req: R.RequestView) -> bool:
    """Whether ``user`` may see ``req``: its requester, its assigned approver, buyers and admins."""
    return (
        user.role in SEE_ALL or req.requester.id == user.id or (req.approver is not None and req.approver.id == user.id)
    )


@dataclass
class LookupResult:
    """What a role lookup found, for the node to render.

    Attributes:
        tool: the lookup's name.
        requests: the requests found (``explain_request``, ``request_orders``: the one named;
            ``list_pending_approvals``, ``find_requests``: up to :data:`LOOKUP_LIMIT`, newest first).
        refused: the request number asked for when the caller may not see it or it does not exist (the two are
            answered alike); ``None`` otherwise.
        single: one request was asked for by number (shown in full rather than as a list row).
    """

    tool: str
    requests: list[R.RequestView] = field(default_factory=list)
    refused: str | None = None
    single: bool = False


async def _visible(engine: AsyncEngine, number: str, user: User) -> tuple[R.RequestView | None, str]:
    rid = int(number) if number.isdigit() else R.parse_number(number)
    shown = R.number_of(rid) if rid is not None else number
    req = await R.get_request(engine, rid) if rid is not None else None
    return (req if req is not None and may_see_request(user, req) else None), shown


async def run_lookup(name: str, args: BaseModel, *, engine: AsyncEngine, user: User) -> LookupResult:
    """Run a read-only role lookup as ``user`` (the run's identity, never a model argument).

    Authorisation is re-checked here whatever the model asked: the tool must be one of the user's role's tools,
    and a request is shown only to its requester, its approver, buyers and admins.

    Args:
        name: a :data:`LOOKUP_TOOLS` name.
        args: its validated arguments (:data:`LOOKUP_SCHEMAS`).
        engine: the database.
        user: who is asking (``runtime.context.user``).

    Returns:
        The result; ``refused`` is set when the named request is missing or not the caller's to see.

    Raises:
        PermissionError: the tool is not a lookup of the user's role.
    """
    if name not in LOOKUP_TOOLS or name not in ROLE_TOOLS[user.role]:
        raise PermissionError(f"{name!r} is not a lookup for role {user.role}")
    if name == "list_pending_approvals":
        return LookupResult(name, requests=(await R.pending_for(engine, user))[:LOOKUP_LIMIT])
    if name == "find_requests" and getattr(args, "number", None) is None:
        a: Any = args
        reqs = await R.list_requests(engine, status=a.status, limit=200)
        if a.site:
            reqs = [r for r in reqs if (r.site or "").lower() == a.site.strip().lower()]
        return LookupResult(name, requests=reqs[:LOOKUP_LIMIT])
    req, shown = await _visible(engine, args.number, user)  # type: ignore[attr-defined]
    if req is None:
        return LookupResult(name, refused=shown)
    return LookupResult(name, requests=[req], single=True)


def _not_callable(**_: object) -> str:
    # The graph node applies tool calls itself with identity from the Context; direct calls are a bug.
    raise RuntimeError("intake tools are applied by nodes.llm_intake, not called directly")


def _compact_schema(model: type[BaseModel]) -> dict[str, object]:
    """The JSON schema the model sees: types, enums and short descriptions, without length/pattern keywords.

    Those constraints still apply: every call is validated against :data:`SCHEMAS` before anything is written.
    Leaving them out of the prompt keeps the largest intake prompt within its token budget.
    """
    schema = model.model_json_schema()
    required = schema.get("required", [])
    props: dict[str, object] = {}
    for name, spec in schema.get("properties", {}).items():
        spec = dict(spec)
        if "anyOf" in spec:  # Optional[str]: a nullable string if required, else a string that may be left out
            options = spec.pop("anyOf")
            types = [a.get("type") for a in options if a.get("type")]
            if name not in required:
                types = [x for x in types if x != "null"]
            spec["type"] = types if len(types) > 1 else types[0]
            for option in options:
                if "enum" in option:
                    spec["enum"] = option["enum"]
        for key in ("maxLength", "minLength", "pattern", "title", "default", "maximum", "minimum", "maxItems"):
            spec.pop(key, None)
        if spec.get("type") == "array":
            spec["items"] = {"type": "string"}
        props[name] = spec
    out: dict[str, object] = {
        "title": model.__name__,
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "properties": props,
    }
    if required:
        out["required"] = required
    return out


def tools_for(role: Role) -> list[BaseTool]:
    """LangChain tool definitions (name, description, compact args schema) bound for ``role``."""
    return [
        StructuredTool.from_function(
            func=_not_callable,
            name=name,
            description=(SCHEMAS[name].__doc__ or name).strip(),
            args_schema=_compact_schema(SCHEMAS[name]),
        )
        for name in ROLE_TOOLS[role]
    ]


@cache
def schema_tokens(role: Role) -> int:
    """Tokens (o200k_base) the role's bound tool schemas take in a request, as OpenAI-style tool JSON."""
    return count_tokens(json.dumps([convert_to_openai_tool(t) for t in tools_for(role)]))
