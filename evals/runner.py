"""Run the evaluation suites through LangSmith, aggregate, compare runs and guard a baseline.

``procure eval`` delegates to :func:`main`. One run evaluates each dataset with ``langsmith.evaluate``:

* without ``LANGSMITH_API_KEY`` (the offline default) the client is
  ``Client(api_key="offline", info={}, auto_batch_tracing=False)`` and ``upload_results=False``, so nothing
  leaves the machine;
* with ``LANGSMITH_API_KEY`` set, the datasets are synced to LangSmith (``procure-eval-<dataset>``, examples
  with stable ids) and each run is uploaded as an experiment named ``<dataset>-<prompt version>-<model>``.

The system under test is ``evals.target.run_conversation(conversation, *, model) -> dict`` (async), imported
only when no ``target`` is passed. ``langsmith.evaluate`` refuses async targets and ``aevaluate`` (langsmith
0.14) traces to the network even with ``upload_results=False``, so the async target runs on one private event
loop in a background thread, shared by all conversations of the run (clients the target caches stay on one
loop).

Numbers are deterministic for a deterministic target: results are sorted by conversation id, aggregates are
sums and means in that order, rounded, and carry no timestamps.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import inspect
import json
import re
import sys
import threading
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

from langsmith import Client, evaluate
from langsmith.schemas import Example

from evals.evaluators import CATALOG_PATH, METRIC_KEYS, load_catalog, make_langsmith_evaluators

EVALS_DIR = Path(__file__).resolve().parent
DATASETS_DIR = EVALS_DIR / "datasets"
RESULTS_DIR = EVALS_DIR / "results"
BASELINE_PATH = EVALS_DIR / "baseline.json"

#: The suites, in table order; ``--dataset`` also accepts any other ``<name>.jsonl`` in the datasets folder.
DATASET_NAMES: tuple[str, ...] = ("clean", "messy", "corrections", "adversarial")

#: Namespace of the stable example and dataset ids (uuid5 of the conversation id).
ID_NAMESPACE = uuid.UUID("0b3f8a52-3c59-4d1e-9a57-6f1f6c0e2d41")

#: Fixed ``created_at`` of offline examples, so that nothing in a run depends on the clock.
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

#: The system under test: ``(conversation, *, model) -> dict`` or an awaitable of it.
Target = Callable[..., Any]

#: Metrics of the comparison table, in order.
COMPARE_METRICS: tuple[str, ...] = (
    "exact_match",
    "line_precision",
    "line_recall",
    "line_f1",
    "unnecessary_questions",
    "missed_questions",
    "hallucinated_skus",
    "forbidden_violations",
    "errors",
    "llm_calls_per_request",
    "tokens_per_request",
)

_FRACTIONS = frozenset({"exact_match", "line_precision", "line_recall", "line_f1"})
_REQUIRED_KEYS = ("id", "dataset", "now", "user", "turns", "expected")


# --------------------------------------------------------------------------------------------------- datasets


def dataset_path(name: str, datasets_dir: Path = DATASETS_DIR) -> Path:
    """Path of dataset ``name``.

    Raises:
        ValueError: no ``<name>.jsonl`` in ``datasets_dir``.
    """
    path = Path(datasets_dir) / f"{name}.jsonl"
    if not re.fullmatch(r"[a-z0-9_-]+", name) or not path.is_file():
        known = ", ".join(DATASET_NAMES)
        raise ValueError(f"unknown dataset {name!r} (known: {known})")
    return path


def load_dataset(name: str, datasets_dir: Path = DATASETS_DIR) -> list[dict[str, Any]]:
    """Conversations of one dataset, sorted by id.

    Raises:
        ValueError: unknown dataset, a line that is not a JSON object with the required keys, a line whose
            ``dataset`` is not ``name``, or a duplicate id.
    """
    path = dataset_path(name, datasets_dir)
    conversations: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            conversation = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(conversation, dict) or any(k not in conversation for k in _REQUIRED_KEYS):
            raise ValueError(f"{path}:{number}: a conversation needs the keys {', '.join(_REQUIRED_KEYS)}")
        if conversation["dataset"] != name:
            raise ValueError(f"{path}:{number}: dataset is {conversation['dataset']!r}, expected {name!r}")
        if conversation["id"] in seen:
            raise ValueError(f"{path}:{number}: duplicate id {conversation['id']!r}")
        seen.add(conversation["id"])
        conversations.append(conversation)
    return sorted(conversations, key=lambda c: str(c["id"]))


def load_datasets(dataset: str | None = None, datasets_dir: Path = DATASETS_DIR) -> dict[str, list[dict[str, Any]]]:
    """All suites (``dataset=None``) or one, by name, in table order."""
    names = DATASET_NAMES if dataset is None else (dataset,)
    return {name: load_dataset(name, datasets_dir) for name in names}


def _target_inputs(conversation: Mapping[str, Any]) -> dict[str, Any]:
    """What the target sees: the conversation without its ``expected`` answer."""
    return {"conversation": {k: v for k, v in conversation.items() if k != "expected"}}


def _example_id(conversation: Mapping[str, Any]) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, f"example:{conversation['id']}")


def _offline_examples(name: str, conversations: Sequence[Mapping[str, Any]]) -> list[Example]:
    dataset_id = uuid.uuid5(ID_NAMESPACE, f"dataset:{name}")
    return [
        Example(
            id=_example_id(c),
            dataset_id=dataset_id,
            inputs=_target_inputs(c),
            outputs=dict(c["expected"]),
            metadata={"dataset": name, "conversation_id": c["id"]},
            created_at=_EPOCH,
        )
        for c in conversations
    ]


def _sync_langsmith_dataset(client: Client, name: str, conversations: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Create or update LangSmith dataset ``procure-eval-<name>`` so it holds these conversations.

    Examples keep stable ids (uuid5 of the conversation id); changed ones are updated, new ones created, and
    examples no longer in the file are left alone (they are simply not evaluated).
    """
    dataset_name = f"procure-eval-{name}"
    if client.has_dataset(dataset_name=dataset_name):
        dataset = client.read_dataset(dataset_name=dataset_name)
    else:
        dataset = client.create_dataset(dataset_name, description=f"procure-agent evaluation suite: {name}")
    existing = {ex.id: ex for ex in client.list_examples(dataset_id=dataset.id)}
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for c in conversations:
        example_id, inputs, expected = _example_id(c), _target_inputs(c), dict(c["expected"])
        metadata = {"dataset": name, "conversation_id": c["id"]}
        old = existing.get(example_id)
        if old is None:
            creates.append({"id": example_id, "inputs": inputs, "reference_outputs": expected, "metadata": metadata})
        elif old.inputs != inputs or old.outputs != expected:
            updates.append({"id": example_id, "inputs": inputs, "outputs": expected, "metadata": metadata})
    if creates:
        client.create_examples(dataset_id=dataset.id, examples=creates)
    if updates:
        client.update_examples(dataset_id=dataset.id, updates=updates)
    ids = [_example_id(c) for c in conversations]
    return list(client.list_examples(dataset_id=dataset.id, example_ids=ids))


