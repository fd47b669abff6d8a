"""review15: file bodies through the public APIs: bad files, requests' 307 rewind, threads, bursts, no length.

- A closed or write-only file body is the caller's mistake: the standard
  (BRIEF: "a clear exception ... raised before anything is sent when the
  caller is at fault") wants it refused before the request's HEADERS go
  out. Today the HEADERS go out, then ``read()`` raises its bare error and
  the stream is reset.
- requests (via :class:`hyper.contrib.HTTP20Adapter`) follows a 307 for a
  POST by seeking the body back to where it started and sending it again:
  the position an in-place upload leaves must let that work.
- Two threads uploading two files on one connection share its window
  (nghttpd over TLS): both byte-exact.
- A burst (coalescing) or a ``batch()`` holding a lower stream's HEADERS,
  then a file upload: the held HEADERS leave first (RFC 9113 section 5.1;
  nghttpd would fail the connection on DATA of an idle stream).
- A file sent with ``send()`` on a request without ``content-length``: read
  to its end.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.events
import h2.settings
import pytest
import requests

import hyper.tls
from hyper import HTTP20Connection
from hyper.contrib import HTTP20Adapter
from hyper.exceptions import HyperError
from hyper.http20 import session_file_upload
from tests.fast_paths import force_fast_paths_on
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo

S = h2.settings.SettingCodes
FIRST_WINDOW = 65_535


def pattern(size: int, seed: int) -> bytes:
    return bytes((i * (5 + 2 * seed) + i // 253 + seed) % 256 for i in range(size))


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    force_fast_paths_on(monkeypatch)


# -- closed and write-only files: refused before anything is sent ---------------------------


def recording_script(seen: list[str]) -> Any:
    """Record whether a request's HEADERS arrived, and how its stream ended."""

    def script(peer: Peer) -> None:
        try:
            event = peer.wait_for(lambda e: isinstance(e, h2.events.RequestReceived), timeout=5)
        except AssertionError:
            return  # the client closed without sending a request: what the test hopes for
        seen.append(type(event).__name__)
        ends = (h2.events.StreamReset, h2.events.StreamEnded)
        seen.append(type(peer.wait_for(lambda e: isinstance(e, ends), timeout=5)).__name__)
        peer.drain_until_closed()

    return script


@pytest.mark.parametrize("kind", ["closed", "write-only"])
def test_a_closed_or_write_only_file_body_is_refused_before_anything_is_sent(
    kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"x" * 1000)
    if kind == "closed":
        body: Any = path.open("rb")
        body.close()
    else:
        body = open(path, "ab", buffering=0)  # noqa: SIM115 - closed below
        body.seek(0)  # 1,000 bytes "left": its length is known, its bytes cannot be read
    seen: list[str] = []
    try:
        with ScriptedServer(recording_script(seen)) as server:
            with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
                conn.connect()  # so the script has a peer to watch (request() would connect lazily)
                with pytest.raises((ValueError, TypeError, HyperError)):  # UnsupportedOperation: a ValueError
                    conn.request("POST", "/", body=body)
    finally:
        body.close()
    assert seen == []  # not even the HEADERS


# -- requests: a 307 for a POST sends the file again from where it started ----------------------


def redirecting_script(got: list[bytes]) -> Any:
    """POST /a: take the first window, answer 307 to /b and stop the upload; POST /b: echo a digest."""

    def script(peer: Peer) -> None:
        first = peer.wait_request().stream_id
        part = bytearray()
        while len(part) < FIRST_WINDOW:
            event = peer.wait_for(
                lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == first, timeout=10
            )
            part.extend(event.data)
            peer.h2.acknowledge_received_data(event.flow_controlled_length, first)
        got.append(bytes(part))
        peer.respond(first, status=307, headers=[(b"location", b"/b"), (b"content-length", b"0")])
        peer.h2.reset_stream(first, 0)  # NO_ERROR: the rest of the body is not wanted (RFC 9113 8.1)
        peer.flush()
        second = peer.wait_request().stream_id
        body = peer.read_body(second, timeout=20)
        got.append(body)
        peer.respond(second, body=hashlib.sha256(body).hexdigest().encode())
        peer.drain_until_closed()

    return script


@pytest.mark.parametrize("start", [0, 777])
def test_requests_follows_a_307_and_sends_the_file_again_from_its_start(
    start: int, tmp_path: Path, fast: None
) -> None:
    data = pattern(300_000, 1)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    got: list[bytes] = []
    with ScriptedServer(redirecting_script(got), settings={S.INITIAL_WINDOW_SIZE: 1 << 20}) as server:
        with requests.Session() as session, path.open("rb") as body:
            session.trust_env = False
            session.mount("http://", HTTP20Adapter(connection_class=HTTP20Connection))
            body.seek(start)
            response = session.post(f"http://127.0.0.1:{server.port}/a", data=body, timeout=20)
            assert body.tell() == len(data)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [307]
    assert response.content == hashlib.sha256(data[start:]).hexdigest().encode()
    assert got[0] == data[start : start + FIRST_WINDOW] and got[1] == data[start:]


