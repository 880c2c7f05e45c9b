#!/usr/bin/env bash
# Create .venv and install the project with its dev extras. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing dependencies (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # torch first and pinned: the CPU build on disk, never the multi-GB CUDA wheels.
  .venv/bin/python -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import django, celery, torch, rest_framework, krippendorff" 
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Browser-test tooling (axe-core, pinned in package.json / package-lock.json) into node_modules/, git-ignored.
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  if command -v npm >/dev/null; then
    echo "==> installing browser-test tooling (npm ci)"
    npm ci --no-audit --no-fund --silent || echo "WARNING: npm ci failed; the accessibility checks of the browser tests will fail"
  else
    echo "WARNING: npm not found; the accessibility checks of the browser tests will fail"
  fi
fi
