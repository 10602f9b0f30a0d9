#!/usr/bin/env bash
# The Python-versions tier's interpreters: a virtualenv per end of the supported range (the
# pinned Pulumi SDK's floor and the newest Python here), with only the program's requirements.
# Reused while requirements.txt is unchanged.  Interpreters come from pyenv; a version that is
# not installed is left out (tests/test_pythons.py then skips it, or fails with CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
stamp="$(sha256sum requirements.txt | cut -c1-16)"
for version in 3.10 3.13; do
  interpreter="$(ls -d "$PYENV_ROOT"/versions/"$version".*/bin/python3 2>/dev/null | sort -V | tail -1 || true)"
  venv=".venv-py$version"
  if [ -z "$interpreter" ]; then
    echo "pythons.sh: no Python $version under $PYENV_ROOT/versions" >&2
    continue
  fi
  if [ -f "$venv/.requirements-$stamp" ] && [ -x "$venv/bin/python" ]; then
    continue
  fi
  rm -rf "$venv"
  "$interpreter" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  touch "$venv/.requirements-$stamp"
done
