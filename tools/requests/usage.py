"""LLM token use per purchase request: totals and per turn, from the ``llm_usage`` rows the intake nodes write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.db import llm_usage


async def usage_of(engine: Any, request_id: int) -> dict[str, Any]:
    """LLM token totals for a request: overall and per turn.

    Returns:
        ``{"calls", "input_tokens", "output_tokens", "per_turn": [{"turn_id", "calls", "input_tokens",
        "output_tokens"}, ...]}``, turns in order; tokens as the provider counted them.
    """
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    llm_usage.c.turn_id,
                    func.count().label("calls"),
                    func.sum(llm_usage.c.input_tokens).label("input_tokens"),
                    func.sum(llm_usage.c.output_tokens).label("output_tokens"),
                )
                .where(llm_usage.c.request_id == request_id)
                .group_by(llm_usage.c.turn_id)
                .order_by(llm_usage.c.turn_id)
            )
        ).all()
    per_turn = [
        {
            "turn_id": r.turn_id,
            "calls": r.calls,
            "input_tokens": int(r.input_tokens or 0),
            "output_tokens": int(r.output_tokens or 0),
        }
        for r in rows
    ]
    return {
        "calls": sum(p["calls"] for p in per_turn),
        "input_tokens": sum(p["input_tokens"] for p in per_turn),
        "output_tokens": sum(p["output_tokens"] for p in per_turn),
        "per_turn": per_turn,
    }
