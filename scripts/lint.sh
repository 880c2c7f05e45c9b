#!/usr/bin/env bash
# Style, lint and type checks: what CI runs before the tests and what the pre-commit hooks run.
# Every check runs even when an earlier one fails, so one run lists every problem; the exit status
# is non-zero when any failed. Fix style with: .venv/bin/ruff format . && .venv/bin/ruff check --fix .
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()

run() {
  local name=$1
  shift
  echo "==> $name"
  "$@" || failed+=("$name")
}

run "ruff check" .venv/bin/ruff check .
run "ruff format --check" .venv/bin/ruff format --check .
# The django-stubs plugin loads the settings, which need DEBUG=1 or a SECRET_KEY.
run "mypy" env DEBUG=1 .venv/bin/mypy annotate cmi_common rm_service tests bench manage.py

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint: ruff check, ruff format --check and mypy passed"
