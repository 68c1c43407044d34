"""Fulfilment wording: the ``fulfil_*`` templates of ``prompts/replies.toml`` (tools never write user text in code)."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from typing import Any

from prompts import PROMPTS_DIR


@lru_cache(maxsize=1)
def _texts() -> dict[str, str]:
    with (PROMPTS_DIR / "replies.toml").open("rb") as fh:
        return dict(tomllib.load(fh)["text"])


def say(template: str, /, **kwargs: Any) -> str:
    """Render the reply template ``template`` (a key of ``[text]`` in ``prompts/replies.toml``) with ``kwargs``.

    Raises:
        KeyError: unknown template or missing placeholder.
    """
    return _texts()[template].format(**kwargs)


def text_message(to: str, body: str) -> dict[str, Any]:
    """A plain text outbound message for the outbox: ``{"to", "type": "text", "text"}``."""
    return {"to": to, "type": "text", "text": body}
