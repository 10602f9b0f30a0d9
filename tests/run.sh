#!/usr/bin/env bash
# The one test command: makes its own venv (.venv-test), installs what the tests need, runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv-test/bin/python ]; then
  "$PY" -m venv .venv-test
fi
.venv-test/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv-test/bin/python -m ruff check components tests bench policy
.venv-test/bin/python -m mypy --ignore-missing-imports components
exec .venv-test/bin/python -m pytest -q -p no:cacheprovider tests "$@"
