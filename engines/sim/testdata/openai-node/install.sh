#!/usr/bin/env bash
# Installs the pinned OpenAI Node client for engines/sim/openai_node_test.go.
# Called from .ci/run; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
