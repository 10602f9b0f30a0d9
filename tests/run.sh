#!/usr/bin/env bash
# The one test command: makes its own venv (.venv-test), installs what the tests need, runs them.
# Settings for ruff, mypy and pytest are in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv-test/bin/python ]; then
  "$PY" -m venv .venv-test
fi
.venv-test/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv-test/bin/python -m ruff check components tools tests bench policy engine __main__.py
.venv-test/bin/python -m mypy components tools tests bench engine __main__.py
(cd policy && ../.venv-test/bin/python -m mypy --config-file ../pyproject.toml .)
./tests/pythons.sh
exec .venv-test/bin/python -m pytest -q tests "$@"
