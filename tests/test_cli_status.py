"""Exit statuses of the ``hyper`` command: ``--check-status``, ``--follow``, ``--max-redirects``, timeouts.

The numbers are HTTPie's: 3/4/5 for an unexpected 3xx/4xx/5xx with
``--check-status`` (a 3xx only when not following), 6 for too many
redirects, 2 for a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hyper.cli.status import exit_status_for
from hyper.testing import Request, TestServer
from tests.cli_helpers import run_program
from tests.servers import ServerInfo


def _redirect(status: int, location: str) -> object:
    return lambda request: (status, [("location", location)], b"moved\n")


def _echo_request(request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    document = {"method": request.method, "body": request.body.decode("latin-1"), "headers": request.headers}
    return 200, [("content-type", "application/json")], json.dumps(document).encode()


@pytest.fixture(scope="module")
def redirects() -> Iterator[TestServer]:
    routes = {
        "/loop": _redirect(302, "/loop"),
        "/two": _redirect(301, "/one"),
        "/one": _redirect(302, "/final"),
        "/final": _echo_request,
        "/303": _redirect(303, "/final"),
        "/307": _redirect(307, "/final"),
        "/308": _redirect(308, "/final"),
        "/302": _redirect(302, "/final"),
        "/no-location": lambda request: (302, [], b""),
        "/bad-location": _redirect(302, "http://[zz]/"),
    }
    with TestServer(routes=routes) as server:
        yield server


def hyper(server: TestServer, *argv: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    words = [f"https://localhost:{server.port}{word}" if word.startswith("/") else word for word in argv]
    done = run_program("--cacert", server.ca_file, *words, stdin=stdin)
    return done.returncode, done.stdout, done.stderr.decode()


@pytest.mark.parametrize(
    ("status", "follow", "expected"),
    [
        (200, False, 0),
        (204, True, 0),
        (301, False, 3),
        (304, True, 0),
        (404, False, 4),
        (404, True, 4),
        (503, False, 5),
    ],
)
def test_exit_status_for(status: int, follow: bool, expected: int) -> None:
    assert exit_status_for(status, follow) == expected


@pytest.mark.parametrize(("path", "expected"), [("/status/200", 0), ("/status/404", 4), ("/status/500", 5)])
def test_check_status(hypercorn_server: ServerInfo, path: str, expected: int) -> None:
    done = run_program(
        "--check-status", "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url(path)
    )
    assert done.returncode == expected
    if expected:
        # stdout is not a terminal, so the status is said on stderr (as HTTPie does).
        assert done.stderr.decode().startswith(f"hyper: warning: HTTP {path[-3:]} ")
    # Without --check-status any response is a success.
    assert run_program("--cacert", str(hypercorn_server.ca_file), hypercorn_server.url(path)).returncode == 0


def test_redirect_not_followed_is_3_with_check_status(hypercorn_server: ServerInfo) -> None:
    url = hypercorn_server.url("/redirect")
    done = run_program("--check-status", "-h", "--cacert", str(hypercorn_server.ca_file), url)
    assert done.returncode == 3
    assert done.stdout.startswith(b"HTTP/2 302 Found\n")
    assert b"location: /headers-echo\n" in done.stdout


def test_follow_reaches_the_final_response(hypercorn_server: ServerInfo) -> None:
    url = hypercorn_server.url("/redirect")
    done = run_program("--follow", "--check-status", "-v", "--cacert", str(hypercorn_server.ca_file), url)
    assert done.returncode == 0
    out = done.stdout.decode()
    # Without --all only the final exchange is printed.
    assert out.startswith("GET /headers-echo HTTP/2\n")
    assert "302" not in out.split("\n\n")[1]
    assert json.loads(out.rpartition("\n\n")[2])["path"] == "/headers-echo"


def test_all_prints_every_exchange(redirects: TestServer) -> None:
    status, out, _ = hyper(redirects, "-F", "--all", "-p", "Hh", "/two")
    assert status == 0
    lines = [line for line in out.decode().split("\n") if line.startswith(("GET", "HTTP/"))]
    assert lines == [
        "GET /two HTTP/2",
        "HTTP/2 301 Moved Permanently",
        "GET /one HTTP/2",
        "HTTP/2 302 Found",
        "GET /final HTTP/2",
        "HTTP/2 200 OK",
    ]


def test_too_many_redirects_is_6(redirects: TestServer) -> None:
    status, out, err = hyper(redirects, "--follow", "--max-redirects", "3", "/loop")
    assert (status, out) == (6, b"")
    assert err == "hyper: error: too many redirects (--max-redirects=3)\n"
    status, _, _ = hyper(redirects, "--follow", "--max-redirects", "1", "/two")
    assert status == 6
    status, _, _ = hyper(redirects, "--follow", "--max-redirects", "2", "/two")
    assert status == 0


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/303", "GET", ""),
        ("/302", "GET", ""),
        ("/307", "POST", '{"a": "b"}'),
        ("/308", "POST", '{"a": "b"}'),
    ],
)
def test_redirected_method_and_body(redirects: TestServer, path: str, method: str, body: str) -> None:
    status, out, _ = hyper(redirects, "-F", path, "a=b")
    assert status == 0
    document = json.loads(out)
    assert (document["method"], document["body"]) == (method, body)
    if method == "GET":
        assert "content-type" not in dict(document["headers"])
        assert "content-length" not in dict(document["headers"])


def test_redirect_keeps_a_stdin_body_for_307(redirects: TestServer) -> None:
    status, out, _ = hyper(redirects, "-F", "PUT", "/307", stdin=b"stdin body")
    assert (status, json.loads(out)["body"]) == (0, "stdin body")


def test_final_3xx_with_follow_is_not_an_error(redirects: TestServer) -> None:
    status, out, _ = hyper(redirects, "-F", "--check-status", "-h", "/no-location")
    assert status == 0
    assert out.startswith(b"HTTP/2 302 Found\n")


def test_invalid_location_is_an_error_of_the_server(redirects: TestServer) -> None:
    status, _, err = hyper(redirects, "-F", "/bad-location")
    assert status == 1
    assert err.startswith("hyper: error: the server redirected to an invalid location")
    assert err.count("\n") == 1


def test_timeout_is_2(hypercorn_server: ServerInfo) -> None:
    done = run_program(
        "--timeout", "0.5", "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/stall")
    )
    assert done.returncode == 2
    assert done.stderr.decode().startswith("hyper: error: ReadTimeout: ")
