"""Review of the "bulk2" merge: DATA runs held as views of the receive buffer.

The merge keeps the payloads of runs of plain DATA frames as views of the
session's receive buffer until the application takes them
(:mod:`hyper.http20.data_runs`, :meth:`CoreBodies.detach_views`), and the
session fills the buffer after bytes still held, copying the views out
before it reads over them (:mod:`hyper.http20.session_wire`). A mistake
there means silently wrong bytes, so these tests check bytes exactly, with
patterned bodies (every 8-byte block says which stream and offset it is),
under framings a real server rarely produces:

* a scripted server sends several responses interleaved frame by frame:
  frames of 1 byte up to 16 KiB, padded ones, empty ones, bodies ended by
  END_STREAM on the last frame, by an empty DATA frame or by trailers, one
  response reset mid-body and one gzip-encoded; its bytes go out in
  chunks of 1 byte to 40 KB, so frames and runs are split across reads;
* the client reads them in odd sizes, with ``readinto``, whole, partly then
  closed, or not at all until the end (its data held while the buffer wraps
  many times), through a shrunken receive buffer, from one thread or one
  thread per response, in cleartext and over TLS, with the fast path, h2's
  path and the public-API mode;
* afterwards the connection window is checked against h2's and the
  server's bookkeeping: every byte received was credited back exactly once
  (RFC 9113 section 6.9);
* a body sent as 1-byte DATA frames must not cost a view object (184
  bytes) per byte while it waits unread;
* a real server's (nginx, nghttpd) download read through ``readinto``
  while another response's data is held across the buffer's wraps.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import h2.events
import hyperframe.frame
import pytest

import hyper
import hyper.tls
from hyper import HTTP20Connection
from hyper.exceptions import HyperError, StreamResetError
from hyper.http20 import session_wire
from hyper.http20.data_runs import DataRun
from tests import held_views
from tests.asgi_app import deterministic_bytes
from tests.fast_paths import force_fast_paths_on
from tests.held_views import shrink_receive_buffer, tls_connection
from tests.hostile_frames import padded_data
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo, docroot_content

#: Largest frame payload the client accepts (its SETTINGS_MAX_FRAME_SIZE).
MAX_FRAME = 16384

#: The three frame paths (a fixture shared with tests/test_received_views.py).
frame_path = held_views.frame_path


def patterned(stream_id: int, size: int) -> bytes:
    """``size`` bytes in which each 8-byte block holds the stream id and its own offset."""
    blocks = (size + 7) // 8
    return b"".join(struct.pack(">II", stream_id, index * 8) for index in range(blocks))[:size]


@pytest.fixture(params=[(8 * 1024, 3 * 1024), (48 * 1024, 20 * 1024)], ids=["buf8k", "buf48k"])
def small_buffer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A receive buffer small enough to wrap many times while views are held.

    Returns a list that gets, per copy-out (``detach_views``), how many views
    of the buffer were still held.
    """
    size, min_space = request.param
    return shrink_receive_buffer(monkeypatch, size, min_space)


# -- the scripted server's responses ---------------------------------------------------


@dataclass
class Plan:
    """One response: how the server frames it and how the client reads it."""

    kind: str  # "plain", "empty_end", "trailers", "reset", "gzip"
    read: str  # "chunks", "readinto", "whole", "partial_close", "ignore"
    body: bytes = b""
    wire_body: bytes = b""  # what goes in DATA frames (gzip-encoded for "gzip")
    sent_before_reset: int = 0  # "reset": body bytes sent before RST_STREAM
    frames: list[bytes] = field(default_factory=list)


KINDS = ["plain", "empty_end", "trailers", "reset", "gzip", "plain"]
READS = ["chunks", "readinto", "whole", "partial_close", "ignore", "chunks"]


def make_plans(rng: random.Random) -> list[Plan]:
    reads = READS[:]
    rng.shuffle(reads)
    plans = []
    for kind, read in zip(KINDS, reads, strict=True):
        size = rng.choice([0, 1, 7, 1000, 40_000, 150_000, 300_000])
        if kind in ("reset", "gzip") and size < 1000:
            size = 70_000
        plans.append(Plan(kind=kind, read=read))
        plans[-1].body = b""  # filled once the stream id is known
        plans[-1].sent_before_reset = size  # the size, until then
    return plans