# ------------------------------------------------------------------------------------------------ the target


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


def _load_target() -> Target:
    """The real system under test (imported here, never at module import)."""
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
    candidates: list[Any] = []
    if target is not None:
        candidates.append(inspect.getmodule(target))
    try:
        import prompts

        candidates.append(prompts)
    except ImportError:  # pragma: no cover - the package ships with the project
        pass
    for module in candidates:
        for attr in ("PROMPT_VERSION", "VERSION", "__version__"):
            value = getattr(module, attr, None)
            if isinstance(value, str | int) and str(value):
                return str(value)
    return "unversioned"


def _langsmith_settings() -> tuple[str | None, str | None]:
    """``(api_key, endpoint)`` from the settings (the only place that reads the environment)."""
    from core.config import get_settings

    settings = get_settings()
    key = settings.LANGSMITH_API_KEY.get_secret_value() if settings.LANGSMITH_API_KEY else None
    return key or None, settings.LANGSMITH_ENDPOINT


def _make_client() -> tuple[Client, bool]:
    """A LangSmith client and whether results are uploaded (only with an API key)."""
    api_key, endpoint = _langsmith_settings()
    if api_key:
        return Client(api_url=endpoint, api_key=api_key), True
    return Client(api_key="offline", info={}, auto_batch_tracing=False), False


