#!/usr/bin/env bash
# Run the whole test suite: creates .venv (if needed), installs what the tests need
# (Python packages from PyPI; Debian's Chromium for the browser tests when we are root
# and it is missing), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed: browser tests will be skipped"
  else
    echo "chromium not found: browser tests will be skipped"
  fi
fi

# The pytest script, not `python -m pytest`: the latter puts this folder on sys.path,
# where our `py/` package would shadow pytest's own `py` module.
exec .venv/bin/pytest -q "$@"
