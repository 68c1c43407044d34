"""``procure eval`` / ``python -m evals.runner``: arguments, and what each flag runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.config import get_settings
from evals import run
from evals.baseline import BASELINE_PATH, check_baseline, write_baseline
from evals.report import RESULTS_DIR, compare_runs
from evals.suites import DATASET_NAMES


def _parse_model(value: str) -> str | None:
    return None if value.strip().lower() == "none" else value.strip()


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``procure eval`` / ``python -m evals.runner``."""
    parser = argparse.ArgumentParser(prog="procure eval", description="Evaluate the conversation agent.")
    parser.add_argument("--dataset", metavar="NAME", help=f"one dataset ({', '.join(DATASET_NAMES)}); default all")
    parser.add_argument(
        "--model", metavar="MODEL|none", help="chat model to evaluate; 'none' = no LLM; default LLM_MODEL"
    )
    parser.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two result files")
    parser.add_argument(
        "--repeat", metavar="K", type=_positive, default=1, help="run each conversation K times; reports pass^k"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--check-baseline", action="store_true", help="fail if exact match dropped or money errors rose"
    )
    group.add_argument("--update-baseline", action="store_true", help="record this run as the baseline")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where run results are written")
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH, help="baseline file")
    parser.add_argument("--max-concurrency", type=int, default=1, help="conversations evaluated at once")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when the baseline check fails)."""
    args = build_parser().parse_args(argv)
    if args.compare:
        compare_runs(args.compare[0], args.compare[1], args.results_dir)
        return 0
    model = _parse_model(args.model) if args.model is not None else get_settings().LLM_MODEL
    summary = run.run_eval(
        args.dataset,
        model,
        results_dir=args.results_dir,
        max_concurrency=args.max_concurrency,
        repeat=args.repeat,
    )
    if args.update_baseline:
        write_baseline(summary, args.baseline)
        print(f"baseline updated: {args.baseline}")
    if args.check_baseline:
        failures = check_baseline(summary, args.baseline)
        for failure in failures:
            print(f"BASELINE FAILURE: {failure}")
        if failures:
            return 1
        print("baseline check passed")
    return 0