data_frame = padded_data


def body_frames(rng: random.Random, stream_id: int, data: bytes) -> list[tuple[bytes, int]]:
    """``data`` cut into DATA frames of odd sizes, some padded, one empty: (frame, flow-controlled size)."""
    frames = []
    view = memoryview(data)
    empty_sent = False
    while view:
        size = min(len(view), rng.choice([1, 3, 100, 1500, 4096, 9000, MAX_FRAME, MAX_FRAME]))
        pad = None
        if rng.random() < 0.2:
            pad = rng.choice([0, 1, 255])
            size = min(size, MAX_FRAME - 1 - pad)
        payload = view[:size].tobytes()
        view = view[size:]
        frames.append((data_frame(stream_id, payload, pad, False), size + (0 if pad is None else pad + 1)))
        if not empty_sent and rng.random() < 0.05:
            empty_sent = True
            frames.append((data_frame(stream_id, b"", None, False), 0))
    return frames


@dataclass
class ServerState:
    """What the server sent, and its view of the connection window at the end."""

    flow_controlled_sent: int = 0
    window_seen: int | None = None
    window_known: threading.Event = field(default_factory=threading.Event)


def serve(peer: Peer, plans: list[Plan], seed: int, state: ServerState) -> None:
    rng = random.Random(seed)
    ids = [peer.wait_request(10).stream_id for _ in plans]
    queues: dict[int, list[tuple[bytes, int]]] = {}
    wire = bytearray()
    for stream_id, plan in zip(ids, plans, strict=True):
        size = plan.sent_before_reset
        plan.body = patterned(stream_id, size)
        headers = [(b":status", b"200")]
        plan.wire_body = plan.body
        if plan.kind == "gzip":
            plan.wire_body = gzip.compress(plan.body, 6)
            headers.append((b"content-encoding", b"gzip"))
        peer.h2.send_headers(stream_id, headers)
        wire += peer.h2.data_to_send()
        body = plan.wire_body
        if plan.kind == "reset":
            plan.sent_before_reset = rng.randrange(1, len(body))
            body = body[: plan.sent_before_reset]
        queues[stream_id] = body_frames(rng, stream_id, body)
    plan_of = dict(zip(ids, plans, strict=True))
    # Interleave the streams' frames at random; each stream's end follows its last frame.
    while queues:
        stream_id = rng.choice(sorted(queues))
        frames = queues[stream_id]
        plan = plan_of[stream_id]
        if frames:
            frame, size = frames.pop(0)
            if not frames and plan.kind in ("plain", "gzip") and frame[3] == 0 and not frame[4] & 0x8:
                # END_STREAM on the last (unpadded) frame itself.
                frame = frame[:4] + bytes([frame[4] | 0x1]) + frame[5:]
                del queues[stream_id]
            wire += frame
            state.flow_controlled_sent += size
            continue
        del queues[stream_id]
        if plan.kind == "trailers":
            peer.h2.send_headers(stream_id, [(b"x-checksum", b"ok")], end_stream=True)
            wire += peer.h2.data_to_send()
        elif plan.kind == "reset":
            wire += bytes(hyperframe.frame.RstStreamFrame(stream_id, error_code=2).serialize())
        else:
            wire += data_frame(stream_id, b"", None, True)
    # Out in chunks of odd sizes: frames and runs split across the client's reads.
    view = memoryview(wire)
    while view:
        size = rng.choice([1, 9, 100, 1000, 5000, 16393, 40_000])
        peer.send_raw(view[:size].tobytes())
        view = view[size:]
    # The client pings twice once done: after the second, every WINDOW_UPDATE
    # it sent for these bytes has been read here (TCP keeps their order).
    for _ in range(2):
        peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived), 20)
    increments = sum(
        e.delta for e in peer.events if isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0
    )
    state.window_seen = 65535 + increments - state.flow_controlled_sent
    state.window_known.set()
    peer.drain_until_closed(20)


