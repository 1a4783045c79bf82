#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (Debian's
# Chromium for the browser tests, the Python packages in .venv), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start: the browser and the real monitoring servers.
need_apt=()
for pair in chromium:chromium prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
            prometheus-node-exporter:prometheus-node-exporter \
            prometheus-blackbox-exporter:prometheus-blackbox-exporter; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "tests/run.sh: install these Debian packages first: ${need_apt[*]}" >&2
    exit 1
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
