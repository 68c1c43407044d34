#!/usr/bin/env bash
# Quick start, part 2: set up, then run lint, types and the whole test suite (real PostgreSQL, Redis, Chromium,
# Tryton on this machine), then the evaluation suite on the deterministic path against its baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
. .venv/bin/activate
export LANGSMITH_TRACING=false LANGCHAIN_TRACING_V2=false LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true
echo "== ruff"
ruff check .
echo "== mypy"
mypy
echo "== evaluation suite (deterministic path) against the recorded baseline"
python -m server.cli eval --model none --check-baseline
echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
