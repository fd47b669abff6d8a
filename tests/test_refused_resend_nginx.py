"""Transparent resends against a real server: nginx retiring connections after a few requests.

nginx with ``keepalive_requests 5`` (tests/nginx_retiring.py) answers five
requests per connection and sends GOAWAY naming the last of them; the
streams above it were not processed (RFC 9113 section 6.8). A burst of more
requests than that in flight must come back whole, every response byte-exact,
with no exception: hyper sends the refused ones again on new connections
under their own stream ids (hyper/http20/resending.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hyper
import hyper.tls
from hyper import HTTP20Connection, HTTPConnection
from hyper.exceptions import ConnectionTerminated
from tests.nginx_retiring import REQUESTS_PER_CONNECTION, start_retiring_nginx
from tests.servers import CertFiles, docroot_content

_WAIT = 20.0  # bounds every wait (a loaded 2-core machine); nothing is timed
_FAST = pytest.mark.parametrize("fast", [True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"])
_ONE_K = docroot_content("1k.bin")
_HELLO = docroot_content("hello.txt")


@pytest.fixture(scope="module")
def retiring_nginx(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, docroot: str
) -> Iterator[tuple[int, int]]:
    """(TLS port, cleartext port) of an nginx answering 5 requests per connection."""
    server, tls_port, h2c_port = start_retiring_nginx(
        tmp_path_factory.mktemp("nginx-retiring"), server_cert_files, Path(docroot)
    )
    try:
        yield tls_port, h2c_port
    finally:
        server.stop()


def _count_resends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The public ids of every resend from now on (the real resend still runs)."""
    resent: list[int] = []
    real = HTTP20Connection._resend

    def counted(self: HTTP20Connection, stream_id: int, old: Any) -> Any:
        resent.append(stream_id)
        return real(self, stream_id, old)

    monkeypatch.setattr(HTTP20Connection, "_resend", counted)
    return resent


def _tls_connection(port: int, ca_file: str, **options: object) -> HTTP20Connection:
    context = hyper.tls.init_context(cert_path=ca_file)
    return HTTP20Connection("127.0.0.1", port, ssl_context=context, timeout=_WAIT, **options)  # type: ignore[arg-type]