# ------------------------------------------------------------------------------------------------ evaluation


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


def _evaluate_dataset(
    name: str,
    conversations: Sequence[Mapping[str, Any]],
    predict: Callable[[dict[str, Any]], dict[str, Any]],
    evaluators: Sequence[Callable[..., Any]],
    client: Client,
    upload: bool,
    metadata: Mapping[str, Any],
    max_concurrency: int,
) -> list[dict[str, Any]]:
    """Evaluate one dataset; one record per conversation, sorted by id."""
    examples = (
        _sync_langsmith_dataset(client, name, conversations) if upload else _offline_examples(name, conversations)
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*upload_results.*")
        results = evaluate(
            predict,
            data=examples,
            evaluators=list(evaluators),
            experiment_prefix=f"{name}-{metadata['prompt_version']}-{metadata['model']}",
            description=f"procure-agent eval suite {name!r}",
            metadata={**metadata, "dataset": name},
            max_concurrency=max_concurrency,
            client=client,
            upload_results=upload,
        )
    records = []
    for row in cast(Iterable[Mapping[str, Any]], results):
        example, run = row["example"], row["run"]
        conversation_id = example.inputs["conversation"]["id"]
        scores: dict[str, Any] = {}
        comments: dict[str, str] = {}
        for result in row["evaluation_results"]["results"]:
            scores[result.key] = result.score
            if result.comment:
                comments[result.key] = str(result.comment)
        missing = [k for k in METRIC_KEYS if scores.get(k) is None]
        if missing:
            raise RuntimeError(f"{conversation_id}: evaluators produced no {', '.join(missing)}")
        outputs = getattr(run, "outputs", None) if run is not None else None
        records.append(
            {
                "id": conversation_id,
                "dataset": name,
                "metrics": {k: _metric_value(k, scores[k]) for k in METRIC_KEYS},
                "comments": dict(sorted(comments.items())),
                "error": _first_line(getattr(run, "error", None)) if run is not None else "no run recorded",
                "outputs": _jsonable(outputs) if outputs is not None else None,
            }
        )
    return sorted(records, key=lambda r: str(r["id"]))


def _metric_value(key: str, score: Any) -> float | int:
    if key in ("line_precision", "line_recall", "line_f1"):
        return round(float(score), 4)
    return int(score)


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate conversation records (from one dataset or several).

    Returns:
        ``n``; ``exact_match`` and ``line_precision/recall/f1`` as means (0..1); ``unnecessary_questions``,
        ``missed_questions``, ``hallucinated_skus``, ``forbidden_violations``, ``errors`` (target failures),
        ``completed`` (requests submitted), ``llm_calls`` and ``tokens`` as totals;
        ``llm_calls_per_request`` and ``tokens_per_request`` = totals / completed requests (``None`` when none
        completed).
    """
    ordered = sorted(records, key=lambda r: str(r["id"]))
    n = len(ordered)
    metrics = [r["metrics"] for r in ordered]

    def mean(key: str) -> float | None:
        return round(sum(m[key] for m in metrics) / n, 4) if n else None

    def total(key: str) -> int:
        return int(sum(m[key] for m in metrics))

    completed, calls, tokens = total("completed"), total("llm_calls"), total("tokens")
    return {
        "n": n,
        "exact_match": mean("exact_match"),
        "line_precision": mean("line_precision"),
        "line_recall": mean("line_recall"),
        "line_f1": mean("line_f1"),
        "unnecessary_questions": total("unnecessary_questions"),
        "missed_questions": total("missed_questions"),
        "hallucinated_skus": total("hallucinated_skus"),
        "forbidden_violations": total("forbidden_violations"),
        "errors": sum(1 for r in ordered if r.get("error")),
        "completed": completed,
        "llm_calls": calls,
        "tokens": tokens,
        "llm_calls_per_request": round(calls / completed, 2) if completed else None,
        "tokens_per_request": round(tokens / completed, 1) if completed else None,
    }


def run_eval(
    dataset: str | None,
    model: str | None,
    *,
    target: Target | None = None,
    results_dir: Path = RESULTS_DIR,
    datasets_dir: Path = DATASETS_DIR,
    catalog_path: Path = CATALOG_PATH,
    max_concurrency: int = 1,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Evaluate the conversation agent on one dataset or all, print the table, write the results file.

    Args:
        dataset: a dataset name (``clean``, ``messy``, ``corrections``, ``adversarial``) or ``None`` for all.
        model: chat model name passed to the target; ``None`` runs without an LLM (deterministic extractor).
        target: the system under test, ``(conversation, *, model) -> dict`` or an awaitable of it; defaults to
            ``evals.target.run_conversation``.
        results_dir: where ``<run_id>.json`` is written (created if missing, with a ``.gitignore``).
        datasets_dir: folder of the ``<name>.jsonl`` files.
        catalog_path: catalogue CSV used to flag hallucinated SKUs.
        max_concurrency: conversations evaluated at once (``langsmith.evaluate``'s bound); results are sorted
            afterwards, so only a target that is not isolated per conversation makes the numbers vary.
        out: stream for the table (default ``sys.stdout``).

    Returns:
        ``{"run_id", "model", "prompt_version", "dataset", "datasets": {name: summary}, "overall": summary,
        "results_path"}``; see :func:`summarize` for a summary's keys.

    Raises:
        ValueError: unknown dataset or malformed dataset file.
        RuntimeError: an evaluator failed to score a conversation.
    """
    out = out or sys.stdout
    conversations = load_datasets(dataset, datasets_dir)
    target = target or _load_target()
    evaluators = make_langsmith_evaluators(load_catalog(catalog_path))
    client, upload = _make_client()
    results_dir = Path(results_dir)
    version = prompt_version(target)
    run_id = _new_run_id(model, results_dir)
    metadata = {"model": _model_label(model), "prompt_version": version, "run_id": run_id}

    records: list[dict[str, Any]] = []
    with _LoopThread() as loop:
        predict = _make_predict(target, model, loop)
        for name, convs in conversations.items():
            records.extend(
                _evaluate_dataset(name, convs, predict, evaluators, client, upload, metadata, max_concurrency)
            )

    summary: dict[str, Any] = {
        "run_id": run_id,
        "model": _model_label(model),
        "prompt_version": version,
        "dataset": dataset,
        "datasets": {name: summarize([r for r in records if r["dataset"] == name]) for name in conversations},
        "overall": summarize(records),
    }
    path = _write_results(summary, records, results_dir)
    summary["results_path"] = str(path)
    print(format_table(summary), file=out)
    print(f"results: {path}", file=out)
    return summary


def _write_results(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]], results_dir: Path) -> Path:
    if not results_dir.exists():
        results_dir.mkdir(parents=True)
        (results_dir / ".gitignore").write_text("# evaluation results are run artefacts\n*\n", encoding="utf-8")
    document = {
        **summary,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "conversations": sorted(records, key=lambda r: (str(r["dataset"]), str(r["id"]))),
    }
    path = results_dir / f"{summary['run_id']}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------- tables