# -- the client's reading ----------------------------------------------------------------


@dataclass
class Outcome:
    got: bytearray = field(default_factory=bytearray)
    error: BaseException | None = None
    finished: bool = False
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)


def read_step(response: Any, plan: Plan, outcome: Outcome, rng: random.Random) -> bool:
    """One read of ``response`` as ``plan`` says; False once done with it."""
    try:
        if plan.read == "whole":
            outcome.got += response.read()
            outcome.finished = True
        elif plan.read == "readinto":
            buffer = bytearray(rng.choice([1, 5, 1000, 20_000]))
            count = response.readinto(buffer)
            outcome.got += buffer[:count]
            outcome.finished = count == 0
        else:
            chunk = response.read(rng.choice([1, 7, 100, 4099, 70_001]))
            outcome.got += chunk
            outcome.finished = not chunk
            if plan.read == "partial_close" and len(outcome.got) >= 5000:
                response.close()
                return False
    except HyperError as exc:
        outcome.error = exc
        return False
    if outcome.finished:
        outcome.trailers = [(bytes(k), bytes(v)) for k, v in response.trailers.items()]
    return not outcome.finished


def check_outcome(plan: Plan, outcome: Outcome) -> None:
    expected = plan.body
    got = bytes(outcome.got)
    assert got == expected[: len(got)], f"{plan}: wrong bytes at {first_difference(got, expected)}"
    if plan.kind == "reset":
        if plan.read not in ("partial_close", "ignore"):
            assert isinstance(outcome.error, StreamResetError), outcome.error
        return
    assert outcome.error is None, outcome.error
    if plan.read in ("partial_close", "ignore"):
        return
    assert outcome.finished and got == expected
    if plan.kind == "trailers":
        assert (b"x-checksum", b"ok") in outcome.trailers


def first_difference(got: bytes, expected: bytes) -> int:
    return next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), len(got))


def tls_server_context(server_cert_files: Any) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    context.set_alpn_protocols(["h2"])
    return context


@pytest.fixture(params=["cleartext", "tls"])
def transport(request: pytest.FixtureRequest) -> Iterator[tuple[ssl.SSLContext | None, dict[str, Any]]]:
    """Server TLS context and client connection options."""
    if request.param == "cleartext":
        yield None, {"secure": False}
        return
    server_files = request.getfixturevalue("server_cert_files")
    ca_file = request.getfixturevalue("ca_file")
    client = hyper.tls.init_context(cert_path=ca_file)
    yield tls_server_context(server_files), {"ssl_context": client, "secure": True}


def run_interleaved(seed: int, tls: ssl.SSLContext | None, options: dict[str, Any], threaded: bool) -> None:
    rng = random.Random(seed)
    plans = make_plans(rng)
    state = ServerState()
    with ScriptedServer(lambda peer: serve(peer, plans, seed, state), tls_context=tls) as server:
        host = "localhost" if tls is not None else "127.0.0.1"
        with HTTP20Connection(host, server.port, timeout=20, **options) as conn:
            ids = [conn.request("GET", f"/{index}") for index in range(len(plans))]
            responses = [conn.getresponse(stream_id) for stream_id in ids]
            outcomes = [Outcome() for _ in plans]
            if threaded:
                read_in_threads(responses, plans, outcomes, seed)
            else:
                active = [index for index, plan in enumerate(plans) if plan.read != "ignore"]
                for _ in range(1_000_000):  # bounded: far more steps than any plan needs
                    if not active:
                        break
                    index = rng.choice(active)
                    if not read_step(responses[index], plans[index], outcomes[index], rng):
                        active.remove(index)
                assert not active
            # Every byte the server sent has arrived once this ping is answered.
            conn.ping(b"review8a")
            session = conn._sessions.current
            core = session._core
            # The responses not read yet: their data was held through all the
            # wraps; read it now, whole, and check it.
            for index, plan in enumerate(plans):
                if plan.read == "ignore":
                    plan.read = "whole"
                    read_step(responses[index], plan, outcomes[index], rng)
                    plan.read = "ignore"
            for response in responses:
                response.close()
            for plan, outcome in zip(plans, outcomes, strict=True):
                check_outcome(plan, outcome)
            # Nothing left buffered, and every byte credited back once:
            # what the window manager holds plus what it gave back is what came.
            assert core.total_buffered == 0
            credit = core._credit
            window = credit.window
            assert window.window_size + credit.withheld + window.unacknowledged == credit.size
            conn.ping(b"review8b")  # the WINDOW_UPDATEs are out before it
            assert state.window_known.wait(20)
            # The server's view of the connection window is h2's: no byte was
            # credited twice on the wire; hyper's own window manager agrees
            # exactly, DATA h2 swallowed on closed streams included.
            assert state.window_seen == core._h2.inbound_flow_control_window
            assert window.window_size == core._h2.inbound_flow_control_window


