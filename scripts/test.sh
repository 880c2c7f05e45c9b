#!/usr/bin/env bash
# The whole test suite, against real PostgreSQL and Redis on 127.0.0.1 (defaults in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "WARNING: could not install chromium; browser tests will fail"
fi
mkdir -p test-artifacts
exec .venv/bin/python -m pytest "$@"
