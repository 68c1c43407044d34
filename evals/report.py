"""Evaluation tables: the run's table, the per-kind table, and the side-by-side comparison of two runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from evals.suites import DATASET_NAMES, EVALS_DIR

#: Where runs write ``<run_id>.json`` (git-ignored run artefacts).
RESULTS_DIR = EVALS_DIR / "results"

#: Metrics of the comparison table, in order.
COMPARE_METRICS: tuple[str, ...] = (
    "exact_match",
    "pass_k",
    "line_precision",
    "line_recall",
    "line_f1",
    "unnecessary_questions",
    "unnecessary_per_conversation",
    "missed_questions",
    "hallucinated_skus",
    "money_errors",
    "forbidden_violations",
    "errors",
    "llm_calls_per_request",
    "tokens_per_request",
)

_PERCENTS = frozenset({"exact_match", "pass_k"})
_FRACTIONS = frozenset({"exact_match", "pass_k", "line_precision", "line_recall", "line_f1"})

_TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("exact_match", "exact"),
    ("pass_k", "pass^k"),
    ("line_precision", "line P"),
    ("line_recall", "line R"),
    ("line_f1", "line F1"),
    ("unnecessary_questions", "unnec Q"),
    ("unnecessary_per_conversation", "unnec Q/conv"),
    ("missed_questions", "missed Q"),
    ("hallucinated_skus", "halluc SKU"),
    ("money_errors", "money err"),
    ("forbidden_violations", "forbidden"),
    ("errors", "errors"),
    ("llm_calls_per_request", "calls/req"),
    ("tokens_per_request", "tokens/req"),
)

_KIND_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("exact_match", "exact"),
    ("pass_k", "pass^k"),
    ("money_errors", "money err"),
    ("unnecessary_per_conversation", "unnec Q/conv"),
    ("missed_questions", "missed Q"),
    ("hallucinated_skus", "halluc SKU"),
)


def _fmt(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if metric in _PERCENTS:
        return f"{value * 100:.1f}%"
    if metric in _FRACTIONS:
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:,.1f}" if metric == "tokens_per_request" else f"{value:.2f}"
    return str(value)


def _render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [list(header), *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(summary: Mapping[str, Any]) -> str:
    """The run's table: a row per dataset plus ``all``; counts are totals over runs, per-request figures averages."""
    rows = [
        [name, *(_fmt(key, metrics.get(key)) for key, _ in _TABLE_COLUMNS)]
        for name, metrics in [*summary["datasets"].items(), ("all", summary["overall"])]
    ]
    repeat = summary.get("repeat") or 1
    title = f"run {summary.get('run_id')}  model={summary.get('model')}  prompt={summary.get('prompt_version')}"
    title += f"  repeat={repeat}"
    return title + "\n" + _render(["dataset", *(label for _, label in _TABLE_COLUMNS)], rows)


def format_kind_table(summary: Mapping[str, Any]) -> str:
    """Per-kind table: one row per (dataset, kind) for the datasets whose conversations carry a ``kind``."""
    rows = [
        [name, kind, *(_fmt(key, metrics.get(key)) for key, _ in _KIND_COLUMNS)]
        for name, kinds in (summary.get("kinds") or {}).items()
        for kind, metrics in kinds.items()
    ]
    return "per kind\n" + _render(["dataset", "kind", *(label for _, label in _KIND_COLUMNS)], rows)


def load_results(run: str | Path, results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    """A results document, by run id (``<results_dir>/<run>.json``) or by path.

    Raises:
        FileNotFoundError: no such run.
    """
    for path in (Path(run), Path(results_dir) / str(run), Path(results_dir) / f"{run}.json"):
        if path.is_file():
            return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))
    raise FileNotFoundError(f"no results for run {run!r} in {results_dir}")


def _delta(metric: str, a: Any, b: Any) -> tuple[float | None, str]:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None, "-"
    delta = b - a
    if metric in _PERCENTS:
        return round(delta, 4), f"{delta * 100:+.1f} pp"
    if metric in _FRACTIONS:
        return round(delta, 4), f"{delta:+.3f}"
    if isinstance(delta, float):
        return round(delta, 3), f"{delta:+.2f}"
    return delta, f"{delta:+d}"


def compare_runs(
    run_a: str | Path, run_b: str | Path, results_dir: Path = RESULTS_DIR, *, out: TextIO | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Print two runs side by side with deltas (B - A) and return them.

    Returns:
        ``{dataset or "all": {metric: {"a", "b", "delta"}}}`` for the metrics of :data:`COMPARE_METRICS`.

    Raises:
        FileNotFoundError: either run is missing.
    """
    out = out or sys.stdout
    a, b = load_results(run_a, results_dir), load_results(run_b, results_dir)
    tables_a = {**a.get("datasets", {}), "all": a.get("overall", {})}
    tables_b = {**b.get("datasets", {}), "all": b.get("overall", {})}
    names = [n for n in DATASET_NAMES if n in tables_a or n in tables_b]
    names += sorted((set(tables_a) | set(tables_b)) - set(names) - {"all"}) + ["all"]
    comparison: dict[str, dict[str, dict[str, Any]]] = {}
    rows = []
    for name in names:
        ma, mb = tables_a.get(name, {}), tables_b.get(name, {})
        comparison[name] = {}
        for metric in COMPARE_METRICS:
            va, vb = ma.get(metric), mb.get(metric)
            delta, shown = _delta(metric, va, vb)
            comparison[name][metric] = {"a": va, "b": vb, "delta": delta}
            rows.append([name, metric, _fmt(metric, va), _fmt(metric, vb), shown])
    print(f"A: {a.get('run_id')}  model={a.get('model')}  prompt={a.get('prompt_version')}", file=out)
    print(f"B: {b.get('run_id')}  model={b.get('model')}  prompt={b.get('prompt_version')}", file=out)
    print(_render(["dataset", "metric", "A", "B", "delta"], rows), file=out)
    return comparison
