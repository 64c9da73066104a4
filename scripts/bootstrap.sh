#!/usr/bin/env bash
# Creates .venv with the pinned Python 3.10 stack on a fresh machine; a second call only checks.
# Why uv: pip's resolver backtracks for many minutes on the TFX tree, a pinned sync takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10 \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 \
      /root/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      command -v "$candidate" || echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  if ! python310=$(find_python310); then
    echo "error: no working Python 3.10 interpreter found." >&2
    echo "Install Python 3.10 (e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv')," >&2
    echo "or point PYTHON310 at one: make PYTHON310=/path/to/python3.10 test" >&2
    exit 1
  fi
  echo "bootstrap: creating .venv with $python310"
  "$python310" -m venv .venv
fi

lock_digest=$(sha256sum requirements/lock.txt setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.lock-digest 2>/dev/null)" != "$lock_digest" ]; then
  if [ ! -x .venv/bin/uv ]; then
    echo "bootstrap: installing uv into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      "$(grep -E '^uv==' requirements/lock.txt)"
  fi
  echo "bootstrap: syncing .venv with requirements/lock.txt"
  .venv/bin/uv pip sync --quiet --python .venv/bin/python requirements/lock.txt
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
  echo "$lock_digest" > .venv/.lock-digest
fi
