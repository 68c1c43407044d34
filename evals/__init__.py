"""Evaluation suites for the conversation agent: datasets, evaluators and the runner.

``evals.datasets`` holds the JSONL conversations, :mod:`evals.evaluators` the metrics (pure functions plus
LangSmith-compatible wrappers) and :mod:`evals.runner` the ``procure eval`` entry point. The system under
test is reached through ``evals.target.run_conversation``, imported lazily by the runner only.
"""
