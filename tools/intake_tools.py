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


def _compact_schema(model: type[BaseModel]) -> dict[str, object]:
    """The JSON schema the model sees: types, enums and short descriptions, without length/pattern keywords.

    Those constraints still apply: every call is validated against :data:`SCHEMAS` before anything is written.
    Leaving them out of the prompt keeps the largest intake prompt within its token budget.
    """
    schema = model.model_json_schema()
    props: dict[str, object] = {}
    for name, spec in schema.get("properties", {}).items():
        spec = dict(spec)
        if "anyOf" in spec:  # Optional[str] -> a nullable string
            types = [a.get("type") for a in spec.pop("anyOf") if a.get("type")]
            spec["type"] = types if len(types) > 1 else types[0]
        for key in ("maxLength", "minLength", "pattern", "title", "default", "maximum", "minimum", "maxItems"):
            spec.pop(key, None)
        if spec.get("type") == "array":
            spec["items"] = {"type": "string"}
        props[name] = spec
    return {
        "title": model.__name__,
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "properties": props,
        "required": schema.get("required", []),
    }


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
