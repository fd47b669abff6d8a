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
# The benchmark's third server (bench/more_servers.py; tests/test_bench_floor.py).
command -v h2o >/dev/null 2>&1 || need_apt+=(h2o)
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
  systemctl stop h2o >/dev/null 2>&1 || true
fi

python3 -m pip install -q --upgrade pip
# httpie: the HTTPie plugin's tests run the real `http` command (also in the test extra).
python3 -m pip install -q -e '.[test,lint,docs,httpie]'
# Programs written for hyper 0.7 that tests/test_dependents_*.py run unchanged.
# --no-deps: both declare a dependency on the old hyper, which must never
# replace this checkout; their real dependencies are named here instead
# (apns2 0.7.2 pins PyJWT below 2).
python3 -m pip install -q --no-deps apns2==0.7.2 httpie-http2==0.0.1
python3 -m pip install -q 'PyJWT>=1.4,<2' 'cryptography>=1.7.2' 'httpie>=3,<4'
here="$PWD"
(cd / && python3 -c 'import hyper, os, sys; sys.exit(os.path.dirname(hyper.__file__) != sys.argv[1])' "$here/hyper") \
  || { echo "an installed hyper (the old 0.7?) shadows this checkout" >&2; exit 1; }

python3 -m ruff check hyper tests bench examples
python3 -m ruff format --check hyper tests bench examples
python3 -m mypy
python3 -m sphinx -W -q -b html docs docs/_build/html
# --- The fast paths and the h2/hpack versions they are checked against (issue 13) ---
# Three runs of the whole suite: (1) the pinned, tested h2/hpack/hyperframe
# (tools/constraints.txt, the lower bounds of setup.py's range) with the fast
# paths on; (2) the same with HYPER_FAST_PATHS=0, i.e. h2's public API only
# (minus the tests listed in tools/fast-paths-only.txt, which check a
# recovery only the fast paths provide); (3) the newest releases on the index,
# in a separate venv, with the fast paths as the fence decides.
python3 -m pip install -q -c tools/constraints.txt h2 hpack hyperframe
python3 -c 'from hyper.http20 import h2_internals as f; assert f.fast_paths_enabled(), f.fast_paths_problem()'
python3 -m pytest -q "$@"
# Again without select.poll, as on Windows: hyper is imported with poll hidden and
# waits with select() (tests/portability.py). The socket, session and connection
# files only (under a minute even on a busy 2-core machine).
HYPER_TEST_NO_POLL=1 python3 -m pytest -q tests/test_portability.py tests/test_interop.py \
  tests/test_http11.py tests/test_send_fast_path.py tests/test_connection_scripted.py \
  tests/test_hostile.py
fast_paths_only=()
while read -r test_id; do
  case "$test_id" in ''|'#'*) ;; *) fast_paths_only+=(--deselect "$test_id") ;; esac
done < tools/fast-paths-only.txt
HYPER_FAST_PATHS=0 python3 -m pytest -q "${fast_paths_only[@]}" "$@"
newest_venv="$(mktemp -d)/newest-h2"
python3 -m venv --system-site-packages "$newest_venv"
"$newest_venv/bin/python" -m pip install -q --upgrade h2 hpack hyperframe
"$newest_venv/bin/python" -c 'import h2, hpack; print("newest: h2", h2.__version__, "hpack", hpack.__version__)'
"$newest_venv/bin/python" -m pytest -q "$@"
rm -rf "$newest_venv"
# --- end of the fast-path runs ---
# The benchmark is not a test (no timing assertions); this only proves it still runs.
python3 -m bench --quick --clients hyper,tls --no-install
