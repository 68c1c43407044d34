#!/usr/bin/env bash
# Quick start, part 1: set up, then run the demo on the embedded default (PostgreSQL + Redis started by the
# program under ./.procure). Replays a real multi-message WhatsApp conversation through the webhook.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/procure demo "$@"
