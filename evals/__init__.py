"""Evaluation suites for the conversation agent: datasets, catalogues, metrics, the runner and its CI guard.

``evals/datasets/*.jsonl`` hold the conversations (read by :mod:`evals.suites`), :mod:`evals.catalogs` the item
masters they are written against, :mod:`evals.evaluators` the metrics (LangSmith wrappers in
:mod:`evals.langsmith_evaluators`), :mod:`evals.run` runs and aggregates, :mod:`evals.report` prints and compares,
:mod:`evals.baseline` guards CI and :mod:`evals.cli` is ``procure eval`` (``evals.runner`` re-exports the old
names). The system under test is reached through ``evals.target.run_conversation``, imported lazily only.
"""