def read_in_threads(responses: list[Any], plans: list[Plan], outcomes: list[Outcome], seed: int) -> None:
    failures: list[BaseException] = []

    def reader(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        try:
            for _ in range(1_000_000):  # bounded
                if not read_step(responses[index], plans[index], outcomes[index], rng):
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [
        threading.Thread(target=reader, args=(index,), daemon=True)
        for index, plan in enumerate(plans)
        if plan.read != "ignore"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a reader hung"
    if failures:
        raise failures[0]


@pytest.mark.parametrize("seed", range(6))
def test_interleaved_odd_framings_read_oddly_are_byte_exact_and_credited_once(
    seed: int,
    frame_path: str,
    small_buffer: list[int],
    transport: tuple[ssl.SSLContext | None, dict[str, Any]],
) -> None:
    run_interleaved(seed, *transport, threaded=False)


@pytest.mark.parametrize("seed", range(6))
def test_interleaved_responses_read_by_one_thread_each_are_byte_exact(
    seed: int,
    frame_path: str,
    small_buffer: list[int],
    transport: tuple[ssl.SSLContext | None, dict[str, Any]],
) -> None:
    run_interleaved(seed + 100, *transport, threaded=True)


# -- one response at a time, from scripted servers and real ones ---------------------------


@contextmanager
def scripted_connection(script: Callable[[Peer], None], **options: Any) -> Iterator[HTTP20Connection]:
    """A cleartext connection to a scripted server running ``script``; both closed after."""
    with ScriptedServer(script) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=20, **options) as conn:
            yield conn


def answer_headers(peer: Peer) -> tuple[int, bytearray]:
    """Wait for the request and queue a 200's headers: the stream id and the bytes to send so far."""
    stream_id = peer.wait_request().stream_id
    peer.h2.send_headers(stream_id, [(b":status", b"200")])
    return stream_id, bytearray(peer.h2.data_to_send())


def read_in_steps(response: Any, step: int) -> bytes:
    """The whole body, read ``step`` bytes at a time (a bounded number of reads)."""
    got = bytearray()
    for _ in range(100_000):  # bounded: far more reads than any body here needs
        chunk = response.read(step)
        if not chunk:
            break
        got += chunk
    return bytes(got)


# -- memory: a body in tiny frames ---------------------------------------------------------

TINY_FRAMES = 60_000


def test_a_body_in_one_byte_frames_does_not_cost_a_view_per_byte(frame_path: str) -> None:
    """Held body bytes cost about their size, not an object per DATA frame.

    Before the merge a run was joined into one bytes object; held as views,
    each 1-byte frame would be a 184-byte memoryview, a hostile server's
    way to make the 16 MiB connection window cost gigabytes. (h2's path
    and the public mode hand the core one bytes object per frame, which
    costs 34 bytes each: measured, not asserted, below.)
    """
    body = patterned(1, TINY_FRAMES)
    sent = threading.Event()

    def script(peer: Peer) -> None:
        stream_id, wire = answer_headers(peer)
        for index in range(TINY_FRAMES):
            wire += data_frame(stream_id, body[index : index + 1], None, False)
        peer.send_raw(bytes(wire))
        sent.set()
        peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived), 20)
        peer.send_raw(data_frame(stream_id, b"", None, True))
        peer.drain_until_closed(20)

    with scripted_connection(script) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert sent.wait(20)
        conn.ping(b"review8m")  # answered after every DATA frame: all are held now
        core = conn._sessions.current._core
        stream = core.streams[1]
        assert stream.buffered == TINY_FRAMES
        held = sum(sys.getsizeof(piece) for piece in stream.data)
        if frame_path == "fast":
            assert held < 2 * TINY_FRAMES, f"{held} bytes held for {TINY_FRAMES} body bytes"
        assert response.read() == body


