"""Review of upload runs (upload3) on real sockets: what servers receive, byte for byte.

A run of DATA frames leaves as one view of a buffer the connection reuses
(:mod:`hyper.http20.data_frames`). These tests make the sends that carry it
go wrong in every way a socket can (short sends, ``BlockingIOError``, a TLS
socket whose send buffer is tiny so OpenSSL wants to write again mid-run),
upload from two threads on one connection at once, change the frame size
limit mid-upload, and check that the echoing servers (nghttpd, hypercorn)
send back exactly the bytes of every kind of body. They run as they are
under ``HYPER_FAST_PATHS=0`` too (then no run buffer is used: the same bytes
must arrive).
"""

from __future__ import annotations

import gc
import io
import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.events
import h2.settings
import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.exceptions import HyperError
from hyper.http20 import data_frames
from hyper.http20.session import H2Session
from hyper.http20.session_upload import SEND_BATCH
from hyper.http20.upload_frames import FRAME_HEADER
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo

#: A body whose bytes differ from one position to the next (a lost, repeated
#: or misplaced piece shows), not a multiple of any frame or batch size.
BODY = bytes((i * 11 + i // 257) % 256 for i in range(1_300_007))
S = h2.settings.SettingCodes


def connect(info: ServerInfo) -> HTTP20Connection:
    context = hyper.tls.init_context(cert_path=info.ca_file) if info.secure else None
    return HTTP20Connection(info.host, info.port, secure=info.secure, ssl_context=context, timeout=20)


def echo_path(info: ServerInfo) -> str:
    return "/echo" if info.name.startswith("hypercorn") else "/"


class ReadOnly:
    """A body with only ``read()``: no length, no fileno, no seek."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)


def body_kinds(tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """Every kind of body, each a fresh object yielding :data:`BODY`."""
    path = tmp_path / "body.bin"

    def chunks(size: int) -> list[bytes]:
        return [BODY[at : at + size] for at in range(0, len(BODY), size)]

    return {
        "bytes": lambda: BODY,
        "bytearray": lambda: bytearray(BODY),
        "memoryview": lambda: memoryview(BODY),
        "BytesIO": lambda: io.BytesIO(BODY),
        "file": lambda: (path.write_bytes(BODY), path.open("rb"))[1],
        "read-only": lambda: ReadOnly(BODY),
        "generator of bytes": lambda: (chunk for chunk in chunks(70_001)),
        "generator of memoryview": lambda: (memoryview(chunk) for chunk in chunks(333_333)),
        "generator of bytearray": lambda: (bytearray(chunk) for chunk in chunks(9_999)),
        "list": lambda: chunks(262_144 + 1),
    }


KINDS = list(body_kinds(Path("/nonexistent")))


class ChoppySocket:
    """The session's socket, whose sends go wrong in a fixed cycle: short, refused, whole.

    A refused send (``BlockingIOError``) takes nothing; a short one takes a
    prefix. Both are what a non-blocking socket may do at any time.
    """

    CYCLE = (1, 0, 7, 4096, None, 16_393, 0, 100_000, 9, None)

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._turn = 0
        self.refused = self.short = 0

    def send(self, data: Any) -> int:
        limit = self.CYCLE[self._turn % len(self.CYCLE)]
        self._turn += 1
        view = memoryview(data)
        if limit == 0:
            self.refused += 1
            raise BlockingIOError("the test's socket is full")
        if limit is not None and limit < view.nbytes:
            self.short += 1
            view = view[:limit]
        return int(self._sock.send(view))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def session_of(conn: HTTP20Connection) -> H2Session:
    session: H2Session = conn._current_session()
    return session


@pytest.fixture(params=["nghttpd_h2c_server", "hypercorn_h2c_server"])
def h2c_echo(request: pytest.FixtureRequest) -> ServerInfo:
    info: ServerInfo = request.getfixturevalue(request.param)
    return info


@pytest.mark.parametrize("kind", KINDS)
def test_choppy_sends_deliver_every_kind_of_body_byte_exact(
    h2c_echo: ServerInfo, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = body_kinds(tmp_path)[kind]()
    with connect(h2c_echo) as conn:
        # A first exchange: the session exists, the server's SETTINGS are in.
        assert conn.getresponse(conn.request("POST", echo_path(h2c_echo), body=b"x")).read() == b"x"
        session = session_of(conn)
        choppy = ChoppySocket(session._sock)
        monkeypatch.setattr(session, "_sock", choppy)
        response = conn.getresponse(conn.request("POST", echo_path(h2c_echo), body=body))
        assert response.status == 200
        assert response.read() == BODY
        assert choppy.refused and choppy.short  # the run went out in pieces, with waits between
    if hasattr(body, "close"):
        body.close()


def test_tls_sends_that_must_be_retried_mid_run_deliver_the_body(nghttpd_server: ServerInfo) -> None:
    """A tiny socket send buffer: OpenSSL wants to write again in the middle of every run.

    The retry must pass the same bytes (the run's buffer may not be written
    over while OpenSSL holds part of it encrypted): the echo shows it.
    """
    with connect(nghttpd_server) as conn:
        assert conn.getresponse(conn.request("POST", "/", body=b"x")).read() == b"x"
        session = session_of(conn)
        session._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        waits: list[None] = []
        wait = session._wait_writable_locked

        def counting_wait(deadline: float | None) -> None:
            waits.append(None)
            wait(deadline)

        session._wait_writable_locked = counting_wait  # type: ignore[method-assign]
        body = BODY * 3
        response = conn.getresponse(conn.request("PUT", "/", body=io.BytesIO(body)))
        assert response.read() == body
        assert waits  # a 256 KiB run never fits a 4 KiB send buffer at once


@pytest.mark.parametrize("server", ["nghttpd_server", "hypercorn_server"])
def test_two_threads_uploading_on_one_connection_each_get_their_own_bytes(
    server: str, request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    bodies = [BODY, bytes(reversed(BODY))[:999_999], BODY[::3]]
    echoed: list[bytes | None] = [None] * len(bodies)
    errors: list[BaseException] = []
    start = threading.Barrier(len(bodies), timeout=20)
    with connect(info) as conn:
        assert conn.getresponse(conn.request("POST", echo_path(info), body=b"x")).read() == b"x"

        def upload(index: int) -> None:
            try:
                start.wait()
                # A generator: blocks of odd sizes, so runs of the threads interleave.
                blocks = (bodies[index][at : at + 50_021] for at in range(0, len(bodies[index]), 50_021))
                stream_id = conn.request("POST", echo_path(info), body=blocks)
                echoed[index] = conn.getresponse(stream_id).read()
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        threads = [threading.Thread(target=upload, args=(index,)) for index in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert echoed == bodies


def test_the_kept_buffer_is_one_batch_and_goes_with_its_connection(nghttpd_server: ServerInfo) -> None:
    with connect(nghttpd_server) as conn:
        for _ in range(2):
            response = conn.getresponse(conn.request("PUT", "/", body=io.BytesIO(BODY)))
            assert response.read() == BODY
        h2_conn = weakref.ref(session_of(conn)._core._h2)
        buffer = data_frames._RUN_BUFFERS.get(h2_conn())
        if buffer is not None:  # None under HYPER_FAST_PATHS=0: h2 frames every byte itself
            # At most one batch and its frame headers (RFC 9113 section 4.1), whatever the body.
            assert len(buffer) <= SEND_BATCH + -(-SEND_BATCH // 16384) * FRAME_HEADER
        del buffer, response
    del conn
    gc.collect()
    assert h2_conn() is None  # and with it the connection's buffer (a weak key)


def test_frame_size_changes_mid_upload_are_obeyed() -> None:
    """The server raises SETTINGS_MAX_FRAME_SIZE while the upload waits for window, then lowers it.

    RFC 9113 section 6.5.2. The server's h2 fails the connection on any
    frame above its limit in force (from the client's ACK on); the client
    takes the new size after each wait for window. The second change also
    shrinks INITIAL_WINDOW_SIZE, leaving the stream's window below zero
    (section 6.9.2) until the credit that follows.
    """
    got = bytearray()
    frames: list[tuple[int, int]] = []

    def receive_until(peer: Peer, sid: int, size: int | None, phase: int) -> None:
        while size is None or len(got) < size:
            event = peer.wait_for(
                lambda e: (
                    isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded)) and e.stream_id == sid
                ),
                timeout=10,
            )
            if isinstance(event, h2.events.StreamEnded):
                return
            frames.append((phase, len(event.data)))
            got.extend(event.data)

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"hi")
        sid = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(1 << 24)  # the connection's window never limits
        peer.flush()
        # No credit for the stream: the client stalls once its 200,000 bytes are sent.
        receive_until(peer, sid, 200_000, 0)
        peer.h2.update_settings({S.MAX_FRAME_SIZE: 40_000})
        # h2 gives its frame parser a new limit only at the start of a
        # receive_data() call: the client's ACK and its first bigger frame
        # may come in one. Raising it now is safe (the client cannot send
        # bigger frames before it has this SETTINGS); lowering (below) is
        # strict from the ACK on, and the assertions check the rest.
        peer.h2.max_inbound_frame_size = peer.h2.incoming_buffer.max_frame_size = 40_000
        peer.h2.increment_flow_control_window(400_000, stream_id=sid)
        peer.flush()
        receive_until(peer, sid, 600_000, 1)
        peer.h2.update_settings({S.MAX_FRAME_SIZE: 16_384, S.INITIAL_WINDOW_SIZE: 1})
        peer.flush()
        peer.h2.increment_flow_control_window(len(BODY), stream_id=sid)
        peer.flush()
        receive_until(peer, sid, None, 2)
        peer.respond(sid, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 200_000}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"hi"
            response = conn.getresponse(conn.request("POST", "/", body=io.BytesIO(BODY)))
            assert response.read() == b"ok"
    assert bytes(got) == BODY
    assert max(size for phase, size in frames if phase == 0) == 16_384
    assert max(size for phase, size in frames if phase == 1) == 40_000  # the raised limit was used
    assert max(size for phase, size in frames if phase == 2) == 16_384


def test_close_mid_run_over_tls_leaves_the_server_a_clean_prefix(
    server_cert_files: Any, ca_file: str
) -> None:
    """close() from another thread while a run is stuck half-sent over TLS.

    The server stops reading, so the sender waits (holding the state lock)
    with part of a 256 KiB run inside OpenSSL. close() must end that wait
    at once, the upload fail with a HyperError, and whatever reached the
    server be the body's first bytes as well-formed frames.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    context.set_alpn_protocols(["h2"])
    closed = threading.Event()
    received = bytearray()
    body = BODY * 4

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(1 << 30)
        peer.flush()
        assert closed.wait(30)  # reads nothing until the client closed
        while not peer.closed:
            for event in peer.read_events(10):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == sid:
                    received.extend(event.data)

    settings: dict[int, int] = {S.INITIAL_WINDOW_SIZE: 1 << 30}
    with ScriptedServer(script, settings=settings, tls_context=context) as server:
        client_context = hyper.tls.init_context(cert_path=ca_file)
        conn = HTTP20Connection("localhost", server.port, ssl_context=client_context, timeout=30)
        outcome: list[BaseException] = []
        stuck = threading.Event()

        def upload() -> None:
            try:
                conn.request("PUT", "/", body=io.BytesIO(body))
            except BaseException as exc:  # noqa: BLE001 - checked below
                outcome.append(exc)

        conn.connect()
        # A round trip: the server's handshake is over (its SETTINGS sent)
        # before the client can get stuck and close. On a loaded machine the
        # upload could fill the socket and the close come first, and the
        # server's SETTINGS then met the closed TLS connection (SSLEOFError).
        conn.ping()
        session = session_of(conn)
        session._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        wait = session._wait_writable_locked

        def noting_wait(deadline: float | None) -> None:
            stuck.set()
            wait(deadline)

        session._wait_writable_locked = noting_wait  # type: ignore[method-assign]
        thread = threading.Thread(target=upload)
        thread.start()
        try:
            assert stuck.wait(20)
            # The sender is stuck now or will be: the server reads nothing.
            conn.close()
        finally:
            closed.set()
            thread.join(30)
        assert not thread.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], HyperError)
    # The close may reset the connection (our socket had unread bytes), so
    # the server may get little; what it got is the body's start.
    assert len(received) < len(body)
    assert bytes(received) == body[: len(received)]


def refilled_bytearray_blocks() -> Iterator[bytearray]:
    """A generator that yields one bytearray, emptied and refilled for each block (a common idiom).

    Each block is sent before the generator is asked for the next one, so
    reusing the buffer is safe, unless the client still holds views of it:
    then ``clear()`` raises BufferError inside the caller's generator.
    """
    buffer = bytearray()
    for at in range(0, len(BODY), 100_003):
        buffer.clear()
        buffer += BODY[at : at + 100_003]
        yield buffer


def test_a_generator_refilling_one_bytearray_uploads_over_http2(nghttpd_h2c_server: ServerInfo) -> None:
    with connect(nghttpd_h2c_server) as conn:
        response = conn.getresponse(conn.request("POST", "/", body=refilled_bytearray_blocks()))
        assert response.read() == BODY


def test_a_generator_refilling_one_bytearray_uploads_over_http11(
    nginx_http11_plain_server: ServerInfo,
) -> None:
    info = nginx_http11_plain_server
    with hyper.HTTP11Connection(info.host, info.port, secure=False, timeout=20) as conn:
        conn.request("PUT", "/upload", body=refilled_bytearray_blocks())
        response = conn.get_response()
        assert response.status == 200
        assert response.headers.get_first("x-upload-length") == str(len(BODY)).encode()
