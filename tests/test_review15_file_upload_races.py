"""review15: what happens while an in-place file read runs outside the state lock, and where the file is left.

:mod:`hyper.http20.session_file_upload` sizes a read under the state lock,
reads with ``os.preadv`` without it, and frames what it read under the lock
again. Meanwhile another thread may read the socket (and with it a SETTINGS
that lowers INITIAL_WINDOW_SIZE, RFC 9113 section 6.9.2, leaving the
stream's window below zero) or close the connection. Each case is made
certain, not likely: the test's hook runs inside the upload's read (the
session's own ``read_into``), and there makes another thread do the deed
and waits until it is done.

Also: how the file position is left when the server stops the upload early
(a complete 413 then RST_STREAM NO_ERROR, RFC 9113 section 8.1), resets
it, or holds its credit back until the write timeout: just after the last
byte read, which with in-place reads is the last byte the server got.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h2.events
import h2.settings
import pytest

from hyper import HTTP20Connection
from hyper.exceptions import ConnectionClosed, HyperError, StreamResetError, WriteTimeout
from hyper.http20 import session_file_upload
from hyper.http20.core import H2Core
from tests.fast_paths import force_fast_paths_on
from tests.scripted import Peer, ScriptedServer

S = h2.settings.SettingCodes
FIRST_WINDOW = 65_535
RUN = 256 * 1024
STREAM_EVENTS = (h2.events.DataReceived, h2.events.StreamEnded, h2.events.StreamReset)


def pattern(size: int, seed: int) -> bytes:
    return bytes((i * (3 + 2 * seed) + i // 251 + seed) % 256 for i in range(size))


def hook_reads(patch: pytest.MonkeyPatch, on_read: Callable[[int], None]) -> list[tuple[int, int]]:
    """Run ``on_read(n)`` inside the upload's n-th in-place read (1-based), after the bytes are read."""
    calls: list[tuple[int, int]] = []
    real: Callable[..., int] = getattr(session_file_upload, "read_into")  # noqa: B009 - not re-exported

    def hooked(fd: int, slots: Any, position: int) -> int:
        count = real(fd, slots, position)
        calls.append((sum(memoryview(slot).nbytes for slot in slots), count))
        on_read(len(calls))
        return count

    patch.setattr(session_file_upload, "read_into", hooked)
    return calls


def in_another_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a thread of its own and wait for it (it must not need this thread)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if failures:
        raise failures[0]


def read_first(conn: HTTP20Connection, stream_id: int) -> None:
    assert conn.getresponse(stream_id).read() == b"first"


# -- a SETTINGS that lowers the stream's window arrives while the read runs ---------------------