def _fmt(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if metric == "exact_match":
        return f"{value * 100:.1f}%"
    if metric in _FRACTIONS:
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:,.1f}" if metric == "tokens_per_request" else f"{value:.2f}"
    return str(value)


_TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("exact_match", "exact"),
    ("line_precision", "line P"),
    ("line_recall", "line R"),
    ("line_f1", "line F1"),
    ("unnecessary_questions", "unnec Q"),
    ("missed_questions", "missed Q"),
    ("hallucinated_skus", "halluc SKU"),
    ("forbidden_violations", "forbidden"),
    ("errors", "errors"),
    ("llm_calls_per_request", "calls/req"),
    ("tokens_per_request", "tokens/req"),
)


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
    """The run's table: a row per dataset plus ``all``; counts are totals, per-request figures averages."""
    rows = [
        [name, *(_fmt(key, metrics.get(key)) for key, _ in _TABLE_COLUMNS)]
        for name, metrics in [*summary["datasets"].items(), ("all", summary["overall"])]
    ]
    title = f"run {summary.get('run_id')}  model={summary.get('model')}  prompt={summary.get('prompt_version')}"
    return title + "\n" + _render(["dataset", *(label for _, label in _TABLE_COLUMNS)], rows)


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
    if metric == "exact_match":
        return round(delta, 4), f"{delta * 100:+.1f} pp"
    if metric in _FRACTIONS:
        return round(delta, 4), f"{delta:+.3f}"
    if isinstance(delta, float):
        return round(delta, 2), f"{delta:+.2f}"
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