# -- real servers: two threads, bursts and batches, no declared length ----------------------------


def connect(info: ServerInfo) -> HTTP20Connection:
    context = hyper.tls.init_context(cert_path=info.ca_file) if info.secure else None
    return HTTP20Connection(info.host, info.port, secure=info.secure, ssl_context=context, timeout=30)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[list[tuple[Path, bytes]]]:
    made = []
    for seed, size in enumerate([3 * 1024 * 1024 + 7, 2 * 1024 * 1024 + 65_537]):
        data = pattern(size, seed + 2)
        path = tmp_path / f"body{seed}.bin"
        path.write_bytes(data)
        made.append((path, data))
    yield made


def test_two_threads_upload_two_files_on_one_connection(
    nghttpd_server: ServerInfo, files: list[tuple[Path, bytes]], fast: None
) -> None:
    """Both reads are sized by the one connection window: the second's bytes wait their turn, none lost."""
    both_started = threading.Barrier(2, timeout=30)
    echoes: dict[int, bytes] = {}
    failures: list[BaseException] = []
    with connect(nghttpd_server) as conn:
        conn.getresponse(conn.request("GET", "/")).read()  # connected, the server's SETTINGS in

        def upload(index: int) -> None:
            path, _ = files[index]
            try:
                with path.open("rb") as body:
                    both_started.wait()
                    response = conn.getresponse(conn.request("POST", "/", body=body))
                    echoes[index] = response.read()
                    assert body.tell() == path.stat().st_size
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failures.append(exc)

        threads = [threading.Thread(target=upload, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert echoes == {index: data for index, (_, data) in enumerate(files)}


@pytest.mark.parametrize("how", ["burst", "batch"])
def test_held_headers_of_a_lower_stream_leave_before_a_file_uploads_data(
    how: str, nghttpd_h2c_server: ServerInfo, files: list[tuple[Path, bytes]], fast: None
) -> None:
    path, data = files[1]
    with connect(nghttpd_h2c_server) as conn, path.open("rb") as body:
        conn.getresponse(conn.request("GET", "/")).read()  # connected: the next two are a burst
        if how == "batch":
            with conn.batch():
                first = conn.request("GET", "/")
                upload = conn.request("POST", "/", body=body)
        else:
            first = conn.request("GET", "/")
            upload = conn.request("POST", "/", body=body)
        assert first < upload
        assert conn.getresponse(upload).read() == data
        assert conn.getresponse(first).status == 200


def test_a_file_sent_without_a_declared_length_is_read_to_its_end(
    nghttpd_server: ServerInfo, files: list[tuple[Path, bytes]], fast: None
) -> None:
    path, data = files[0]
    with connect(nghttpd_server) as conn, path.open("rb") as body:
        stream_id = conn.putrequest("POST", "/")
        conn.endheaders()  # no content-length: the body's end is END_STREAM
        body.seek(5)
        conn.send(body)
        conn.send(b"tail", final=True)
        assert body.tell() == len(data)
        assert conn.getresponse(stream_id).read() == data[5:] + b"tail"


# -- a regular file whose size says nothing: /proc ------------------------------------------------

PROC_FILE = Path("/proc/version")


@pytest.mark.skipif(not PROC_FILE.exists(), reason="no /proc here")
def test_a_proc_file_is_uploaded_whole_not_silently_empty(nghttpd_h2c_server: ServerInfo) -> None:
    expected = PROC_FILE.read_bytes()
    assert expected and PROC_FILE.stat().st_size == 0  # the case: bytes, yet a size of 0
    with connect(nghttpd_h2c_server) as conn, PROC_FILE.open("rb") as body:
        response = conn.getresponse(conn.request("POST", "/", body=body))
        assert response.read() == expected


@pytest.mark.parametrize("mode", ["a+b", "r+b"])
def test_a_raw_file_open_for_appending_or_updating_is_sent_from_its_position(
    mode: str,
    nghttpd_h2c_server: ServerInfo,
    files: list[tuple[Path, bytes]],
    fast: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unbuffered FileIO open for writing too (O_APPEND for ``a+b``): read in place from its position."""
    path, data = files[1]
    reads: list[int] = []
    real: Any = getattr(session_file_upload, "read_into")  # noqa: B009 - not re-exported

    def counted(fd: int, slots: Any, position: int) -> int:
        count: int = real(fd, slots, position)
        reads.append(count)
        return count

    monkeypatch.setattr(session_file_upload, "read_into", counted)
    with open(path, mode, buffering=0) as body, connect(nghttpd_h2c_server) as conn:
        assert isinstance(body, io.FileIO)
        body.seek(3)
        assert conn.getresponse(conn.request("POST", "/", body=body)).read() == data[3:]
        assert body.tell() == len(data)
        body.write(b"!")  # appended (or written) where the upload left the position: the end
    assert path.read_bytes() == data + b"!"
    assert sum(reads) == len(data) - 3  # read in place