@pytest.mark.parametrize("change", ["window", "frame-size"])
def test_a_settings_change_read_during_the_read_sends_the_run_byte_exact(
    change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SETTINGS read by another thread while the run is read in place.

    ``window``: INITIAL_WINDOW_SIZE lowered, the stream's window goes below
    zero (RFC 9113 section 6.9.2): nothing may be sent until credit lifts
    it. ``frame-size``: MAX_FRAME_SIZE lowered below the frames the run was
    laid out in (section 4.2). The server's h2 checks every DATA frame
    against its own view of the window and of the frame size limit, and
    fails the connection on a byte too many.
    """
    force_fast_paths_on(monkeypatch)
    data = pattern(600_000, 1)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    lower_now = threading.Event()
    got = bytearray()

    def script(peer: Peer) -> None:
        # The scripted peer's settings are its own from the start; h2
        # reads frames up to the size limit it was made with unless told.
        # A first exchange makes sure no DATA came in the handshake's read.
        peer.h2.max_inbound_frame_size = peer.h2.local_settings.max_frame_size
        peer.respond(peer.wait_request().stream_id, body=b"ready")
        first = peer.wait_request().stream_id
        upload = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(4 << 20)  # the connection's window: the stream's rules
        peer.flush()
        assert lower_now.wait(30)
        if change == "window":
            # Lowered from 1 MiB to 1,000 bytes: the upload's stream window
            # (1 MiB less the first run) goes below zero.
            peer.h2.update_settings({S.INITIAL_WINDOW_SIZE: 1000})
        else:
            peer.h2.update_settings({S.MAX_FRAME_SIZE: 16384})  # the run was laid out in 40,000s
        peer.respond(first, body=b"first")  # what the other thread reads, after the SETTINGS
        peer.wait_for(lambda e: isinstance(e, h2.events.SettingsAcknowledged), timeout=10)
        if change == "window":
            peer.h2.increment_flow_control_window(1 << 20, stream_id=upload)
            peer.flush()
        while True:
            event = peer.wait_for(
                lambda e: isinstance(e, STREAM_EVENTS) and e.stream_id == upload,
                timeout=10,
            )
            if isinstance(event, h2.events.DataReceived):
                got.extend(event.data)
                continue
            assert isinstance(event, h2.events.StreamEnded), event
            break
        peer.respond(upload, body=hashlib.sha256(got).hexdigest().encode())
        peer.drain_until_closed()

    settings: dict[int, int] = {S.INITIAL_WINDOW_SIZE: 1 << 20, S.MAX_FRAME_SIZE: 40_000}
    with ScriptedServer(script, settings=settings) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=30) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ready"
            first = conn.request("GET", "/")

            def on_read(n: int) -> None:
                if n == 2:  # the first run after the connection's credit: a full one
                    lower_now.set()
                    in_another_thread(lambda: read_first(conn, first))

            calls = hook_reads(monkeypatch, on_read)
            with path.open("rb") as body:
                upload = conn.request("POST", "/", body=body)
                assert body.tell() == len(data)
            assert conn.getresponse(upload).read() == hashlib.sha256(data).hexdigest().encode()
    assert calls[0] == (FIRST_WINDOW, FIRST_WINDOW) and calls[1] == (RUN, RUN)
    assert bytes(got) == data


# -- a GOAWAY that excludes the upload's stream arrives while the read runs -------------------------


def test_a_goaway_read_during_the_read_sends_none_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9113 section 6.8: a stream above the GOAWAY's last stream id was not processed; no more DATA."""
    force_fast_paths_on(monkeypatch)
    data = pattern(600_000, 5)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    go_away_now = threading.Event()
    got = bytearray()

    def script(peer: Peer) -> None:
        first = peer.wait_request().stream_id
        peer.wait_request()
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        assert go_away_now.wait(30)
        peer.send_goaway(last_stream_id=first)  # the upload's stream (above it) was never processed
        peer.respond(first, body=b"first")
        peer.data_until_closed(got)

    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 1 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=30) as conn:
            first = conn.request("GET", "/")

            def on_read(n: int) -> None:
                if n == 2:
                    go_away_now.set()
                    in_another_thread(lambda: read_first(conn, first))

            calls = hook_reads(monkeypatch, on_read)
            with path.open("rb") as body:
                with pytest.raises(HyperError) as caught:
                    conn.request("POST", "/", body=body)
                assert body.tell() == FIRST_WINDOW + RUN  # after the last byte read
            assert getattr(caught.value, "retryable", False)  # never processed: safe to send again
    assert calls == [(FIRST_WINDOW, FIRST_WINDOW), (RUN, RUN)]
    assert bytes(got) == data[:FIRST_WINDOW]  # the first run, and nothing of the second


# -- the connection closed by another thread while the read runs ---------------------------------


def test_a_connection_closed_during_the_read_fails_the_upload_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_fast_paths_on(monkeypatch)
    data = pattern(RUN * 3, 2)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    got = bytearray()

    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        peer.data_until_closed(got)

    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:

            def on_read(n: int) -> None:
                if n == 2:
                    in_another_thread(conn.close)

            calls = hook_reads(monkeypatch, on_read)
            with path.open("rb") as body:
                with pytest.raises(HyperError) as caught:
                    conn.request("POST", "/", body=body)
                # Every byte read was either sent or dropped with the closed
                # connection; the position is after the last byte read.
                read = sum(count for _, count in calls)
                assert body.tell() == read
    assert isinstance(caught.value, ConnectionClosed)
    assert len(calls) == 2
    assert bytes(got) == data[: len(got)] and len(got) <= read


# -- where the file is left when the server stops the upload --------------------------------------


