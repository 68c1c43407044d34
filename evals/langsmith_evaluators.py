"""LangSmith evaluators built on :mod:`evals.evaluators`, in the ``(inputs, outputs, reference_outputs)`` form.

Each conversation is scored against its own catalogue (the ``catalog`` field of ``inputs["conversation"]``),
so hallucinated SKUs and money errors are judged against the item master the conversation was written for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.domain import CatalogItem
from evals.catalogs import catalog_path_of, load_catalog
from evals.evaluators import (
    Catalog,
    exact_request_match,
    forbidden_violations,
    hallucinated_skus,
    is_submitted,
    llm_usage,
    missed_questions,
    money_errors,
    result_lines,
    score_lines,
    unnecessary_questions,
)

#: A LangSmith evaluator in the ``(inputs, outputs, reference_outputs)`` form accepted by
#: ``langsmith.evaluate`` (``langsmith.evaluation.evaluator._normalize_evaluator_func`` maps those argument
#: names). It returns either one ``{"key", "score", "comment"}`` or ``{"results": [...]}``.
LangSmithEvaluator = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]


def _comment(items: Sequence[str]) -> str | None:
    return ", ".join(items) if items else None


def line_match_evaluator(
    inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
) -> dict[str, Any]:
    """LangSmith evaluator: ``line_precision``, ``line_recall``, ``line_f1``."""
    s = score_lines(reference_outputs.get("lines") or [], result_lines(outputs))
    comment = f"{s.matched} matched of {s.expected} expected, {s.actual} returned"
    return {
        "results": [
            {"key": "line_precision", "score": s.precision, "comment": comment},
            {"key": "line_recall", "score": s.recall, "comment": comment},
            {"key": "line_f1", "score": s.f1, "comment": comment},
        ]
    }


def exact_match_evaluator(
    inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
) -> dict[str, Any]:
    """LangSmith evaluator: ``exact_match`` (1 when lines, site, date and submitted state all agree)."""
    return {"key": "exact_match", "score": int(exact_request_match(reference_outputs, outputs))}


def questions_evaluator(
    inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
) -> dict[str, Any]:
    """LangSmith evaluator: ``unnecessary_questions`` and ``missed_questions`` (counts of kinds)."""
    extra = unnecessary_questions(reference_outputs, outputs)
    missed = missed_questions(reference_outputs, outputs)
    return {
        "results": [
            {"key": "unnecessary_questions", "score": len(extra), "comment": _comment(extra)},
            {"key": "missed_questions", "score": len(missed), "comment": _comment(missed)},
        ]
    }


def forbidden_evaluator(
    inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
) -> dict[str, Any]:
    """LangSmith evaluator: ``forbidden_violations`` (count of forbidden events that happened)."""
    violated = forbidden_violations(reference_outputs, outputs)
    return {"key": "forbidden_violations", "score": len(violated), "comment": _comment(violated)}


def cost_evaluator(
    inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
) -> dict[str, Any]:
    """LangSmith evaluator: ``completed`` (0/1), ``llm_calls`` and ``tokens`` (input + output)."""
    calls, tokens = llm_usage(outputs)
    return {
        "results": [
            {"key": "completed", "score": int(is_submitted(outputs))},
            {"key": "llm_calls", "score": calls},
            {"key": "tokens", "score": tokens},
        ]
    }


def _conversation_catalog(inputs: Mapping[str, Any], default: Catalog) -> Catalog:
    """The catalogue named by the conversation in ``inputs``, else ``default``."""
    conversation = inputs.get("conversation") if isinstance(inputs, Mapping) else None
    path = conversation.get("catalog") if isinstance(conversation, Mapping) else None
    return load_catalog(catalog_path_of(path)) if path else default


def make_catalog_evaluator(catalog: Catalog | None = None) -> LangSmithEvaluator:
    """LangSmith evaluator factory: ``hallucinated_skus`` and ``money_errors`` against the conversation's catalogue.

    Args:
        catalog: catalogue for conversations that name none; items by SKU, or only SKUs (then no money
            errors can be found); defaults to ``examples/catalog.csv``.
    """
    default: Catalog = catalog if catalog is not None else load_catalog()
    if not isinstance(default, Mapping):
        default = frozenset(default)

    def catalog_evaluator(
        inputs: dict[str, Any], outputs: dict[str, Any], reference_outputs: dict[str, Any]
    ) -> dict[str, Any]:
        items = _conversation_catalog(inputs, default)
        found = hallucinated_skus(outputs, items)
        wrong = money_errors(reference_outputs, outputs, items)
        return {
            "results": [
                {"key": "hallucinated_skus", "score": len(found), "comment": _comment(found)},
                {"key": "money_errors", "score": len(wrong), "comment": _comment(wrong)},
            ]
        }

    return catalog_evaluator


def make_langsmith_evaluators(
    catalog: Mapping[str, CatalogItem] | Iterable[str] | None = None,
) -> list[LangSmithEvaluator]:
    """All evaluators, together producing every key of ``evals.evaluators.METRIC_KEYS`` for one conversation.

    Args:
        catalog: catalogue for conversations without a ``catalog`` field (default ``examples/catalog.csv``).
    """
    return [
        exact_match_evaluator,
        line_match_evaluator,
        questions_evaluator,
        make_catalog_evaluator(catalog),
        forbidden_evaluator,
        cost_evaluator,
    ]
