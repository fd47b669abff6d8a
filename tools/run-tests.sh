#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run
# all of it: lint, types, docs and pytest (real servers included, never skipped).
# Usage: bash tools/run-tests.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
command -v nghttpd >/dev/null 2>&1 || need_apt+=(nghttp2-server)
command -v nghttp >/dev/null 2>&1 || need_apt+=(nghttp2-client)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# `openssl rehash` builds the CA directories of the verify=/--cacert DIR tests.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)
# Real forward proxies for the CONNECT / proxy-authentication tests; htpasswd
# (apache2-utils) writes Squid's password file.
command -v tinyproxy >/dev/null 2>&1 || need_apt+=(tinyproxy)
command -v squid >/dev/null 2>&1 || [ -x /usr/sbin/squid ] || need_apt+=(squid)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages (${need_apt[*]}); run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The test servers are started by the fixtures; the system services are not needed.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop nginx >/dev/null 2>&1 || true
  systemctl stop tinyproxy >/dev/null 2>&1 || true
  systemctl stop squid >/dev/null 2>&1 || true
fi

python3 -m pip install -q --upgrade pip
python3 -m pip install -q -e '.[test,lint,docs]'

python3 -m ruff check hyper tests bench examples
python3 -m ruff format --check hyper tests bench examples
python3 -m mypy
python3 -m sphinx -W -q -b html docs docs/_build/html
python3 -m pytest -q "$@"
# Again without select.poll, as on Windows: hyper is imported with poll hidden and
# waits with select() (tests/portability.py). The socket, session and connection
# files only (under a minute even on a busy 2-core machine).
HYPER_TEST_NO_POLL=1 python3 -m pytest -q tests/test_portability.py tests/test_interop.py \
  tests/test_http11.py tests/test_send_fast_path.py tests/test_connection_scripted.py \
  tests/test_hostile.py
# The benchmark is not a test (no timing assertions); this only proves it still runs.
python3 -m bench --quick --clients hyper,tls --no-install
