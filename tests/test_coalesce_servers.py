"""Bursts of requests leave in few writes against real servers over TLS, and every answer is right (issue 14).

nginx and nghttpd (tests/servers.py) over real TLS with the test CA; the
writes are counted on the client's socket (tests/coalesce_helpers.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import hyper.tls
from hyper import HTTP20Connection
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, count_sends, needs_coalescing
from tests.servers import HELLO_TEXT, ServerInfo

SERVERS = ["nginx_server", "nghttpd_server"]


def connect(info: ServerInfo, **options: Any) -> HTTP20Connection:
    """A TLS connection to a real test server, trusting the test CA."""
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return HTTP20Connection(info.host, info.port, secure=True, ssl_context=context, timeout=WAIT, **options)


def warmed_up(conn: HTTP20Connection) -> None:
    """One request answered: the TLS and SETTINGS exchanges are over before counting starts."""
    assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT


@needs_coalescing
@pytest.mark.parametrize("server", SERVERS)
def test_a_burst_leaves_in_two_writes_and_is_answered(
    server: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    count = 50
    with controlled_flusher(monkeypatch, NEVER) as flusher, connect(info) as conn:
        warmed_up(conn)
        sends = count_sends(conn)
        ids = [conn.request("GET", "/hello.txt") for _ in range(count)]
        assert sends.sends == 1  # the burst's first request; the other 49 are held
        assert flusher.scheduled == 1  # the flusher was asked once, not per request
        assert conn.getresponse(ids[0]).read() == HELLO_TEXT
        assert sends.sends == 2  # the wait sent the 49 in one write
        for stream_id in ids[1:]:
            response = conn.getresponse(stream_id)
            assert response.status == 200
            assert response.read() == HELLO_TEXT
        # Window credit given back on the way adds a few writes, far fewer than one per request.
        assert sends.sends < count // 5


@needs_coalescing
@pytest.mark.parametrize("server", SERVERS)
def test_bursts_with_the_real_flusher_are_answered(server: str, request: pytest.FixtureRequest) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    with connect(info) as conn:
        warmed_up(conn)
        sends = count_sends(conn)
        for _ in range(5):
            ids = [conn.request("GET", "/hello.txt") for _ in range(40)]
            for stream_id in ids:
                assert conn.getresponse(stream_id).read() == HELLO_TEXT
        # However the flusher's timing fell, writes stay far fewer than requests.
        assert sends.sends < 5 * 40


@pytest.mark.parametrize("server", SERVERS)
def test_sequential_requests_write_once_each_against_real_servers(
    server: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    with controlled_flusher(monkeypatch, NEVER) as flusher, connect(info) as conn:
        warmed_up(conn)
        sends = count_sends(conn)
        for _ in range(20):
            before = sends.sends
            stream_id = conn.request("GET", "/hello.txt")
            assert sends.sends == before + 1
            assert conn.getresponse(stream_id).read() == HELLO_TEXT
        assert flusher.scheduled == 0


@pytest.mark.parametrize("server", SERVERS)
def test_the_off_switch_writes_each_request_against_real_servers(
    server: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    with controlled_flusher(monkeypatch, NEVER) as flusher, connect(info, coalesce_requests=False) as conn:
        warmed_up(conn)
        sends = count_sends(conn)
        ids = [conn.request("GET", "/hello.txt") for _ in range(10)]
        assert sends.sends == 10
        assert flusher.scheduled == 0
        for stream_id in ids:
            assert conn.getresponse(stream_id).read() == HELLO_TEXT


def test_eight_threads_bursting_on_one_connection(nginx_server: ServerInfo) -> None:
    errors: list[BaseException] = []
    answered = [0] * 8

    def work(index: int) -> None:
        try:
            for _ in range(10):
                ids = [conn.request("GET", "/hello.txt") for _ in range(5)]
                for stream_id in ids:
                    assert conn.getresponse(stream_id).read() == HELLO_TEXT
                    answered[index] += 1
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    with connect(nginx_server) as conn:
        threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 6)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert answered == [50] * 8


def test_a_request_with_a_body_inside_a_burst(
    nghttpd_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with controlled_flusher(monkeypatch, NEVER), connect(nghttpd_server) as conn:
        first = conn.request("GET", "/hello.txt")
        held = conn.request("GET", "/hello.txt")  # held
        # Its HEADERS (and the held ones before them) leave before its DATA.
        posted = conn.request("POST", "/echo", body=b"x" * 100_000)
        last = conn.request("GET", "/hello.txt")  # held again
        assert conn.getresponse(posted).read() == b"x" * 100_000
        for stream_id in (first, held, last):
            assert conn.getresponse(stream_id).read() == HELLO_TEXT