@_FAST
def test_a_burst_larger_than_the_per_connection_limit_comes_back_whole(
    fast: bool, retiring_nginx: tuple[int, int], ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    resent = _count_resends(monkeypatch)
    count = 3 * REQUESTS_PER_CONNECTION + 2  # three GOAWAYs with requests above them
    paths = ["/1k.bin" if index % 2 else "/hello.txt" for index in range(count)]
    with _tls_connection(retiring_nginx[0], ca_file) as conn:
        # Every request in flight, in one write, before any response is read:
        # nginx answers five and ignores the rest (above its GOAWAY's last id).
        with conn.batch():
            ids = [conn.request("GET", path) for path in paths]
        assert ids == list(range(1, 2 * count, 2))  # the public ids, whatever the wire ids become
        for stream_id, path in zip(ids, paths, strict=True):
            response = conn.getresponse(stream_id)
            assert response.status == 200
            assert response.read() == (_ONE_K if path == "/1k.bin" else _HELLO)
    # nginx did refuse: every request past the first connection's five was sent again.
    assert len(resent) >= count - REQUESTS_PER_CONNECTION


def test_responses_taken_oldest_first_without_ids_are_the_right_ones(
    retiring_nginx: tuple[int, int], ca_file: str
) -> None:
    count = 2 * REQUESTS_PER_CONNECTION + 1
    paths = ["/1k.bin" if index % 3 else "/hello.txt" for index in range(count)]
    with _tls_connection(retiring_nginx[0], ca_file) as conn:
        for path in paths:
            conn.request("GET", path)
        for path in paths:
            response = conn.getresponse()  # the oldest untaken: a resent one keeps its place
            assert response.read() == (_ONE_K if path == "/1k.bin" else _HELLO)


def test_http_connection_over_h2_and_cleartext_resend_too(
    retiring_nginx: tuple[int, int], ca_file: str
) -> None:
    count = 2 * REQUESTS_PER_CONNECTION + 3
    context = hyper.tls.init_context(cert_path=ca_file)
    with HTTPConnection("127.0.0.1", retiring_nginx[0], ssl_context=context, timeout=_WAIT) as conn:
        ids = [conn.request("GET", "/1k.bin") for _ in range(count)]
        assert [conn.getresponse(stream_id).read() for stream_id in ids] == [_ONE_K] * count
    with HTTP20Connection("127.0.0.1", retiring_nginx[1], secure=False, timeout=_WAIT) as conn:
        ids = [conn.request("GET", "/hello.txt") for _ in range(count)]
        assert [conn.getresponse(stream_id).read() for stream_id in ids] == [_HELLO] * count


def test_threads_sharing_a_connection_all_get_their_responses(
    retiring_nginx: tuple[int, int], ca_file: str
) -> None:
    threads_count, per_thread = 4, REQUESTS_PER_CONNECTION
    start = threading.Barrier(threads_count, timeout=_WAIT)
    failures: list[BaseException] = []
    got: dict[int, list[bytes]] = {}

    with _tls_connection(retiring_nginx[0], ca_file) as conn:

        def worker(index: int) -> None:
            try:
                start.wait()
                path = "/1k.bin" if index % 2 else "/hello.txt"
                ids = [conn.request("GET", path) for _ in range(per_thread)]
                got[index] = [conn.getresponse(stream_id).read() for stream_id in ids]
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads_count)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(2 * _WAIT)
        assert not any(thread.is_alive() for thread in workers)
    assert failures == []
    for index in range(threads_count):
        assert got[index] == [_ONE_K if index % 2 else _HELLO] * per_thread


def test_with_resends_off_the_burst_fails_retryably(retiring_nginx: tuple[int, int], ca_file: str) -> None:
    count = REQUESTS_PER_CONNECTION + 2
    with _tls_connection(retiring_nginx[0], ca_file, retry_refused=False) as conn:
        with conn.batch():  # all in flight in one write: nginx answers five, ignores the rest
            ids = [conn.request("GET", "/1k.bin") for _ in range(count)]
        for stream_id in ids[:REQUESTS_PER_CONNECTION]:
            assert conn.getresponse(stream_id).read() == _ONE_K
        for stream_id in ids[REQUESTS_PER_CONNECTION:]:
            with pytest.raises(ConnectionTerminated) as caught:
                conn.getresponse(stream_id)
            assert caught.value.retryable
        # The connection goes on with a new session.
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == _ONE_K


def test_hyper_module_is_this_worktree() -> None:
    assert Path(hyper.__file__).resolve().parent.parent == Path(__file__).resolve().parent.parent


def test_the_requests_adapter_from_threads_gets_every_response(
    retiring_nginx: tuple[int, int], ca_file: str
) -> None:
    requests = pytest.importorskip("requests")
    from hyper.contrib import HTTP20Adapter

    threads_count, per_thread = 4, REQUESTS_PER_CONNECTION
    url = f"https://localhost:{retiring_nginx[0]}/1k.bin"
    start = threading.Barrier(threads_count, timeout=_WAIT)
    failures: list[BaseException] = []
    bodies: list[bytes] = []
    with requests.Session() as session:
        session.trust_env = False  # the machine's proxy variables must not apply
        session.mount("https://", HTTP20Adapter())

        def worker() -> None:
            try:
                start.wait()
                for _ in range(per_thread):
                    response = session.get(url, verify=ca_file, timeout=_WAIT)
                    assert response.status_code == 200
                    bodies.append(response.content)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        workers = [threading.Thread(target=worker) for _ in range(threads_count)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(2 * _WAIT)
        assert not any(thread.is_alive() for thread in workers)
    assert failures == []
    assert bodies == [_ONE_K] * (threads_count * per_thread)
