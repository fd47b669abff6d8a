"""File bodies read straight into their DATA frames (``os.preadv``), and every body that is not.

:mod:`hyper.common.file_body` decides which file bodies an upload reads in
place (:mod:`hyper.http20.session_file_upload`): an exact ``io.FileIO`` or
``io.BufferedReader`` with nothing read ahead, on a regular file, open for
reading, seekable, with ``os.preadv`` present and the fast paths on.
These tests check the bytes the servers echo (nghttpd, hypercorn; nginx
does not echo uploads) for sizes around every boundary (frame, run,
window), the file position afterwards, a file opened at an offset, short
reads, a file that grows or shrinks, a window that shrank between the read
and the send, and that every other body (text, pipe, peeked buffer,
``os.preadv`` missing, ``HYPER_FAST_PATHS=0``) takes the ``read()`` path and
sends the same bytes.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.events
import h2.settings
import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.common import file_body
from hyper.common.file_body import direct_read_start
from hyper.exceptions import BodyLengthError
from hyper.http20 import h2_internals, session_file_upload
from hyper.http20.core import H2Core
from hyper.http20.session_upload import SEND_BATCH
from tests.fast_paths import force_fast_paths_on
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo
from tests.test_upload_file_resized import ORIGINAL, upload_recorded

S = h2.settings.SettingCodes
FRAME = 16384

#: Sizes at every boundary: empty, one byte, a frame +-1, a run +-1, many runs.
SIZES = [0, 1, FRAME - 1, FRAME, FRAME + 1, SEND_BATCH - 1, SEND_BATCH, SEND_BATCH + 1, 3 * 1024 * 1024 + 7]


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ from one position to the next (a lost, repeated or misplaced piece shows)."""
    return bytes((i * (11 + 2 * seed) + i // 251 + seed) % 256 for i in range(size))


class ReadSpy:
    """Counts the in-place reads of uploads (``read_into`` as the session calls it)."""

    def __init__(self, patch: pytest.MonkeyPatch, wrap: Callable[..., int] | None = None) -> None:
        self.calls: list[tuple[int, int]] = []  # (bytes asked, bytes read)
        real = file_body.read_into
        inner = wrap or real

        def spy(fd: int, slots: Any, position: int) -> int:
            count = inner(fd, slots, position)
            self.calls.append((sum(memoryview(slot).nbytes for slot in slots), count))
            return count

        patch.setattr(session_file_upload, "read_into", spy)


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast paths on for connections made in the test, whatever ``HYPER_FAST_PATHS`` says."""
    force_fast_paths_on(monkeypatch)


def turn_fast_paths_off(patch: pytest.MonkeyPatch) -> None:
    """As ``HYPER_FAST_PATHS=0`` does, for connections made from now on."""
    patch.setenv("HYPER_FAST_PATHS", "0")
    patch.setattr(h2_internals, "_enabled", False)
    patch.setattr(h2_internals, "_problem", "turned off by the test")


def connect(info: ServerInfo) -> HTTP20Connection:
    context = hyper.tls.init_context(cert_path=info.ca_file) if info.secure else None
    return HTTP20Connection(info.host, info.port, secure=info.secure, ssl_context=context, timeout=30)


def echo_path(info: ServerInfo) -> str:
    return "/echo" if info.name.startswith("hypercorn") else "/"


def echoed(info: ServerInfo, body: Any) -> bytes:
    with connect(info) as conn:
        response = conn.getresponse(conn.request("POST", echo_path(info), body=body))
        assert response.status == 200
        data: bytes = response.read()
        return data


@pytest.fixture(params=["nghttpd_server", "nghttpd_h2c_server", "hypercorn_h2c_server"])
def echo_server(request: pytest.FixtureRequest) -> ServerInfo:
    info: ServerInfo = request.getfixturevalue(request.param)
    return info


# -- which bodies are read in place ------------------------------------------------


def test_only_plain_binary_regular_files_are_read_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(pattern(100_000))
    with path.open("rb") as buffered, open(path, "rb", buffering=0) as raw:
        assert direct_read_start(buffered) == (buffered.fileno(), 0)
        raw.seek(777)
        assert direct_read_start(raw) == (raw.fileno(), 777)
    with path.open("r", encoding="latin-1") as text:
        assert direct_read_start(text) is None  # characters, not bytes
    with path.open("r+b") as both:
        assert direct_read_start(both) is None  # a BufferedRandom may hold unwritten bytes
    with path.open("ab") as writing:
        assert direct_read_start(writing) is None  # not open for reading
    closed = path.open("rb")
    closed.close()
    assert direct_read_start(closed) is None
    with path.open("rb") as peeked:
        assert peeked.peek(10)  # read ahead: those bytes are the object's, read() hands them out first
        assert direct_read_start(peeked) is None
    read_end, write_end = os.pipe()
    with open(read_end, "rb") as pipe, open(write_end, "wb"):
        assert direct_read_start(pipe) is None  # no positions on a pipe
    with io.BytesIO(b"abc") as memory:
        assert direct_read_start(memory) is None

    class Subclass(io.BufferedReader):
        pass  # may override read(): its read() is what the caller means

    with Subclass(io.FileIO(path, "rb")) as subclass:
        assert direct_read_start(subclass) is None

    class Transforming(io.FileIO):
        pass  # its readinto() may change the bytes: the descriptor's are not read()'s

    with io.BufferedReader(Transforming(path, "rb")) as over_other_raw:
        assert direct_read_start(over_other_raw) is None
    with path.open("rb") as buffered:
        monkeypatch.delattr(os, "preadv")  # Windows, or a build without it
        assert direct_read_start(buffered) is None


# -- byte-exact echoes -------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_files_of_every_boundary_size_are_echoed_byte_exact(
    echo_server: ServerInfo, size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    data = pattern(size, size % 7)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    spy = ReadSpy(monkeypatch)
    with path.open("rb") as body:
        assert echoed(echo_server, body) == data
        assert body.tell() == size  # where read() to the end would have left it
        assert body.read() == b""
    # Read in place (an empty file's request ends with its HEADERS: nothing to read).
    assert bool(spy.calls) is bool(size)
    assert sum(count for _, count in spy.calls) == size


def test_a_file_opened_at_an_offset_sends_the_rest(
    nghttpd_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    data = pattern(700_001, 3)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    spy = ReadSpy(monkeypatch)
    with open(path, "rb", buffering=0) as body:  # an unbuffered FileIO too
        body.seek(123_457)
        assert echoed(nghttpd_server, body) == data[123_457:]
        assert body.tell() == len(data)
    assert sum(count for _, count in spy.calls) == len(data) - 123_457


def test_the_same_file_uploaded_twice_after_a_seek_back(
    nghttpd_h2c_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    """What a retrying caller does: seek back, upload again; the position is the file's each time."""
    data = pattern(SEND_BATCH * 2 + 5, 1)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    ReadSpy(monkeypatch)
    with path.open("rb") as body, connect(nghttpd_h2c_server) as conn:
        for _ in range(2):
            body.seek(0)
            assert conn.getresponse(conn.request("PUT", "/", body=body)).read() == data
            assert body.tell() == len(data)


def tiny_window_echo(peer: Peer) -> None:
    """Answer a first request, then echo one request body, giving credit back as each DATA frame arrives.

    The first exchange makes sure the client has our SETTINGS (a window
    below the default takes effect only once acknowledged, RFC 9113
    section 6.5.3: before it has them, a client may send by the default
    window) before the upload starts.
    """
    # The scripted peer starts with its settings in force; h2 reads frames
    # up to the size limit it had when made (16,384) unless told.
    peer.h2.max_inbound_frame_size = peer.h2.local_settings.max_frame_size
    peer.respond(peer.wait_request().stream_id, body=b"ready")
    stream_id = peer.wait_request().stream_id
    body = peer.read_body(stream_id, timeout=60)
    peer.respond(stream_id, body=body)
    peer.drain_until_closed()


@pytest.mark.parametrize(
    ("size", "window", "frame"),
    [
        (0, 1000, FRAME),
        (1, 1, FRAME),
        (FRAME + 1, 1000, FRAME),
        (SEND_BATCH + 1, 4097, FRAME),
        (SEND_BATCH - 1, 70_001, 20_000),
        (3 * 1024 * 1024 + 7, 100_003, 16_385),
    ],
)
def test_tiny_windows_and_odd_frame_sizes(
    size: int, window: int, frame: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    data = pattern(size, 5)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    spy = ReadSpy(monkeypatch)
    settings = {S.INITIAL_WINDOW_SIZE: window, S.MAX_FRAME_SIZE: frame}
    with ScriptedServer(tiny_window_echo, settings=settings) as server:
        with (
            HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=30) as conn,
            path.open("rb") as body,
        ):
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ready"
            assert conn.getresponse(conn.request("POST", "/", body=body)).read() == data
            assert body.tell() == size
    # Never a read beyond what the window allowed when it was sized (plus
    # the one byte that looks past the declared length, on the last read).
    assert all(asked <= window + 1 for asked, _ in spy.calls)
    assert sum(count for _, count in spy.calls) == size


# -- bodies that keep the read() path ------------------------------------------------


def test_text_files_pipes_and_peeked_buffers_keep_the_read_path(
    nghttpd_h2c_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    spy = ReadSpy(monkeypatch)
    text = "".join(chr(32 + i % 95) for i in range(300_001))
    path = tmp_path / "body.txt"
    path.write_text(text, encoding="ascii")
    with path.open("r", encoding="ascii") as body:
        assert echoed(nghttpd_h2c_server, body) == text.encode()
    with path.open("rb") as body:
        assert body.peek(1)
        assert echoed(nghttpd_h2c_server, body) == text.encode()
        assert body.tell() == len(text)
    data = pattern(SEND_BATCH + 3, 2)
    read_end, write_end = os.pipe()

    def write() -> None:
        with open(write_end, "wb") as writer:
            writer.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    with open(read_end, "rb") as pipe:
        assert echoed(nghttpd_h2c_server, pipe) == data
    writer.join(30)
    assert not writer.is_alive()
    assert spy.calls == []


def test_without_preadv_files_keep_the_read_path(
    nghttpd_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    spy = ReadSpy(monkeypatch)
    monkeypatch.delattr(os, "preadv")  # as on Windows
    data = pattern(SEND_BATCH * 3 + 11, 4)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    with path.open("rb") as body:
        body.seek(10)
        assert echoed(nghttpd_server, body) == data[10:]
        assert body.tell() == len(data)
    assert spy.calls == []


def test_with_the_fast_paths_off_files_keep_the_read_path(
    nghttpd_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turn_fast_paths_off(monkeypatch)
    spy = ReadSpy(monkeypatch)
    data = pattern(SEND_BATCH * 2 + 1, 6)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    with path.open("rb") as body:
        assert echoed(nghttpd_server, body) == data
        assert body.tell() == len(data)
    assert spy.calls == []


# -- short reads, resized files ----------------------------------------------------


def short_preadv(fd: int, slots: Any, position: int) -> int:
    """A kernel that returns about half of what was asked (a legal short read), cut mid-slot."""
    wanted = sum(memoryview(slot).nbytes for slot in slots)
    budget = max(1, wanted // 2 + 7)
    cut = []
    for slot in slots:
        view = memoryview(slot)
        if budget <= 0:
            break
        cut.append(view[:budget])
        budget -= min(budget, view.nbytes)
    count: int = os.preadv(fd, cut, position)
    return count


def test_short_reads_send_exactly_the_bytes_read(
    nghttpd_h2c_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    data = pattern(SEND_BATCH * 2 + 12_345, 7)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    spy = ReadSpy(monkeypatch, short_preadv)
    with path.open("rb") as body:
        assert echoed(nghttpd_h2c_server, body) == data
        assert body.tell() == len(data)
    assert any(count < asked for asked, count in spy.calls)  # short reads happened
    assert sum(count for _, count in spy.calls) == len(data)


def resize_on_first_read(patch: pytest.MonkeyPatch, resize: Callable[[], None]) -> ReadSpy:
    done: list[bool] = []

    def resizing(fd: int, slots: Any, position: int) -> int:
        if not done:
            done.append(True)
            resize()  # between the upload's fstat and its read
        count: int = os.preadv(fd, slots, position)
        return count

    return ReadSpy(patch, resizing)


def test_a_file_truncated_before_the_read_sends_what_was_read_then_resets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    path = tmp_path / "shrinking.bin"
    path.write_bytes(ORIGINAL)
    # Beyond the connection's first window (65,535 bytes): the upload waits
    # for the server's credit (the recording script gives it once the
    # request is in), and the read after that one comes up short.
    kept = 200_003
    spy = resize_on_first_read(monkeypatch, lambda: os.truncate(path, kept))
    with path.open("rb") as body:
        got, events, error = upload_recorded(body)
        assert body.tell() == kept
    assert [count for _, count in spy.calls] == [
        65_535,
        kept - 65_535,
        0,
    ]  # short at the new end, then the end
    assert spy.calls[1][0] > kept - 65_535
    assert isinstance(error, BodyLengthError)
    assert (error.expected, error.actual) == (len(ORIGINAL), kept)
    assert got == ORIGINAL[:kept]  # every byte read was sent, no stale byte of the reused buffer
    assert events[-1] == "StreamReset"
    assert "StreamEnded" not in events


def test_a_file_that_grew_refuses_the_run_that_reaches_the_declared_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(ORIGINAL)

    def grow() -> None:
        with path.open("ab") as writer:
            writer.write(b"appended later")

    spy = resize_on_first_read(monkeypatch, grow)
    with path.open("rb") as body:
        got, events, error = upload_recorded(body)
    assert spy.calls  # read in place
    assert isinstance(error, BodyLengthError)
    assert (error.expected, error.actual) == (len(ORIGINAL), len(ORIGINAL) + len(b"appended later"))
    # The runs before went out; the one that found a byte past the declared
    # length (it asked for one more than it may send), not a byte of it.
    *before, (asked, count) = spy.calls
    assert count == asked
    assert got == ORIGINAL[: sum(count for _, count in before)] and len(got) < len(ORIGINAL)
    assert events[-1] == "StreamReset"
    assert "StreamEnded" not in events


def test_a_declared_length_shorter_than_the_file_is_never_exceeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    """The caller's own content-length below the file's size: no byte beyond it is queued."""
    path = tmp_path / "body.bin"
    path.write_bytes(ORIGINAL)
    got = bytearray()
    events: list[str] = []

    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        ends = (h2.events.DataReceived, h2.events.StreamEnded, h2.events.StreamReset)
        while True:
            event = peer.wait_for(lambda e: isinstance(e, ends), timeout=10)
            events.append(type(event).__name__)
            if not isinstance(event, h2.events.DataReceived):
                break
            got.extend(event.data)
        peer.drain_until_closed()

    spy = ReadSpy(monkeypatch)
    declared = SEND_BATCH + 10
    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        with (
            HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn,
            path.open("rb") as body,
        ):
            with pytest.raises(BodyLengthError) as caught:
                conn.request("POST", "/", body=body, headers={"content-length": str(declared)})
    assert spy.calls
    assert caught.value.expected == declared and caught.value.actual > declared
    assert len(got) <= declared and bytes(got) == ORIGINAL[: len(got)]
    assert events[-1] == "StreamReset"


# -- a window that shrank between the read and the send -----------------------------


@pytest.mark.parametrize("how", ["part", "none"])
def test_bytes_read_that_no_longer_fit_go_the_ordinary_way(
    nghttpd_h2c_server: ServerInfo, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    """The core frames only part of a run (a window shrank meanwhile), or none (a state h2 keeps).

    The rest of the bytes read must follow, in order, through the core's
    ordinary path, and the next runs in place again.
    """
    real = H2Core.send_framed_run
    turns: list[int] = []

    def shrunk(self: H2Core, stream_id: int, buffer: bytearray, count: int, step: int) -> int | None:
        turns.append(count)
        if len(turns) % 2 == 0:
            return real(self, stream_id, buffer, count, step)  # every other run whole
        if how == "none":
            return None
        return real(self, stream_id, buffer, count // 3 + 1, step)

    monkeypatch.setattr(H2Core, "send_framed_run", shrunk)
    ReadSpy(monkeypatch)
    data = pattern(SEND_BATCH * 5 + 999, 8)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    with path.open("rb") as body:
        assert echoed(nghttpd_h2c_server, body) == data
    assert len(turns) >= 4


# -- the core's half, against h2's own path --------------------------------------------


def framed_wires(window: int) -> Iterator[Any]:
    from tests.test_review9_upload_runs import POST, Wire

    for fast_paths in (True, False):
        wire = Wire(fast_paths, {S.INITIAL_WINDOW_SIZE: window, S.MAX_FRAME_SIZE: FRAME})
        yield wire, wire.core.open_stream(POST, False)


@pytest.mark.parametrize("window", [0, 1, 5000, FRAME, FRAME + 1, 40_000, 65_535])
def test_a_framed_run_queues_what_the_windows_allow_as_h2_would(window: int) -> None:
    from hyper.http20.data_frames import framed_size, payload_slots

    data = pattern(150_000, 9)
    results = []
    for wire, stream_id in framed_wires(window):
        buffer = bytearray(b"\xee" * framed_size(len(data), FRAME))  # stale bytes that must never go out
        at = 0
        for slot in payload_slots(buffer, len(data), FRAME):
            slot[:] = data[at : at + slot.nbytes]
            at += slot.nbytes
        queued = wire.core.send_framed_run(stream_id, buffer, len(data), FRAME)
        if queued is None:  # h2's public API: the caller sends the bytes through send_body
            queued = wire.core.send_body(stream_id, memoryview(data), FRAME)
        wire.exchange()
        results.append((queued, wire.core.send_window(stream_id), wire.frames))
    (fast_queued, fast_window, fast_frames), (public_queued, public_window, public_frames) = results
    assert fast_queued == public_queued == min(window, 65_535, len(data))
    assert fast_window == public_window
    assert fast_frames == public_frames  # the same DATA frames, byte for byte
    assert b"".join(payload for _, payload in fast_frames if payload) == data[:fast_queued]