# -- real servers: readinto and gzip over view-backed data ----------------------------------


@pytest.fixture
def fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    force_fast_paths_on(monkeypatch)


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_readinto_while_another_download_is_held_is_byte_exact(
    server: str, fast_path_on: None, small_buffer: list[int], request: pytest.FixtureRequest
) -> None:
    """A download read with readinto while another one waits, held, through the buffer's wraps."""
    info: ServerInfo = request.getfixturevalue(server)
    big = docroot_content("big.bin")[: 4 * 1024 * 1024]
    with tls_connection(info) as conn:
        held = conn.getresponse(conn.request("GET", "/big.bin"))
        first = conn.getresponse(conn.request("GET", "/big.bin"))
        digest = hashlib.sha256()
        buffer = bytearray(65_537)
        total = 0
        while total < len(big):
            count = first.readinto(memoryview(buffer)[: min(len(buffer), len(big) - total)])
            assert count
            digest.update(buffer[:count])
            total += count
        assert digest.digest() == hashlib.sha256(big).digest()
        # The other response's bytes were held all along: they are still right.
        assert held.read(len(big)) == big
        first.close()
        held.close()
    if session_wire.RECV_BUFFER_SIZE > 2 * MAX_FRAME:  # nginx's 16 KiB frames never fit in 8 KiB
        assert any(small_buffer), "the buffer never wrapped with views held"


def test_a_run_of_tiny_frames_is_joined_and_a_run_of_large_ones_stays_views() -> None:
    """DataRun.flush: views only where they cost less than a copy (see MIN_VIEW_AVERAGE)."""
    buffer = bytearray(patterned(1, 64 * 1024))
    view = memoryview(buffer)
    stream = type("Stream", (), {"stream_id": 1})()
    events: list[Any] = []
    tiny = DataRun()
    tiny.stream = stream
    tiny.add_payloads(view, [0, 1, 1, 2, 2, 1000], events)  # 1000 bytes in three frames
    tiny.flush(events)
    large = DataRun()
    large.stream = stream
    large.add_payloads(view, [0, 16384, 16384, 16385], events)  # 16385 bytes in two
    large.flush(events)
    joined, views = events
    assert type(joined.data) is bytes and joined.data == bytes(buffer[:1000])
    assert joined.flow_controlled_length == 1000
    assert [type(piece) for piece in views.data] == [memoryview, memoryview]
    assert all(piece.obj is buffer for piece in views.data)
    assert b"".join(views.data) == bytes(buffer[:16385]) and views.flow_controlled_length == 16385


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_connection_lost_mid_body_with_views_held_gives_the_exact_prefix_then_an_error(
    how: str, frame_path: str, small_buffer: list[int]
) -> None:
    """Bytes held as views when the connection breaks are still the server's bytes."""
    body = patterned(1, 400_000)
    first_part = 150_000
    held = threading.Event()

    def script(peer: Peer) -> None:
        stream_id, wire = answer_headers(peer)
        for start in range(0, first_part, 9000):
            wire += data_frame(stream_id, body[start : min(start + 9000, first_part)], None, False)
        peer.send_raw(bytes(wire))
        peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived), 20)
        assert held.wait(20)
        # More of the body (the client reads it into the buffer its views
        # point into), then the connection breaks mid-frame.
        rest = bytearray()
        for start in range(first_part, len(body), 16000):
            rest += data_frame(stream_id, body[start : start + 16000], None, False)
        peer.send_raw(bytes(rest[: len(rest) - 5000]))
        if how == "rst":
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.sock.close()
        else:
            peer.hang_up()

    with scripted_connection(script) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        conn.ping(b"review8h")  # the first part is held now, unread
        held.set()
        got = bytearray()
        with pytest.raises(HyperError):
            for _ in range(100_000):  # bounded
                chunk = response.read(7_001)
                assert chunk, "the body ended cleanly although the connection broke"
                got += chunk
        assert len(got) >= first_part
        assert bytes(got) == body[: len(got)], f"wrong bytes at {first_difference(bytes(got), body)}"


