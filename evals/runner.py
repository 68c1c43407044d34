"""Compatibility entry point of the evaluation runner: ``python -m evals.runner`` and the names callers used.

The runner is split by concern: :mod:`evals.suites` (datasets, schema), :mod:`evals.catalogs` (catalogues),
:mod:`evals.evaluators` (metrics), :mod:`evals.langsmith_evaluators` and :mod:`evals.langsmith_sync`
(LangSmith), :mod:`evals.run` (running and aggregating), :mod:`evals.report` (tables, comparison),
:mod:`evals.baseline` (the CI guard) and :mod:`evals.cli` (``procure eval``).
"""

from __future__ import annotations

from evals.baseline import BASELINE_PATH, check_baseline, write_baseline
from evals.cli import build_parser, main
from evals.report import COMPARE_METRICS, RESULTS_DIR, compare_runs, format_kind_table, format_table, load_results
from evals.run import pass_at_k, prompt_version, run_eval, summarize, summarize_kinds
from evals.suites import DATASET_NAMES, DATASETS_DIR, dataset_path, load_dataset, load_datasets

__all__ = [
    "BASELINE_PATH",
    "COMPARE_METRICS",
    "DATASETS_DIR",
    "DATASET_NAMES",
    "RESULTS_DIR",
    "build_parser",
    "check_baseline",
    "compare_runs",
    "dataset_path",
    "format_kind_table",
    "format_table",
    "load_dataset",
    "load_datasets",
    "load_results",
    "main",
    "pass_at_k",
    "prompt_version",
    "run_eval",
    "summarize",
    "summarize_kinds",
    "write_baseline",
]

if __name__ == "__main__":
    raise SystemExit(main())
