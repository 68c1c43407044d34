"""The CI guard: record each dataset's exact-match rate and money errors, and fail when a run is worse."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evals.suites import DATASET_NAMES, EVALS_DIR

BASELINE_PATH = EVALS_DIR / "baseline.json"


def _money_per_run(metrics: Mapping[str, Any]) -> float | None:
    """Money errors per repetition (a run with ``--repeat K`` totals K runs)."""
    money = metrics.get("money_errors")
    if money is None:
        return None
    runs, n = metrics.get("runs") or 0, metrics.get("n") or 0
    repeat = runs / n if runs and n else 1
    return round(money / repeat, 3)


def write_baseline(summary: Mapping[str, Any], path: Path = BASELINE_PATH) -> dict[str, Any]:
    """Record the exact-request-match rate and money errors of each dataset in ``summary`` as the baseline.

    Datasets not in ``summary`` keep their recorded entry. The file holds no timestamps, so re-recording the
    same numbers leaves it unchanged.

    Returns:
        The baseline document written:
        ``{"datasets": {name: {"exact_match", "money_errors", "n", "model", "prompt_version"}}}``
        (``money_errors`` per run of every conversation).
    """
    path = Path(path)
    existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    datasets: dict[str, Any] = dict(existing.get("datasets", {}))
    for name, metrics in summary["datasets"].items():
        entry = {"exact_match": metrics["exact_match"], "n": metrics["n"]}
        money = _money_per_run(metrics)
        if money is not None:
            entry["money_errors"] = int(money) if float(money).is_integer() else money
        datasets[name] = {**entry, "model": summary.get("model"), "prompt_version": summary.get("prompt_version")}
    order = {name: i for i, name in enumerate(DATASET_NAMES)}
    document = {"datasets": dict(sorted(datasets.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document


def check_baseline(summary: Mapping[str, Any], baseline_path: Path = BASELINE_PATH) -> list[str]:
    """Datasets that got worse than the baseline, as messages (empty: all good).

    A dataset fails when its exact-request-match rate is below the recorded rate, or when it has more money
    errors (per run) than recorded. Datasets absent from the baseline, and entries recorded without money
    errors, are not checked on what they lack; a missing baseline file is itself a failure.
    """
    baseline_path = Path(baseline_path)
    if not baseline_path.is_file():
        return [f"no baseline at {baseline_path}: record one with `procure eval --model none --update-baseline`"]
    recorded = json.loads(baseline_path.read_text(encoding="utf-8")).get("datasets", {})
    failures = []
    for name, metrics in summary["datasets"].items():
        base = recorded.get(name)
        if base is None:
            continue
        where = f"(recorded with model {base.get('model')}, prompt {base.get('prompt_version')})"
        if metrics.get("exact_match") is not None and metrics["exact_match"] < base["exact_match"] - 1e-9:
            failures.append(
                f"{name}: exact request match {metrics['exact_match']:.1%} is below the baseline "
                f"{base['exact_match']:.1%} {where}"
            )
        money = _money_per_run(metrics)
        if money is not None and base.get("money_errors") is not None and money > base["money_errors"] + 1e-9:
            failures.append(f"{name}: {money:g} money errors, the baseline has {base['money_errors']:g} {where}")
    return failures
