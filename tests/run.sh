#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, then pytest.
# Browser tests drive Debian's chromium; Playwright never downloads a browser. Scale-out tests
# run against this machine's PostgreSQL and a moto S3 server the tests start (tests/support/services.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
python -m pip install -q --disable-pip-version-check -r requirements-test.txt
# PostgreSQL (Debian's cluster, a throwaway role and database) and HAProxy for the scale-out tests.
bash tests/services.sh
# The 15 slowest tests close every run: the suite is held to about fifteen minutes on two cores.
python -m pytest --durations=15 "$@"
