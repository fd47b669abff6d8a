"""HTTPie 3 with the httpie-http2 plugin, written for hyper 0.7, runs unchanged.

The plugin mounts ``hyper.contrib.HTTP20Adapter()`` for ``https://``; HTTPie
prints the status line from ``response.raw._original_response``. Both are
installed by tools/run-tests.sh (httpie-http2 with ``--no-deps``: it
declares a dependency on the old hyper). The tests run the real ``http``
program in a subprocess.

hyper's own plugin claims ``https://`` too, so tests.httpie_env runs ``http``
with httpie-http2's plugin as the only transport (hyper's distribution
metadata shadowed) while ``import hyper`` still finds this checkout;
``test_only_httpie_http2s_plugin_is_loaded`` asserts both.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Protocol

import httpie  # noqa: F401 - installed by tools/run-tests.sh; missing fails the run
import httpie_http2  # noqa: F401 - installed by tools/run-tests.sh; missing fails the run
import pytest

from tests.asgi_app import deterministic_bytes
from tests.httpie_env import ROOT, HTTPie, isolated_httpie
from tests.servers import ServerInfo, docroot_content

PLUGIN_CLASS = "httpie_http2.HTTP2TransportPlugin"


@pytest.fixture(scope="module")
def http2_httpie(tmp_path_factory: pytest.TempPathFactory) -> HTTPie:
    return isolated_httpie(tmp_path_factory.mktemp("httpie-http2"), keep="httpie-http2")


class RunHTTP(Protocol):
    def __call__(
        self, server: ServerInfo, *args: str, check_status: bool = False
    ) -> subprocess.CompletedProcess[bytes]: ...


@pytest.fixture
def run_http(tmp_path: Path, http2_httpie: HTTPie) -> RunHTTP:
    def run(server: ServerInfo, *args: str, check_status: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run ``http`` with the test CA against ``server`` (``URL:`` in ``args`` is its origin)."""
        argv = [f"--verify={server.ca_file}"]
        if check_status:
            argv.append("--check-status")
        argv += [arg.replace("URL:", f"https://localhost:{server.port}") for arg in args]
        return http2_httpie.run(*argv, cwd=tmp_path)

    return run


def test_only_httpie_http2s_plugin_is_loaded(http2_httpie: HTTPie) -> None:
    # What the `http` command itself lists...
    assert http2_httpie.debug_adapters() == [PLUGIN_CLASS]
    # ...agrees with HTTPie's plugin manager; the plugin's `import hyper` is this checkout.
    seen = http2_httpie.probe()
    assert seen["transports"] == [PLUGIN_CLASS]
    assert Path(str(seen["hyper_file"])).resolve() == ROOT / "hyper" / "__init__.py"


def test_get_prints_an_http2_status_line(run_http: RunHTTP, hypercorn_server: ServerInfo) -> None:
    result = run_http(hypercorn_server, "--print=hb", "GET", "URL:/headers-echo?q=1")
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode()
    status_line = output.splitlines()[0]
    assert re.fullmatch(r"HTTP/2(\.0)? 200\b.*", status_line), status_line
    document = json.loads(output[output.index("{") :])
    assert document["http_version"] == "2"
    assert document["method"] == "GET"
    assert document["query_string"] == "q=1"


def test_http11_server_prints_http11(run_http: RunHTTP, nginx_http11_server: ServerInfo) -> None:
    """``version`` follows what ALPN negotiated: 11 from an HTTP/1.1-only server."""
    result = run_http(nginx_http11_server, "--print=hb", "GET", "URL:/hello.txt")
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode()
    assert output.splitlines()[0] == "HTTP/1.1 200 OK"
    assert docroot_content("hello.txt").decode() in output


def test_post_json_items(run_http: RunHTTP, hypercorn_server: ServerInfo) -> None:
    result = run_http(
        hypercorn_server, "--print=hb", "POST", "URL:/echo", "name=hyper", "count:=3", "tags:=[1,2]"
    )
    assert result.returncode == 0, result.stderr.decode()
    # HTTPie ends header lines with CRLF, as on the wire.
    head, _, body = result.stdout.decode().replace("\r\n", "\n").partition("\n\n")
    assert head.splitlines()[0].startswith("HTTP/2")
    assert re.search(r"(?im)^x-request-method: POST$", head)
    assert json.loads(body) == {"name": "hyper", "count": 3, "tags": [1, 2]}


def test_download_of_a_multi_mib_body(
    run_http: RunHTTP, tmp_path: Path, hypercorn_server: ServerInfo
) -> None:
    size = 5 * 1024 * 1024 + 17
    target = tmp_path / "download.bin"
    result = run_http(hypercorn_server, "--download", "--output", str(target), "GET", f"URL:/bytes/{size}")
    assert result.returncode == 0, result.stderr.decode()
    assert target.stat().st_size == size
    expected = hashlib.sha256(deterministic_bytes(size)).hexdigest()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == expected


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (302, 3), (404, 4), (503, 5)])
def test_check_status_exit_codes(
    run_http: RunHTTP, hypercorn_server: ServerInfo, status: int, exit_code: int
) -> None:
    result = run_http(hypercorn_server, "--print=h", "GET", f"URL:/status/{status}", check_status=True)
    assert result.returncode == exit_code, result.stderr.decode()
    assert result.stdout.decode().splitlines()[0].startswith(f"HTTP/2.0 {status}")