def stopping_script(how: str, got: bytearray) -> Callable[[Peer], None]:
    """Take the first window (65,535 bytes), give no credit, then stop the upload ``how``."""

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        while len(got) < FIRST_WINDOW:
            event = peer.wait_for(lambda e: isinstance(e, h2.events.DataReceived), timeout=10)
            got.extend(event.data)
        if how == "413":
            # A complete answer, then "send no more" (RFC 9113 section 8.1).
            peer.respond(sid, status=413, body=b"too large")
            peer.h2.reset_stream(sid, 0)  # NO_ERROR
            peer.flush()
        elif how == "reset":
            peer.h2.reset_stream(sid, 0x8)  # CANCEL
            peer.flush()
        # "timeout": no credit, ever; the client's write timeout ends it.
        peer.drain_until_closed(30)

    return script


@pytest.mark.parametrize("how", ["413", "reset", "timeout"])
def test_the_file_position_after_a_stopped_upload_is_after_the_bytes_sent(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_fast_paths_on(monkeypatch)
    data = pattern(RUN * 2 + 5, 3)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    got = bytearray()
    calls = hook_reads(monkeypatch, lambda n: None)
    # The write timeout is the read timeout: short for the case that waits it out.
    timeout = (30.0, 2.0) if how == "timeout" else 30.0
    with ScriptedServer(stopping_script(how, got), settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout) as conn:
            with path.open("rb") as body:
                if how == "413":
                    stream_id = conn.request("POST", "/", body=body)  # stopped quietly
                    response = conn.getresponse(stream_id)
                    assert response.status == 413 and response.read() == b"too large"
                else:
                    expected = StreamResetError if how == "reset" else WriteTimeout
                    with pytest.raises(expected):
                        conn.request("POST", "/", body=body)
                # Only what the window allowed was read, and all of it sent:
                # the file is left just after it.
                assert calls == [(FIRST_WINDOW, FIRST_WINDOW)]
                assert body.tell() == FIRST_WINDOW
    assert bytes(got) == data[:FIRST_WINDOW]


def test_a_file_seeked_by_the_caller_is_read_from_there_with_os_level_offset_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nghttpd_h2c_server: Any
) -> None:
    """The caller's seek() is honoured, and nothing but the file object's position moves."""
    force_fast_paths_on(monkeypatch)
    data = pattern(RUN + 12_345, 4)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    calls = hook_reads(monkeypatch, lambda n: None)
    info = nghttpd_h2c_server
    with open(path, "rb", buffering=0) as body:
        body.seek(1001)
        with HTTP20Connection(info.host, info.port, secure=False, timeout=30) as conn:
            response = conn.getresponse(conn.request("POST", "/", body=body))
            assert response.read() == data[1001:]
        assert body.tell() == len(data) == os.lseek(body.fileno(), 0, os.SEEK_CUR)
    assert calls


# -- two uploads whose reads were both sized by the one connection window ---------------------------


def echo_digests(peer: Peer, uploads: int, gate: threading.Event) -> None:
    """Take ``uploads`` request bodies at once, giving credit back as they arrive; answer with digests.

    No credit before ``gate`` is set, once the first window is in.
    """
    bodies: dict[int, bytearray] = {}
    answered = 0
    # Events are kept in peer.events (read_events adds them there) until the gate opens.
    total = sum(e.flow_controlled_length for e in peer.events if isinstance(e, h2.events.DataReceived))
    while total < FIRST_WINDOW:
        new = peer.read_events(10)
        assert not peer.closed
        total += sum(e.flow_controlled_length for e in new if isinstance(e, h2.events.DataReceived))
    assert gate.wait(30)
    pending, peer.events = peer.events, []
    while answered < uploads:
        for event in pending:
            if isinstance(event, h2.events.RequestReceived):
                bodies[event.stream_id] = bytearray()
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id].extend(event.data)
                peer.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                peer.respond(
                    event.stream_id, body=hashlib.sha256(bodies[event.stream_id]).hexdigest().encode()
                )
                answered += 1
            elif isinstance(event, h2.events.StreamReset):
                raise AssertionError(f"stream {event.stream_id} reset")
        peer.flush()
        assert not peer.closed
        pending = peer.read_events(10)
    peer.drain_until_closed()


