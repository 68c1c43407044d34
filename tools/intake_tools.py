"""The intake tools the LLM may call, per role, with their argument schemas.

No schema has a user, phone or role parameter: identity and the draft come from the run's Context and State
and are applied by :mod:`nodes.llm_intake`, never filled by the model. ``search_catalog`` is read-only; the
others change only the caller's own draft.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from core.domain import Role


class _Args(BaseModel):
    # Unknown arguments (e.g. an injected "user_id" or "role") make the whole call invalid.
    model_config = ConfigDict(extra="forbid")


class SearchCatalog(_Args):
    """Search the company catalogue by words, name or SKU; returns up to 5 items with SKU, unit and price."""

    query: str = Field(description="what to look for, e.g. 'hp toner' or 'cement'", max_length=200)


class AddLine(_Args):
    """Add a line to the draft."""

    sku: str | None = Field(description="catalogue SKU, or null for a free-text item", max_length=64)
    description: str = Field(description="the item as the person named it", max_length=200)
    quantity: str = Field(description="decimal number in `unit`, e.g. '20'", pattern=r"^\d{1,7}(\.\d{1,3})?$")
    unit: str = Field(description="unit of measure, the catalogue unit when sku is given", max_length=20)


class UpdateLine(_Args):
    """Change a draft line's quantity, unit or item."""

    line_number: int = Field(ge=1, le=50, description="1-based line number in the draft")
    quantity: str | None = Field(default=None, pattern=r"^\d{1,7}(\.\d{1,3})?$")
    unit: str | None = Field(default=None, max_length=20)
    sku: str | None = Field(default=None, max_length=64)


class RemoveLine(_Args):
    """Remove a draft line."""

    line_number: int = Field(ge=1, le=50, description="1-based line number in the draft")


class SetSite(_Args):
    """Set the delivery site (one of the known sites)."""

    site: str = Field(max_length=100)


class SetNeededBy(_Args):
    """Set the date the goods are needed by."""

    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="ISO date YYYY-MM-DD")


class AskClarification(_Args):
    """Ask the person for something the message leaves open."""

    kind: Literal["clarify_item", "quantity", "site", "needed_by", "unknown_item", "not_a_request"]
    skus: list[str] = Field(default_factory=list, max_length=10, description="candidate SKUs for clarify_item")


SCHEMAS: dict[str, type[BaseModel]] = {
    "search_catalog": SearchCatalog,
    "add_line": AddLine,
    "update_line": UpdateLine,
    "remove_line": RemoveLine,
    "set_site": SetSite,
    "set_needed_by": SetNeededBy,
    "ask_clarification": AskClarification,
}

#: Tools per role. Everyone may draft a request for themselves; deciding is never an LLM tool.
ROLE_TOOLS: dict[Role, tuple[str, ...]] = {
    Role.REQUESTER: tuple(SCHEMAS),
    Role.APPROVER: tuple(SCHEMAS),
    Role.BUYER: tuple(SCHEMAS),
    Role.ADMIN: tuple(SCHEMAS),
}


def _not_callable(**_: object) -> str:
    # The graph node applies tool calls itself with identity from the Context; direct calls are a bug.
    raise RuntimeError("intake tools are applied by nodes.llm_intake, not called directly")


def tools_for(role: Role) -> list[BaseTool]:
    """LangChain tool definitions (name, description, args schema) bound for ``role``."""
    return [
        StructuredTool.from_function(
            func=_not_callable,
            name=name,
            description=(SCHEMAS[name].__doc__ or name).strip(),
            args_schema=SCHEMAS[name],
        )
        for name in ROLE_TOOLS[role]
    ]
