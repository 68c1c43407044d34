"""Run the evaluation suites: drive the target through ``langsmith.evaluate``, score, aggregate, write results.

The system under test is ``evals.target.run_conversation(conversation, *, model) -> dict`` (async), imported
only when no ``target`` is passed. ``langsmith.evaluate`` refuses async targets and ``aevaluate`` (langsmith
0.14) traces to the network even with ``upload_results=False``, so the async target runs on one private event
loop in a background thread, shared by all conversations of the run (clients the target caches stay on one
loop). ``repeat`` runs every conversation K times; pass^k is the share of conversations that matched exactly in
all K runs.

Numbers are deterministic for a deterministic target: results are sorted by conversation id and repetition,
aggregates are sums and means in that order, rounded, and carry no timestamps.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import re
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

from langsmith import Client, evaluate

import prompts
from evals.catalogs import CATALOG_PATH, load_catalog
from evals.evaluators import METRIC_KEYS
from evals.langsmith_evaluators import make_langsmith_evaluators
from evals.langsmith_sync import make_client, offline_examples, sync_langsmith_dataset
from evals.report import RESULTS_DIR, format_kind_table, format_table
from evals.suites import DATASETS_DIR, load_datasets

#: The system under test: ``(conversation, *, model) -> dict`` or an awaitable of it.
Target = Callable[..., Any]


class _LoopThread:
    """One asyncio event loop running in a daemon thread, for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="evals-target-loop", daemon=True)

    def __enter__(self) -> _LoopThread:
        self._thread.start()
        return self

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run ``awaitable`` on the loop and wait for its result (re-raising its exception)."""

        async def _await() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(_await(), self.loop).result()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                self.loop.close()


def load_target() -> Target:
    """The real system under test (imported here, never at module import: it pulls in the whole agent)."""
    from evals.target import run_conversation

    return cast(Target, run_conversation)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (``Decimal`` and dates become strings)."""
    return json.loads(json.dumps(value, default=str))


def _make_predict(target: Target, model: str | None, loop: _LoopThread) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def predict(inputs: dict[str, Any]) -> dict[str, Any]:
        result = target(copy.deepcopy(inputs["conversation"]), model=model)
        if inspect.isawaitable(result):
            result = loop.run(result)
        if not isinstance(result, Mapping):
            raise TypeError(f"the target returned {type(result).__name__}, expected a dict")
        return cast(dict[str, Any], _jsonable(dict(result)))

    return predict


def prompt_version(target: Target | None = None) -> str:
    """Version of the prompts under test: ``PROMPT_VERSION`` of the target's module, else of ``prompts``.

    Returns ``"unversioned"`` when neither declares one.
    """
    candidates: list[Any] = [inspect.getmodule(target)] if target is not None else []
    candidates.append(prompts)
    for module in candidates:
        for attr in ("PROMPT_VERSION", "VERSION", "__version__"):
            value = getattr(module, attr, None)
            if isinstance(value, str | int) and str(value):
                return str(value)
    return "unversioned"


def _model_label(model: str | None) -> str:
    return model or "none"