def test_data_on_a_closed_stream_leaves_hyper_and_h2_agreeing_on_the_connection_window(
    frame_path: str,
) -> None:
    closed = threading.Event()

    def script(peer: Peer) -> None:
        stream_id = peer.wait_request().stream_id
        peer.respond(stream_id, body=b"", end_stream=False)
        peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset), 20)
        # In flight when the client reset the stream (RFC 9113 5.1): 100 KB.
        wire = bytearray()
        for _ in range(10):
            wire += data_frame(stream_id, patterned(stream_id, 10_000), None, False)
        peer.send_raw(bytes(wire))
        closed.set()
        peer.drain_until_closed(20)

    with ScriptedServer(script) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=20) as conn:
            conn.getresponse(conn.request("GET", "/")).close()
            assert closed.wait(20)
            conn.ping(b"review8c")  # every DATA frame has arrived
            core = conn._sessions.current._core
            assert core._credit.window.window_size == core._h2.inbound_flow_control_window


def test_a_pushed_body_held_through_the_wraps_while_its_parent_is_read_is_byte_exact(
    frame_path: str, small_buffer: list[int]
) -> None:
    """A push's DATA is buffered as views on its own (even) stream: they survive the wraps too."""
    size = 300_000

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        stream_id = request.stream_id
        authority = dict(request.headers)[b":authority"]
        promise = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", authority), (b":path", b"/p")]
        peer.h2.push_stream(stream_id, 2, promise)
        peer.h2.send_headers(2, [(b":status", b"200")])
        peer.h2.send_headers(stream_id, [(b":status", b"200")])
        wire = bytearray(peer.h2.data_to_send())
        bodies = {sid: patterned(sid, size) for sid in (2, stream_id)}
        for start in range(0, size, 9000):
            for sid in (2, stream_id):
                end = start + 9000 >= size
                wire += data_frame(sid, bodies[sid][start : start + 9000], None, end)
        for start in range(0, len(wire), 20_000):
            peer.send_raw(bytes(wire[start : start + 20_000]))
        peer.drain_until_closed(20)

    with scripted_connection(script, enable_push=True) as conn:
        parent = conn.request("GET", "/")
        response = conn.getresponse(parent)
        assert read_in_steps(response, 70_001) == patterned(1, size)
        pushes = list(conn.get_pushes(parent))
        assert [push.path for push in pushes] == ["/p"]
        assert pushes[0].getresponse().read() == patterned(2, size)
    if frame_path == "fast" and session_wire.RECV_BUFFER_SIZE > 2 * MAX_FRAME:
        # The push's 300 KB waited, unread, while 600 KB went through a
        # 48 KiB buffer: it was held as views when the buffer wrapped.
        assert any(small_buffer)


def test_an_h2c_upgraded_download_and_a_held_one_are_byte_exact(
    hypercorn_h2c_server: ServerInfo, fast_path_on: None, small_buffer: list[int]
) -> None:
    """The upgrade's first bytes (bytes of their own) and then the wrapping buffer (hypercorn, h2c)."""
    size = 1_500_000
    expected = deterministic_bytes(size)
    with hyper.HTTPConnection(hypercorn_h2c_server.authority, secure=False, timeout=20) as conn:
        first = conn.request("GET", f"/bytes/{size}")
        assert conn.version == "HTTP/2"
        held = conn.getresponse(conn.request("GET", f"/bytes/{size}"))
        response = conn.getresponse(first)
        assert read_in_steps(response, 33_333) == expected
        assert held.read() == expected