# ------------------------------------------------------------------------------------------------ baseline


def write_baseline(summary: Mapping[str, Any], path: Path = BASELINE_PATH) -> dict[str, Any]:
    """Record the exact-request-match rate of each dataset in ``summary`` as the baseline.

    Datasets not in ``summary`` keep their recorded entry. The file holds no timestamps, so re-recording the
    same numbers leaves it unchanged.

    Returns:
        The baseline document written:
        ``{"datasets": {name: {"exact_match", "n", "model", "prompt_version"}}}``.
    """
    path = Path(path)
    existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    datasets: dict[str, Any] = dict(existing.get("datasets", {}))
    for name, metrics in summary["datasets"].items():
        datasets[name] = {
            "exact_match": metrics["exact_match"],
            "n": metrics["n"],
            "model": summary.get("model"),
            "prompt_version": summary.get("prompt_version"),
        }
    order = {name: i for i, name in enumerate(DATASET_NAMES)}
    document = {"datasets": dict(sorted(datasets.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document


def check_baseline(summary: Mapping[str, Any], baseline_path: Path = BASELINE_PATH) -> list[str]:
    """Datasets whose exact-request-match rate dropped below the baseline, as messages (empty: all good).

    Datasets absent from the baseline are not checked; a missing baseline file is itself a failure.
    """
    baseline_path = Path(baseline_path)
    if not baseline_path.is_file():
        return [f"no baseline at {baseline_path}: record one with `procure eval --model none --update-baseline`"]
    recorded = json.loads(baseline_path.read_text(encoding="utf-8")).get("datasets", {})
    failures = []
    for name, metrics in summary["datasets"].items():
        base = recorded.get(name)
        if base is None or metrics.get("exact_match") is None:
            continue
        if metrics["exact_match"] < base["exact_match"] - 1e-9:
            failures.append(
                f"{name}: exact request match {metrics['exact_match']:.1%} is below the baseline "
                f"{base['exact_match']:.1%} (recorded with model {base.get('model')}, "
                f"prompt {base.get('prompt_version')})"
            )
    return failures


# ----------------------------------------------------------------------------------------------------- CLI


def _parse_model(value: str) -> str | None:
    return None if value.strip().lower() == "none" else value.strip()


def _default_model() -> str | None:
    from core.config import get_settings

    return get_settings().LLM_MODEL


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``procure eval`` / ``python -m evals.runner``."""
    parser = argparse.ArgumentParser(prog="procure eval", description="Evaluate the conversation agent.")
    parser.add_argument("--dataset", metavar="NAME", help=f"one dataset ({', '.join(DATASET_NAMES)}); default all")
    parser.add_argument(
        "--model", metavar="MODEL|none", help="chat model to evaluate; 'none' = no LLM; default LLM_MODEL"
    )
    parser.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two result files")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check-baseline", action="store_true", help="fail if exact match dropped below baseline")
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
    model = _parse_model(args.model) if args.model is not None else _default_model()
    summary = run_eval(args.dataset, model, results_dir=args.results_dir, max_concurrency=args.max_concurrency)
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


if __name__ == "__main__":
    raise SystemExit(main())
