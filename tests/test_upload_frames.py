"""Uploaded DATA frames: full-sized, in full TLS records, never beyond the peer's windows.

hyper frames a run of upload DATA at the peer's largest frame size, back to
back in one piece that TLS cuts into full records
(:mod:`hyper.http20.upload_frames`, :mod:`hyper.http20.data_frames`). These tests check
the sizes on the wire (frame sizes seen by a scripted server; TLS record sizes
seen by a relay in front of a TLS server), that RFC 9113 section 6.9's windows
still bound every frame when a server credits in odd steps a real server
would not use, and that the bodies arrive byte-exact.
"""

from __future__ import annotations

import io
import socket
import ssl
import threading
from collections.abc import Iterator

import h2.events
import h2.settings
import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.common.body import READ_BLOCK
from hyper.http20.upload_frames import JOINED_BELOW, TLS_RECORD_PLAINTEXT, run_frame_payload
from tests.scripted import Peer, ScriptedServer

#: A body whose bytes differ from one position to the next, so a lost,
#: repeated or reordered piece shows.
BODY = bytes((i * 7 + i // 251) % 256 for i in range(1_000_003))


def connect(server: ScriptedServer) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10)


# -- the sizing rule ------------------------------------------------------------


@pytest.mark.parametrize("max_frame_size", [16384, 16392, 32767, 40000, JOINED_BELOW - 1])
def test_runs_use_the_peers_full_frame_size(max_frame_size: int) -> None:
    # Runs leave as one piece, which TLS cuts into full records itself: the
    # frames keep the largest payload allowed (RFC 9113 section 4.2).
    assert run_frame_payload(max_frame_size) == max_frame_size


@pytest.mark.parametrize("max_frame_size", [JOINED_BELOW, 1 << 20, 2**24 - 1])
def test_frames_sent_as_two_pieces_keep_the_core_framing(max_frame_size: int) -> None:
    assert run_frame_payload(max_frame_size) is None


# -- frame sizes on the wire ------------------------------------------------------


def _upload_and_record_frames(settings: dict[int, int], body: object) -> tuple[bytes, list[int]]:
    """PUT ``body`` to a scripted server announcing ``settings``; the body it got and its frame sizes."""
    frames: list[int] = []
    received = bytearray()

    def script(peer: Peer) -> None:
        # The scripted server announces ``settings`` as h2's initial values,
        # which h2 never applies to its own frame parser: do it here. The
        # client uploads only once the first request is answered, so no
        # frame of the upload was parsed before.
        limit = settings.get(h2.settings.SettingCodes.MAX_FRAME_SIZE, 16384)
        peer.h2.max_inbound_frame_size = peer.h2.incoming_buffer.max_frame_size = limit
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"hello")
        request = peer.wait_request()
        # Open the connection window wide, as real servers do, so the
        # stream's window (from SETTINGS) is what paces the upload.
        peer.h2.increment_flow_control_window(1 << 30)
        peer.flush()
        while True:
            event = peer.wait_for(
                lambda e: (
                    isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded))
                    and e.stream_id == request.stream_id
                ),
                timeout=10,
            )
            if isinstance(event, h2.events.StreamEnded):
                break
            frames.append(len(event.data))
            received.extend(event.data)
            peer.h2.acknowledge_received_data(event.flow_controlled_length, request.stream_id)
            peer.flush()
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script, settings=settings) as server, connect(server) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"hello"
        response = conn.getresponse(conn.request("PUT", "/", body=body))  # type: ignore[arg-type]
        assert response.read() == b"ok"
    return bytes(received), frames


@pytest.mark.parametrize(
    ("max_frame_size", "payload"),
    [(16384, 16384), (40000, 40000)],
)
def test_upload_frames_are_full_size_and_the_body_arrives_intact(max_frame_size: int, payload: int) -> None:
    settings = {
        h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size,
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
    }
    received, frames = _upload_and_record_frames(settings, io.BytesIO(BODY))
    assert received == BODY
    # Every frame but the last of each run (a block read from the file, or
    # what a window allowed) is as big as the server allows; nothing is
    # ever bigger.
    assert max(frames) == payload
    runs = len(BODY) // READ_BLOCK + 3
    assert frames.count(payload) >= len(BODY) // payload - runs


def test_big_frame_limit_keeps_big_frames() -> None:
    settings = {
        h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20,
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 22,
    }
    received, frames = _upload_and_record_frames(settings, BODY)
    assert received == BODY
    assert max(frames) > JOINED_BELOW  # not cut to 16 KiB frames


# -- odd window steps ---------------------------------------------------------------