def _new_run_id(model: str | None, results_dir: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", _model_label(model)).strip("_") or "model"
    base = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{slug}"
    run_id, n = base, 1
    while (results_dir / f"{run_id}.json").exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _first_line(text: Any) -> str | None:
    if not text:
        return None
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


def _metric_value(key: str, score: Any) -> float | int:
    if key in ("line_precision", "line_recall", "line_f1"):
        return round(float(score), 4)
    return int(score)


def _evaluate_dataset(
    name: str,
    conversations: Sequence[Mapping[str, Any]],
    predict: Callable[[dict[str, Any]], dict[str, Any]],
    evaluators: Sequence[Callable[..., Any]],
    client: Client,
    upload: bool,
    metadata: Mapping[str, Any],
    max_concurrency: int,
    repetition: int,
) -> list[dict[str, Any]]:
    """Evaluate one dataset once; one record per conversation, sorted by id."""
    examples = sync_langsmith_dataset(client, name, conversations) if upload else offline_examples(name, conversations)
    suffix = f"-r{repetition + 1}" if metadata["repeat"] > 1 else ""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*upload_results.*")
        results = evaluate(
            predict,
            data=examples,
            evaluators=list(evaluators),
            experiment_prefix=f"{name}-{metadata['prompt_version']}-{metadata['model']}{suffix}",
            description=f"procure-agent eval suite {name!r}",
            metadata={**metadata, "dataset": name, "repetition": repetition + 1},
            max_concurrency=max_concurrency,
            client=client,
            upload_results=upload,
        )
    records = []
    for row in cast(Iterable[Mapping[str, Any]], results):
        example, run = row["example"], row["run"]
        conversation = example.inputs["conversation"]
        scores: dict[str, Any] = {}
        comments: dict[str, str] = {}
        for result in row["evaluation_results"]["results"]:
            scores[result.key] = result.score
            if result.comment:
                comments[result.key] = str(result.comment)
        missing = [k for k in METRIC_KEYS if scores.get(k) is None]
        if missing:
            raise RuntimeError(f"{conversation['id']}: evaluators produced no {', '.join(missing)}")
        outputs = getattr(run, "outputs", None) if run is not None else None
        records.append(
            {
                "id": conversation["id"],
                "dataset": name,
                "kind": conversation.get("kind"),
                "repetition": repetition + 1,
                "metrics": {k: _metric_value(k, scores[k]) for k in METRIC_KEYS},
                "comments": dict(sorted(comments.items())),
                "error": _first_line(getattr(run, "error", None)) if run is not None else "no run recorded",
                "outputs": _jsonable(outputs) if outputs is not None else None,
            }
        )
    return sorted(records, key=lambda r: str(r["id"]))


def pass_at_k(records: Sequence[Mapping[str, Any]]) -> float | None:
    """pass^k: share of conversations whose every run matched exactly (``None`` without records).

    Args:
        records: conversation records of one or more repetitions (``id`` and ``metrics.exact_match``).
    """
    passed: dict[str, bool] = {}
    for r in records:
        passed[str(r["id"])] = passed.get(str(r["id"]), True) and bool(r["metrics"]["exact_match"])
    return round(sum(passed.values()) / len(passed), 4) if passed else None


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate conversation records (from one dataset or several, one repetition or more).

    Returns:
        ``n`` (conversations) and ``runs`` (records); ``exact_match`` and ``line_precision/recall/f1`` as means
        over runs (0..1); ``pass_k`` (:func:`pass_at_k`); ``unnecessary_questions``, ``missed_questions``,
        ``hallucinated_skus``, ``money_errors``, ``forbidden_violations``, ``errors`` (target failures),
        ``completed`` (requests submitted), ``llm_calls`` and ``tokens`` as totals over runs;
        ``unnecessary_per_conversation`` = unnecessary questions / runs; ``llm_calls_per_request`` and
        ``tokens_per_request`` = totals / completed requests (``None`` when none completed).
    """
    ordered = sorted(records, key=lambda r: (str(r["id"]), int(r.get("repetition") or 1)))
    runs = len(ordered)
    metrics = [r["metrics"] for r in ordered]

    def mean(key: str) -> float | None:
        return round(sum(m[key] for m in metrics) / runs, 4) if runs else None

    def total(key: str) -> int:
        return int(sum(m.get(key, 0) for m in metrics))

    completed, calls, tokens = total("completed"), total("llm_calls"), total("tokens")
    unnecessary = total("unnecessary_questions")
    return {
        "n": len({str(r["id"]) for r in ordered}),
        "runs": runs,
        "exact_match": mean("exact_match"),
        "pass_k": pass_at_k(ordered),
        "line_precision": mean("line_precision"),
        "line_recall": mean("line_recall"),
        "line_f1": mean("line_f1"),
        "unnecessary_questions": unnecessary,
        "unnecessary_per_conversation": round(unnecessary / runs, 3) if runs else None,
        "missed_questions": total("missed_questions"),
        "hallucinated_skus": total("hallucinated_skus"),
        "money_errors": total("money_errors"),
        "forbidden_violations": total("forbidden_violations"),
        "errors": sum(1 for r in ordered if r.get("error")),
        "completed": completed,
        "llm_calls": calls,
        "tokens": tokens,
        "llm_calls_per_request": round(calls / completed, 2) if completed else None,
        "tokens_per_request": round(tokens / completed, 1) if completed else None,
    }


def summarize_kinds(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`summarize` per conversation ``kind`` (records without a kind are left out), sorted by kind."""
    kinds = sorted({str(r["kind"]) for r in records if r.get("kind")})
    return {kind: summarize([r for r in records if r.get("kind") == kind]) for kind in kinds}


def run_eval(
    dataset: str | None,
    model: str | None,
    *,
    target: Target | None = None,
    results_dir: Path = RESULTS_DIR,
    datasets_dir: Path = DATASETS_DIR,
    catalog_path: Path = CATALOG_PATH,
    max_concurrency: int = 1,
    repeat: int = 1,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Evaluate the conversation agent on one dataset or all, print the tables, write the results file.

    Args:
        dataset: a dataset name (see ``evals.suites.DATASET_NAMES``) or ``None`` for all.
        model: chat model name passed to the target; ``None`` runs without an LLM (deterministic extractor).
        target: the system under test, ``(conversation, *, model) -> dict`` or an awaitable of it; defaults to
            ``evals.target.run_conversation``.
        results_dir: where ``<run_id>.json`` is written (created if missing, with a ``.gitignore``).
        datasets_dir: folder of the ``<name>.jsonl`` files.
        catalog_path: catalogue CSV for conversations that name none (hallucinated SKUs, money errors).
        max_concurrency: conversations evaluated at once (``langsmith.evaluate``'s bound); results are sorted
            afterwards, so only a target that is not isolated per conversation makes the numbers vary.
        repeat: runs of every conversation (K of pass^k), at least 1.
        out: stream for the tables (default ``sys.stdout``).

    Returns:
        ``{"run_id", "model", "prompt_version", "dataset", "repeat", "datasets": {name: summary},
        "kinds": {name: {kind: summary}}, "overall": summary, "results_path"}``; see :func:`summarize`.

    Raises:
        ValueError: unknown dataset, malformed dataset file, or ``repeat`` < 1.
        RuntimeError: an evaluator failed to score a conversation.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    out = out or sys.stdout
    conversations = load_datasets(dataset, datasets_dir)
    target = target or load_target()
    evaluators = make_langsmith_evaluators(load_catalog(catalog_path))
    client, upload = make_client()
    results_dir = Path(results_dir)
    version = prompt_version(target)
    run_id = _new_run_id(model, results_dir)
    metadata = {"model": _model_label(model), "prompt_version": version, "run_id": run_id, "repeat": repeat}

    records: list[dict[str, Any]] = []
    with _LoopThread() as loop:
        predict = _make_predict(target, model, loop)
        for name, convs in conversations.items():
            for repetition in range(repeat):
                records.extend(
                    _evaluate_dataset(
                        name, convs, predict, evaluators, client, upload, metadata, max_concurrency, repetition
                    )
                )

    def of(name: str) -> list[dict[str, Any]]:
        return [r for r in records if r["dataset"] == name]

    summary: dict[str, Any] = {
        "run_id": run_id,
        "model": _model_label(model),
        "prompt_version": version,
        "dataset": dataset,
        "repeat": repeat,
        "datasets": {name: summarize(of(name)) for name in conversations},
        "kinds": {name: kinds for name in conversations if (kinds := summarize_kinds(of(name)))},
        "overall": summarize(records),
    }
    path = _write_results(summary, records, results_dir)
    summary["results_path"] = str(path)
    print(format_table(summary), file=out)
    if summary["kinds"]:
        print(format_kind_table(summary), file=out)
    print(f"results: {path}", file=out)
    return summary


def _write_results(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]], results_dir: Path) -> Path:
    if not results_dir.exists():
        results_dir.mkdir(parents=True)
        (results_dir / ".gitignore").write_text("# evaluation results are run artefacts\n*\n", encoding="utf-8")
    document = {
        **summary,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "conversations": sorted(
            records, key=lambda r: (str(r["dataset"]), str(r["id"]), int(r.get("repetition") or 1))
        ),
    }
    path = results_dir / f"{summary['run_id']}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
