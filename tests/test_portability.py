"""hyper without Linux-only facilities: no ``select.poll``, no ``TCP_NODELAY``.

Windows has no ``select.poll``; hyper then waits with ``select.select``. Each
wait test runs on both paths and expects the same answers: bounded waits,
and a peer's hang-up or reset reported as "ready". The full tests run on the
fallback too: ``HYPER_TEST_NO_POLL=1`` (see tests/portability.py).
"""

from __future__ import annotations

import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hyper
import hyper.tls
from hyper.common import sockets
from tests.portability import poll_hidden_requested
from tests.servers import ServerInfo, docroot_content

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["poll", "select"])
def wait_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with poll() and once as on Windows (select() only)."""
    if request.param == "select":
        # As on Windows: hyper must not reach for select.poll at all.
        monkeypatch.setattr(sockets, "HAVE_POLL", False)
        monkeypatch.delattr(select, "poll")
    elif not sockets.HAVE_POLL:
        pytest.skip("this run hides poll (HYPER_TEST_NO_POLL=1); the select path is the one under test")
    return str(request.param)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on loopback (select() on Windows takes only sockets)."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        server, _ = listener.accept()
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def test_the_fallback_is_in_use_when_the_run_asks_for_it() -> None:
    # Guards the CI line that runs the core tests without poll: if the switch
    # stopped working, that run would quietly test poll() a second time.
    assert sockets.HAVE_POLL is (not poll_hidden_requested())


def test_an_idle_socket_is_writable_not_readable(
    wait_path: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, _ = pair
    assert sockets.wait_for_socket(client, read=True, write=True, timeout=5) == (False, True)


def test_a_wait_with_nothing_to_read_is_bounded(
    wait_path: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, _ = pair
    started = time.monotonic()
    assert sockets.wait_for_socket(client, read=True, write=False, timeout=0.2) == (False, False)
    # It waited (at least most of the timeout; clocks differ in granularity)
    # and it returned: the upper bound is generous because time is not the point.
    assert 0.15 <= time.monotonic() - started < 30


def test_a_zero_timeout_does_not_block(wait_path: str, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    assert sockets.wait_for_socket(client, read=True, write=False, timeout=0) == (False, False)
    server.sendall(b"x")
    # Data in flight on loopback arrives within the bounded wait.
    assert sockets.wait_for_socket(client, read=True, write=False, timeout=10) == (True, False)


def test_data_makes_the_socket_readable(wait_path: str, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.sendall(b"hello")
    readable, writable = sockets.wait_for_socket(client, read=True, write=False, timeout=10)
    assert (readable, writable) == (True, False)
    assert client.recv(10) == b"hello"


def test_a_hang_up_counts_as_readable(wait_path: str, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.close()
    readable, _ = sockets.wait_for_socket(client, read=True, write=False, timeout=10)
    assert readable
    assert client.recv(10) == b""  # the following call sees the EOF


def test_a_reset_counts_as_ready(wait_path: str, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    server.close()
    readable, writable = sockets.wait_for_socket(client, read=True, write=True, timeout=10)
    assert readable and writable
    with pytest.raises(OSError):
        client.recv(10)


def test_the_wake_socket_interrupts_a_wait(wait_path: str, pair: tuple[socket.socket, socket.socket]) -> None:
    client, _ = pair
    wake_r, wake_w = socket.socketpair()
    with wake_r, wake_w:
        wake_w.send(b"\0")
        readable, woken = sockets.wait_for_socket(client, read=True, write=False, timeout=10, wake=wake_r)
        assert (readable, woken) == (False, True)
        # Without a wake-up byte, the same wait times out with neither flag.
        wake_r.recv(1)
        assert sockets.wait_for_socket(client, read=True, write=False, timeout=0.05, wake=wake_r) == (
            False,
            False,
        )


def test_a_request_over_tls_without_poll(
    wait_path: str, nginx_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = hyper.tls.init_context(cert_path=nginx_server.ca_file)
    with hyper.HTTP20Connection(
        nginx_server.host, nginx_server.port, ssl_context=context, timeout=20
    ) as conn:
        for _ in range(3):
            response = conn.getresponse(conn.request("GET", "/1k.bin"))
            assert response.status == 200
            assert response.read() == docroot_content("1k.bin")


def test_hyper_imports_and_works_in_a_python_without_poll(
    nginx_server: ServerInfo, nginx_http11_server: ServerInfo
) -> None:
    # A fresh interpreter where select.poll never existed, as on Windows:
    # `import hyper` must work and hyper must then serve requests.
    script = f"""
import select
del select.poll
import hyper, hyper.tls
from hyper.common import sockets
assert not sockets.HAVE_POLL
context = hyper.tls.init_context(cert_path={nginx_server.ca_file!r})
where = ({nginx_server.host!r}, {nginx_server.port})
with hyper.HTTP20Connection(*where, ssl_context=context, timeout=20) as conn:
    body = conn.getresponse(conn.request("GET", "/hello.txt")).read()
where11 = ({nginx_http11_server.host!r}, {nginx_http11_server.port})
context11 = hyper.tls.init_context(cert_path={nginx_server.ca_file!r}, alpn=("http/1.1",))
with hyper.HTTP11Connection(*where11, ssl_context=context11, timeout=20) as conn:
    conn.request("GET", "/hello.txt")
    body11 = conn.getresponse().read()
print(len(body), len(body11))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "error"},
    )
    assert result.returncode == 0, result.stderr
    expected = len(docroot_content("hello.txt"))
    assert result.stdout.split() == [str(expected), str(expected)]


def test_no_tcp_nodelay_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch, nginx_server: ServerInfo, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, _ = pair
    assert sockets.disable_nagle(client) is True
    monkeypatch.delattr(socket, "TCP_NODELAY")
    assert sockets.disable_nagle(client) is False
    # And a real connection still opens and serves without the option.
    sock = sockets.connect_tcp(nginx_server.host, nginx_server.port, timeout=10)
    with sock:
        assert sock.getpeername()[1] == nginx_server.port


def test_a_socket_that_is_not_tcp_keeps_its_defaults() -> None:
    left, right = socket.socketpair()
    with left, right:
        if left.family == socket.AF_INET:  # Windows emulates socketpair() over TCP
            pytest.skip("socketpair is TCP here")
        assert sockets.disable_nagle(left) is False