def test_odd_window_credit_is_never_exceeded_and_the_body_arrives_intact() -> None:
    """The server credits stream and connection windows in odd, alternating steps.

    Server-side h2 fails the connection on any DATA beyond a window (RFC 9113
    section 6.9.1), which would fail the script; it also checks every frame
    against our SETTINGS_MAX_FRAME_SIZE. Credit is given only once the client
    has used all it had, so each step is a stall the client must wait out.
    """
    stream_steps = [1, 7, 16376, 3, 40000, 16385, 9, 100_000]
    conn_steps = [5, 70_000, 2, 16375, 33_000, 1]
    received = bytearray()
    frames: list[int] = []

    def script(peer: Peer) -> None:
        # A first request, answered: the client has our SETTINGS (and its
        # ACK is on its way) before the upload's stream opens.
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"hello")
        request = peer.wait_request()
        sid = request.stream_id
        stream_credit = 10  # INITIAL_WINDOW_SIZE below
        conn_credit = 65535  # the connection's initial window (RFC 9113 section 6.9.2)
        turn = 0
        ended = False
        while not ended:
            # Whatever the client may still send, it sends without more
            # credit; wait for exactly that much (or the end of the body).
            allowed = min(stream_credit, conn_credit)
            while len(received) < allowed and not ended:
                event = peer.wait_for(
                    lambda e: (
                        isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded)) and e.stream_id == sid
                    ),
                    timeout=10,
                )
                if isinstance(event, h2.events.StreamEnded):
                    ended = True
                else:
                    frames.append(len(event.data))
                    received.extend(event.data)
            if ended:
                break
            # Both windows are used up to the smaller one: give the next
            # credit to the one that limits (sometimes both).
            if stream_credit <= conn_credit:
                step = stream_steps[turn % len(stream_steps)]
                peer.h2.increment_flow_control_window(step, stream_id=sid)
                stream_credit += step
            if conn_credit <= stream_credit or turn % 3 == 0:
                step = conn_steps[turn % len(conn_steps)]
                peer.h2.increment_flow_control_window(step)
                conn_credit += step
            peer.flush()
            turn += 1
        peer.respond(sid, body=b"ok")
        peer.drain_until_closed()

    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10}
    body = BODY[:300_001]
    with ScriptedServer(script, settings=settings) as server, connect(server) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"hello"
        response = conn.getresponse(conn.request("POST", "/", body=io.BytesIO(body)))
        assert response.read() == b"ok"
    assert bytes(received) == body
    assert frames[-1] == 0  # END_STREAM on an empty DATA frame, after the body
    assert min(frames[:-1]) >= 1
    assert max(frames) <= 16384  # within the default SETTINGS_MAX_FRAME_SIZE
    assert 1 in frames  # a 1-byte credit went out as a 1-byte frame, no more


# -- TLS records on the wire ------------------------------------------------------------


class RecordCountingRelay:
    """A TCP relay in front of a server that notes the client's TLS record sizes.

    Each TLS record starts with a 5-byte header: content type, version, and
    the length of what follows (RFC 8446 section 5.1). Only the client's
    direction is parsed; both are passed on unchanged.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10)
        self.port: int = self._listener.getsockname()[1]
        #: (content type, length) of every record the client sent.
        self.records: list[tuple[int, int]] = []
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> RecordCountingRelay:
        accepter = threading.Thread(target=self._accept, daemon=True)
        accepter.start()
        self._threads.append(accepter)
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() ends a recv() blocked in a pump thread (close() would not).
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already disconnected
        for thread in self._threads:
            thread.join(10)
        for sock in self._socks:
            sock.close()
        self._listener.close()

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self._upstream_port), timeout=10)
        client.settimeout(10)
        self._socks += [client, upstream]
        back = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
        back.start()
        self._threads.append(back)
        self._pump(client, upstream, True)

    def _pump(self, source: socket.socket, sink: socket.socket, parse: bool) -> None:
        pending = bytearray()
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
                if parse:
                    pending += data
                    while len(pending) >= 5:
                        length = int.from_bytes(pending[3:5], "big")
                        if len(pending) < 5 + length:
                            break
                        self.records.append((pending[0], length))
                        del pending[: 5 + length]
        except OSError:
            pass  # the other side closed: the relay's job is done
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


@pytest.fixture
def tls_upload_server(server_cert_files: object) -> Iterator[tuple[ScriptedServer, list[bytes]]]:
    """A scripted TLS server that reads one upload to its end and answers "ok"."""
    bodies: list[bytes] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)  # type: ignore[attr-defined]
    context.set_alpn_protocols(["h2"])

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.increment_flow_control_window(1 << 30)
        peer.flush()
        bodies.append(peer.read_body(request.stream_id, timeout=20))
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
    with ScriptedServer(script, settings=settings, tls_context=context) as server:
        yield server, bodies


def test_upload_over_tls_sends_full_records_not_a_small_one_per_frame(
    tls_upload_server: tuple[ScriptedServer, list[bytes]], ca_file: str
) -> None:
    server, bodies = tls_upload_server
    with RecordCountingRelay(server.port) as relay:
        context = hyper.tls.init_context(cert_path=ca_file)
        with HTTP20Connection("localhost", relay.port, ssl_context=context, timeout=10) as conn:
            response = conn.getresponse(conn.request("PUT", "/", body=io.BytesIO(BODY)))
            assert response.read() == b"ok"
    assert bodies == [BODY]
    application = [length for kind, length in relay.records if kind == 23]  # application_data
    # A full record is 16,384 bytes of plaintext plus what TLS adds (TLS 1.3:
    # content type and a 16-byte tag); the body needs ~62 of them.
    full = [length for length in application if length > TLS_RECORD_PLAINTEXT]
    small = [length for length in application if length < 1024]
    assert len(full) >= len(BODY) // TLS_RECORD_PLAINTEXT - 2
    # Were each 16,393-byte frame sent on its own, it would add a tiny record
    # for its last 9 bytes (~61 of them); what is left is the preface,
    # SETTINGS, HEADERS, acknowledgements and the remainder of each run.
    assert len(small) < 15