def test_two_uploads_that_read_by_the_same_connection_window_both_arrive_byte_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both first runs are read while the connection window (65,535) is whole: only one fits when sent.

    The other's bytes wait for credit and go the ordinary way; no byte is
    lost, repeated or sent beyond the windows (the server's h2 checks).
    """
    force_fast_paths_on(monkeypatch)
    datas = [pattern(400_000, 6), pattern(300_001, 7)]
    paths = []
    for index, data in enumerate(datas):
        paths.append(tmp_path / f"body{index}.bin")
        paths[-1].write_bytes(data)
    framed: list[tuple[int, int | None]] = []  # (bytes read, bytes the core framed in place)
    both_framed = threading.Event()
    real_framed_run = H2Core.send_framed_run

    def framed_run(self: H2Core, stream_id: int, buffer: bytearray, count: int, step: int) -> int | None:
        queued = real_framed_run(self, stream_id, buffer, count, step)
        framed.append((count, queued))
        if len(framed) == 2:
            both_framed.set()  # both first runs met the window: the server may give credit now
        return queued

    monkeypatch.setattr(H2Core, "send_framed_run", framed_run)
    second_read = threading.Event()
    results: dict[int, bytes] = {}
    failures: list[BaseException] = []
    with ScriptedServer(lambda peer: echo_digests(peer, 2, both_framed)) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=30) as conn:
            main = threading.current_thread()

            def upload(index: int) -> None:
                try:
                    with paths[index].open("rb") as body:
                        results[index] = conn.getresponse(conn.request("POST", "/", body=body)).read()
                        assert body.tell() == len(datas[index])
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failures.append(exc)

            other = threading.Thread(target=upload, args=(1,))

            def on_read(n: int) -> None:
                if threading.current_thread() is not main:
                    second_read.set()  # the second upload read its first run
                elif n == 1:
                    other.start()  # while this first read's bytes are not sent yet
                    assert second_read.wait(30)

            calls = hook_reads(monkeypatch, on_read)
            upload(0)
            other.join(60)
            assert not other.is_alive()
    assert not failures, failures
    assert calls[0] == calls[1] == (FIRST_WINDOW, FIRST_WINDOW)  # both sized by the whole window
    assert framed[:2] == [(FIRST_WINDOW, FIRST_WINDOW), (FIRST_WINDOW, 0)]  # the second: the ordinary way
    assert results == {index: hashlib.sha256(data).hexdigest().encode() for index, data in enumerate(datas)}


# -- a complete response before the body, without RST_STREAM: the upload goes on --------------------


def test_a_complete_early_response_without_reset_lets_the_upload_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9113 section 8.1: only RST_STREAM NO_ERROR asks the client to stop; otherwise it sends it all.

    The stream is half-closed (remote) on the client while it uploads the
    rest (section 5.1): the in-place runs must still frame and count right.
    """
    force_fast_paths_on(monkeypatch)
    data = pattern(700_001, 8)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    got = bytearray()
    events: list[str] = []

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        while len(got) < FIRST_WINDOW:
            event = peer.wait_for(lambda e: isinstance(e, h2.events.DataReceived), timeout=10)
            got.extend(event.data)
        peer.respond(sid, status=200, body=b"answered early")  # END_STREAM: half-closed (local) here
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        while True:
            event = peer.wait_for(lambda e: isinstance(e, STREAM_EVENTS) and e.stream_id == sid, timeout=10)
            events.append(type(event).__name__)
            if not isinstance(event, h2.events.DataReceived):
                break
            got.extend(event.data)
        peer.drain_until_closed()

    calls = hook_reads(monkeypatch, lambda n: None)
    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=30) as conn:
            with path.open("rb") as body:
                stream_id = conn.request("POST", "/", body=body)
                assert body.tell() == len(data)
            assert conn.getresponse(stream_id).read() == b"answered early"
    assert len(calls) >= 2  # read in place, also after the response
    assert events[-1] == "StreamEnded" and "StreamReset" not in events
    assert bytes(got) == data
