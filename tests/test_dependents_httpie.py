"""HTTPie 3 with the httpie-http2 plugin, written for hyper 0.7, runs unchanged.

The plugin mounts ``hyper.contrib.HTTP20Adapter()`` for ``https://``; HTTPie
prints the status line from ``response.raw._original_response``. Both are
installed by tools/run-tests.sh (httpie-http2 with ``--no-deps``: it
declares a dependency on the old hyper). The tests run the real ``http``
program in a subprocess, with this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpie  # noqa: F401 - installed by tools/run-tests.sh; missing fails the run
import httpie_http2  # noqa: F401 - installed by tools/run-tests.sh; missing fails the run
import pytest

from tests.asgi_app import deterministic_bytes
from tests.servers import REPO_ROOT, ServerInfo, docroot_content

# Bounds the whole HTTPie run; a local exchange takes well under a second.
RUN_TIMEOUT = 120


def _http_command() -> list[str]:
    """The ``http`` program installed next to this interpreter (else the same entry point via -m)."""
    script = Path(sys.executable).parent / "http"
    return [str(script)] if script.exists() else [sys.executable, "-m", "httpie"]


def run_http(
    tmp_path: Path, server: ServerInfo, *args: str, check_status: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run ``http`` with the test CA against ``server`` (paths in ``args`` are URLs there)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # The test run's warnings-as-errors and the user's HTTPie config stay out.
    env.pop("PYTHONWARNINGS", None)
    env["HTTPIE_CONFIG_DIR"] = str(tmp_path / "httpie-config")
    argv = [*_http_command(), "--ignore-stdin", f"--verify={server.ca_file}"]
    if check_status:
        argv.append("--check-status")
    argv += [arg.replace("URL:", f"https://localhost:{server.port}") for arg in args]
    return subprocess.run(argv, capture_output=True, env=env, timeout=RUN_TIMEOUT, cwd=tmp_path)


def test_plugin_is_the_https_transport() -> None:
    from httpie.plugins.registry import plugin_manager

    plugin_manager.load_installed_plugins()
    names = [plugin.name for plugin in plugin_manager.get_transport_plugins()]
    assert "HTTP/2 transport" in names


def test_get_prints_an_http2_status_line(tmp_path: Path, hypercorn_server: ServerInfo) -> None:
    result = run_http(tmp_path, hypercorn_server, "--print=hb", "GET", "URL:/headers-echo?q=1")
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode()
    status_line = output.splitlines()[0]
    assert re.fullmatch(r"HTTP/2(\.0)? 200\b.*", status_line), status_line
    document = json.loads(output[output.index("{") :])
    assert document["http_version"] == "2"
    assert document["method"] == "GET"
    assert document["query_string"] == "q=1"


def test_http11_server_prints_http11(tmp_path: Path, nginx_http11_server: ServerInfo) -> None:
    """``version`` follows what ALPN negotiated: 11 from an HTTP/1.1-only server."""
    result = run_http(tmp_path, nginx_http11_server, "--print=hb", "GET", "URL:/hello.txt")
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode()
    assert output.splitlines()[0] == "HTTP/1.1 200 OK"
    assert docroot_content("hello.txt").decode() in output


def test_post_json_items(tmp_path: Path, hypercorn_server: ServerInfo) -> None:
    result = run_http(
        tmp_path, hypercorn_server, "--print=hb", "POST", "URL:/echo", "name=hyper", "count:=3", "tags:=[1,2]"
    )
    assert result.returncode == 0, result.stderr.decode()
    # HTTPie ends header lines with CRLF, as on the wire.
    head, _, body = result.stdout.decode().replace("\r\n", "\n").partition("\n\n")
    assert head.splitlines()[0].startswith("HTTP/2")
    assert re.search(r"(?im)^x-request-method: POST$", head)
    assert json.loads(body) == {"name": "hyper", "count": 3, "tags": [1, 2]}


def test_download_of_a_multi_mib_body(tmp_path: Path, hypercorn_server: ServerInfo) -> None:
    size = 5 * 1024 * 1024 + 17
    target = tmp_path / "download.bin"
    result = run_http(
        tmp_path, hypercorn_server, "--download", "--output", str(target), "GET", f"URL:/bytes/{size}"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert target.stat().st_size == size
    expected = hashlib.sha256(deterministic_bytes(size)).hexdigest()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == expected


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (302, 3), (404, 4), (503, 5)])
def test_check_status_exit_codes(
    tmp_path: Path, hypercorn_server: ServerInfo, status: int, exit_code: int
) -> None:
    result = run_http(
        tmp_path, hypercorn_server, "--print=h", "GET", f"URL:/status/{status}", check_status=True
    )
    assert result.returncode == exit_code, result.stderr.decode()
    assert result.stdout.decode().splitlines()[0].startswith(f"HTTP/2.0 {status}")
