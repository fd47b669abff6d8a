"""Review of the core's open-stream count, frame splitter, encoder shortcut and output take.

Independent checks of issue 14's core work, each against h2's own path:

* :class:`~hyper.http20.h2_internals_count.OpenStreamCount` must give what
  h2's ``open_outbound_streams`` would give at every question, and leave
  h2's tables of open and closed streams as h2's walk would, through the
  cases ``tests/test_open_stream_count.py`` does not mix in: server pushes,
  GOAWAY, a reset by us, padded and prioritised frames, trailers and 1xx
  responses, uploads the server answers (and resets) before we end them,
  malformed responses (a stream error found mid-receive), bytes cut into
  pieces across reads, a connection error mid-receive, the h2c upgrade's
  stream 1 and a fast open that fails after h2 made its stream; and eight
  threads on one nginx connection only touch it under the state lock.
* the frame splitter's direct fast path (HEADERS and DATA from the frame
  loop) must deliver what h2's generic path delivers: a second core takes
  the same steps with the splitter's fast path off and h2's walk made before
  every question; both must send the same bytes, hold the same h2 tables
  and show the application the same responses.
* :meth:`MemoEncoder.encode <hyper.http20.hpack_cache.MemoEncoder.encode>`
  reusing its last block: hpack's quirks around table size updates (the
  same size set twice, a size set and set back), the Huffman choice, and a
  SETTINGS_HEADER_TABLE_SIZE between two identical requests on a live core,
  byte for byte against plain h2 and decoded by an h2 server.
* ``take_output`` and ``new_request_stream`` against ``data_to_send`` and
  ``_begin_new_stream``.
"""

from __future__ import annotations

import random
import threading
import types
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
import pytest

import hyper
import hyper.tls
from hyper.exceptions import HyperError
from hyper.http20 import h2_internals
from hyper.http20.core import H2Core
from hyper.http20.h2_internals_count import OpenStreamCount
from hyper.http20.h2_internals_steps import new_request_stream, take_output
from hyper.http20.hpack_cache import MemoEncoder
from tests.core_pairs import CoreAndServer
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used below
from tests.servers import HELLO_TEXT, ServerInfo

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]
POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/up")]
PUSHED = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/p")]


def h2_count(conn: h2.connection.H2Connection) -> int:
    """h2's count of our open streams (RFC 9113 section 5.1.2), without its walk's side effect."""
    return sum(1 for stream_id, stream in conn.streams.items() if stream_id % 2 and stream.open)


class Side(CoreAndServer):
    """One core and the h2 server it talks to, in memory; bytes go both ways on ``flush``."""

    def __init__(self, reference: bool) -> None:
        core = H2Core(enable_push=True, origin=("https", "a.test", 443))
        if reference:
            # h2's generic path for every received frame (and, from the base, h2's walk at every question).
            core._frames.fast_path = False
        super().__init__(core, reference, validate_outbound_headers=False)
        self.pushed: list[int] = []  # promised streams
        self.server_broken = False
        #: Server bytes rewritten by hand (frames h2's server API cannot make), sent next.
        self.injected = b""
        self.flush(0)
        self.flush(0)

    def server_receives(self, data: bytes) -> list[h2.events.Event]:
        if self.server_broken:
            return []
        try:
            return self.server.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.server_broken = True  # only after our GOAWAY, say; both sides alike
            return []

    def flush(self, chunk: int) -> None:
        """Client bytes to the server, the server's back to the client in pieces of ``chunk`` (0: whole)."""
        self.send_to_server()
        back = self.injected + self.server.data_to_send()
        self.injected = b""
        if not chunk:
            self.core.receive(back)
            return
        for start in range(0, len(back), chunk):
            self.core.receive(back[start : start + chunk])


def with_priority(frame: bytes, weight: int) -> bytes:
    """One HEADERS frame with the PRIORITY flag and its five bytes added (RFC 9113 6.2)."""
    length = int.from_bytes(frame[:3], "big") + 5
    priority = (0).to_bytes(4, "big") + bytes([weight])
    return (
        length.to_bytes(3, "big") + frame[3:4] + bytes([frame[4] | 0x20]) + frame[5:9] + priority + frame[9:]
    )


def with_padding(frame: bytes, pad: int) -> bytes:
    """One HEADERS frame, PADDED with ``pad`` zero bytes (RFC 9113 6.2)."""
    length = int.from_bytes(frame[:3], "big") + 1 + pad
    head = length.to_bytes(3, "big") + frame[3:4] + bytes([frame[4] | 0x8]) + frame[5:9]
    return head + bytes([pad]) + frame[9:] + b"\0" * pad


def with_flags(data: bytes, extra: int) -> bytes:
    """The HEADERS and DATA frames of ``data`` with ``extra`` flags set."""
    out = bytearray()
    while data:
        length = int.from_bytes(data[:3], "big")
        frame = bytearray(data[: 9 + length])
        if frame[3] in (0, 1):
            frame[4] |= extra if frame[3] == 0 else extra & ~0x20  # on HEADERS 0x20 is PRIORITY
        out += frame
        data = data[9 + length :]
    return bytes(out)


#: Steps that send the response's headers.
FINAL_HEADERS = {
    "respond-whole",
    "respond-headers",
    "informational",
    "respond-priority",
    "respond-padded-headers",
    "respond-continuation",
}


def _server_op(side: Side, action: str, stream_id: int, choice: int) -> None:
    server = side.server
    answered = stream_id in side.answered
    if answered and action in FINAL_HEADERS:
        # Headers again without END_STREAM: h2's server refuses them only
        # after its encoder changed its table, which would break HPACK.
        action = "respond-data-end"
    if action == "respond-whole":
        server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
        side.answered.add(stream_id)
        side.ended.add(stream_id)
    elif action == "respond-headers":
        server.send_headers(stream_id, [(b":status", b"200"), (b"x-n", str(choice).encode())])
        side.answered.add(stream_id)
    elif action in ("respond-priority", "respond-padded-headers"):
        # HEADERS with the PRIORITY or PADDED flag: never the splitter's fast path (RFC 9113 6.2).
        side.injected += server.data_to_send()
        server.send_headers(stream_id, [(b":status", b"200")], end_stream=bool(choice % 2))
        frame = server.data_to_send()
        if action == "respond-priority":
            side.injected += with_priority(frame, choice % 256)
        else:
            side.injected += with_padding(frame, choice % 30)
        side.answered.add(stream_id)
        if choice % 2:
            side.ended.add(stream_id)
    elif action == "respond-continuation":
        # A header block over 16 KiB: HEADERS and CONTINUATION (RFC 9113 6.10), h2's path.
        server.send_headers(
            stream_id, [(b":status", b"200"), (b"x-big", b"b" * 17000)], end_stream=bool(choice % 2)
        )
        side.answered.add(stream_id)
        if choice % 2:
            side.ended.add(stream_id)
    elif action == "odd-flags":
        # Flags no frame type defines (and PRIORITY's bit on DATA) are ignored (RFC 9113 4.1).
        side.injected += server.data_to_send()
        if not answered:
            server.send_headers(stream_id, [(b":status", b"200")])
            side.answered.add(stream_id)
        server.send_data(stream_id, b"f" * (1 + choice % 9), end_stream=bool(choice % 2))
        if choice % 2:
            side.ended.add(stream_id)
        side.injected += with_flags(server.data_to_send(), 0x2 | 0x10 | 0x40 | (0x20 if choice % 3 else 0))
    elif action == "raw-data":
        # DATA h2's server would not send: before the response headers, or
        # after the stream ended (RFC 9113 5.1, 8.1): h2's generic path decides.
        side.injected += server.data_to_send()
        target = stream_id if not answered or choice % 2 else max(side.ended, default=stream_id)
        side.injected += bytes([0, 0, 3, 0, choice % 2]) + target.to_bytes(4, "big") + b"raw"
    elif action == "informational":
        server.send_headers(stream_id, [(b":status", b"103"), (b"link", b"</s>")])
    elif action in ("respond-data", "respond-data-end", "respond-padded"):
        if not answered:
            server.send_headers(stream_id, [(b":status", b"200")])
            side.answered.add(stream_id)
        end = action != "respond-data"
        pad = 1 + choice % 20 if action == "respond-padded" else None
        server.send_data(stream_id, b"d" * (1 + choice % 40), end_stream=end, pad_length=pad)
        if end:
            side.ended.add(stream_id)
    elif action == "trailers":
        if not answered:
            server.send_headers(stream_id, [(b":status", b"200")])
            side.answered.add(stream_id)
        server.send_data(stream_id, b"body")
        server.send_headers(stream_id, [(b"x-trailer", b"t")], end_stream=True)
        side.ended.add(stream_id)
    elif action == "malformed":
        # content-length 2 and 9 bytes: a malformed response, one stream's error (RFC 9113 8.1.1).
        if not answered:
            server.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"2")])
            side.answered.add(stream_id)
        server.send_data(stream_id, b"m" * 9, end_stream=True)
        side.ended.add(stream_id)
    elif action == "server-reset":
        server.reset_stream(stream_id, h2.errors.ErrorCodes(choice % 14))
    elif action == "push":
        promised = server.get_next_available_stream_id()
        server.push_stream(stream_id, promised, PUSHED)
        side.pushed.append(promised)
        if choice % 2:  # the pushed response, whole
            server.send_headers(promised, [(b":status", b"200")])
            server.send_data(promised, b"pushed", end_stream=True)


SERVER_ACTIONS = (
    "respond-whole",
    "respond-headers",
    "respond-priority",
    "respond-padded-headers",
    "informational",
    "respond-data",
    "respond-data-end",
    "respond-padded",
    "trailers",
    "malformed",
    "server-reset",
    "push",
    "respond-continuation",
    "odd-flags",
    "raw-data",
)


def _step(side: Side, action: str, choice: int) -> Any:
    """One step on one side; returns what the caller sees (compared between both sides)."""
    core, server = side.core, side.server
    try:
        if action == "open":
            if not core.can_open_stream():
                return "full"
            return core.open_stream(GET, True, slot_checked=True)
        if action == "open-unchecked":
            return core.open_stream(GET, True)
        if action == "open-upload":
            if not core.can_open_stream():
                return "full"
            return core.open_stream(POST, False, slot_checked=True)
    except HyperError as exc:
        return type(exc).__name__
    ours = sorted(core.streams)
    if action in ("upload", "end-upload", "client-reset", "discard"):
        if not ours:
            return None
        stream_id = ours[choice % len(ours)]
        if action == "upload":
            if core.streams[stream_id].request_ended or core.stream_failure(core.streams[stream_id]):
                return "stopped"  # the session sends no more then (session_upload)
            return core.send_body(stream_id, memoryview(b"u" * (1 + choice % 30)))
        if action == "end-upload":
            core.end_body(stream_id)
        elif action == "client-reset":
            core.reset(stream_id, h2.errors.ErrorCodes.CANCEL)
        else:
            core.discard_stream(stream_id)
        return stream_id
    try:
        if action == "limit":
            server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: choice % 9})
            return None
        if action == "table-size":
            server.update_settings(
                {h2.settings.SettingCodes.HEADER_TABLE_SIZE: (0, 64, 256, 4096)[choice % 4]}
            )
            return None
        if action == "goaway":
            last = max(side.pending, default=0)
            server.close_connection(last_stream_id=last - 2 if last > 2 and choice % 2 else last)
            side.server_broken = True
            return None
    except h2.exceptions.ProtocolError as exc:
        return f"server refused: {type(exc).__name__}"
    live = [sid for sid in side.pending if sid in server.streams and not server.streams[sid].closed]
    live = [sid for sid in live if sid not in side.ended]
    if not live:
        return None
    stream_id = live[choice % len(live)]
    try:
        _server_op(side, action, stream_id, choice)
    except h2.exceptions.ProtocolError as exc:
        return f"server refused: {type(exc).__name__}"
    return stream_id


ACTIONS = (
    ["open"] * 8
    + ["open-unchecked", "open-upload", "open-upload", "upload", "end-upload", "client-reset", "discard"]
    + ["limit", "table-size"]
    + list(SERVER_ACTIONS)
    + ["respond-whole", "respond-data-end"]
)


def _seen(core: H2Core) -> Any:
    """What the application can see of every stream."""
    seen = {}
    for stream_id, stream in core.streams.items():
        seen[stream_id] = (
            stream.request,
            stream.response,
            stream.headers,
            stream.trailers,
            stream.informational,
            b"".join(bytes(piece) for piece in stream.data),
            type(stream.error).__name__,
        )
    pushes = sorted((p.stream_id, p.parent_id) for p in core._pushes.take(None))
    return seen, pushes, type(core.fatal).__name__, core.goaway is not None


def _h2_tables(core: H2Core) -> Any:
    conn = core._h2
    states = sorted((sid, stream.state_machine.state.name) for sid, stream in conn.streams.items())
    return states, dict(conn._closed_streams), conn.state_machine.state.name


@pytest.mark.usefixtures("fast_paths_on")
@pytest.mark.parametrize("seed", range(40))
def test_cached_count_and_direct_splitter_match_h2s_own_path(seed: int) -> None:
    rng = random.Random(seed * 7919 + 1)
    cached, reference = Side(reference=False), Side(reference=True)
    assert cached.core._open_count.cached and cached.core._frames.fast_path
    steps = 300
    goaway_at = rng.randrange(steps // 2, steps * 2)  # in about half of the runs
    for index in range(steps):
        action, choice = rng.choice(ACTIONS), rng.randrange(1000)
        if index == goaway_at:
            action = "goaway"
        outcome = [_step(side, action, choice) for side in (cached, reference)]
        assert outcome[0] == outcome[1], (index, action)
        if rng.random() < 0.6:
            chunk = rng.choice([0, 0, 1, 7, 9, 10, 50])  # whole, or frames cut across reads
            for side in (cached, reference):
                side.flush(chunk)
        for side in (cached, reference):
            # h2's own count (its property's answer), then the core's.
            assert side.core._open_count.get() == h2_count(side.core._h2), (index, action)
        assert _h2_tables(cached.core) == _h2_tables(reference.core), (index, action)
        assert cached.sent == reference.sent, (index, action)
    for side in (cached, reference):
        side.flush(0)
    assert cached.sent == reference.sent
    assert _seen(cached.core) == _seen(reference.core)


def _side_with_limit(limit: int) -> Side:
    """A caching side whose server allows ``limit`` concurrent streams, its SETTINGS acknowledged."""
    side = Side(reference=False)
    side.server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit})
    side.flush(0)
    return side


def _plain_client() -> h2.connection.H2Connection:
    """h2's own client, its preface queued: what the core's bytes are compared with."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return conn


def _server_settings(conn: h2.connection.H2Connection, settings: dict[int, int]) -> None:
    """``settings`` from the server, in force at once (as if their frame was read and acknowledged)."""
    conn.remote_settings.update(settings)
    conn.remote_settings.acknowledge()


@pytest.mark.usefixtures("fast_paths_on")
def test_a_connection_error_mid_receive_leaves_no_stale_count() -> None:
    """Frames before a connection error in one read still move the streams; the count follows."""
    side = Side(reference=False)
    core = side.core
    ids = [core.open_stream(GET, True, slot_checked=core.can_open_stream()) for _ in range(3)]
    side.flush(0)
    assert core._open_count.get() == 3
    # Two whole responses, then DATA on stream 0: a connection error (RFC 9113 6.1).
    for stream_id in ids[:2]:
        side.server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
    good = side.server.data_to_send()
    bad = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"
    core.receive(good + bad)
    assert core.fatal is not None
    assert core._open_count.get() == h2_count(core._h2) == 1
    assert not core.can_open_stream() or core._open_count.get() < core.max_concurrent_streams


@pytest.mark.usefixtures("fast_paths_on")
def test_a_stream_ended_by_the_server_while_our_upload_runs_still_counts() -> None:
    """HALF_CLOSED_REMOTE counts against the limit (RFC 9113 5.1.2) until we end or reset it."""
    side = _side_with_limit(1)
    core = side.core
    upload = core.open_stream(POST, False, slot_checked=core.can_open_stream())
    side.flush(0)
    side.server.send_headers(upload, [(b":status", b"200")], end_stream=True)
    side.flush(0)
    assert core._h2.streams[upload].state_machine.state.name == "HALF_CLOSED_REMOTE"
    assert core._open_count.get() == 1 and not core.can_open_stream()
    core.end_body(upload)  # our END_STREAM closes it
    assert core._open_count.get() == 0 and core.can_open_stream()
    assert upload in core._h2._closed_streams  # the walk moved it, as h2's would


@pytest.mark.usefixtures("fast_paths_on")
def test_our_reset_frees_the_slot_at_once() -> None:
    side = _side_with_limit(2)
    core = side.core
    first = core.open_stream(GET, True, slot_checked=core.can_open_stream())
    core.open_stream(GET, True, slot_checked=core.can_open_stream())
    assert not core.can_open_stream()
    core.reset(first, h2.errors.ErrorCodes.CANCEL)  # nothing received in between
    assert core.can_open_stream() and core._open_count.get() == 1
    assert core._h2._closed_streams[first] is not None


@pytest.mark.usefixtures("fast_paths_on")
def test_open_unchecked_over_the_limit_is_refused_as_h2_refuses() -> None:
    """Without ``slot_checked`` the cached count decides as h2's send_headers would (RFC 9113 5.1.2)."""
    side = _side_with_limit(2)
    core = side.core
    core.open_stream(GET, True)
    core.open_stream(GET, True)
    with pytest.raises(HyperError, match="Max outbound streams is 2, 2 open"):
        core.open_stream(GET, True)
    plain = _plain_client()
    _server_settings(plain, {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    plain.send_headers(1, GET, end_stream=True)
    plain.send_headers(3, GET, end_stream=True)
    with pytest.raises(h2.exceptions.TooManyStreamsError, match="Max outbound streams is 2, 2 open"):
        plain.send_headers(5, GET, end_stream=True)
    # The refused stream was never made: the next open takes the next id.
    assert sorted(core._h2.streams) == [1, 3]


def test_without_fast_paths_the_count_is_h2s_property(monkeypatch: pytest.MonkeyPatch) -> None:
    """HYPER_FAST_PATHS=0 (or a failed self-test): nothing is cached, h2's public property answers."""
    monkeypatch.setattr(h2_internals, "_enabled", False)
    side = Side(reference=False)
    core = side.core
    assert not core._open_count.cached
    assert core._take_output == core._h2.data_to_send  # h2's public method, held output included
    ids = [core.open_stream(GET, True, slot_checked=core.can_open_stream()) for _ in range(4)]
    side.flush(0)
    side.server.send_headers(ids[0], [(b":status", b"200")], end_stream=True)
    side.server.reset_stream(ids[1])
    side.flush(3)
    assert core._open_count.get() == core._h2.open_outbound_streams == 2


# -- HPACK: the encoder's last block ------------------------------------------------


def _table(encoder: hpack.Encoder) -> Any:
    table = encoder.header_table
    return tuple(table.dynamic_entries), table._current_size, table.maxsize, list(encoder.table_size_changes)


def test_the_same_table_size_set_twice_keeps_hpacks_bytes() -> None:
    """hpack forgets its resize flag when the same size is set again; the memo must follow hpack."""
    plain, memo = hpack.Encoder(), MemoEncoder()
    fields = [(b":method", b"GET"), (b"x-a", b"1")]
    for encoder in (plain, memo):
        encoder.encode(fields)
        encoder.encode(fields)
    for size in (256, 256, 4096, 4096, 0, 100):
        plain.header_table_size = memo.header_table_size = size
        for _ in range(3):
            assert memo.encode(fields) == plain.encode(fields), size
            assert _table(memo) == _table(plain)


def test_a_size_set_and_set_back_between_identical_blocks() -> None:
    plain, memo = hpack.Encoder(), MemoEncoder()
    fields: list[Any] = [
        (b":method", b"GET"),
        (b"x-a", b"1"),
        hpack.NeverIndexedHeaderTuple(b"authorization", b"s"),
    ]
    plain_fields: list[Any] = [(b":method", b"GET"), (b"x-b", b"2", True)]  # sensitive as a 3-tuple
    for batch in (fields, plain_fields):
        for huffman in (True, False, True):
            for encoder in (plain, memo):
                encoder.header_table_size = 64
                encoder.header_table_size = 4096  # back: hpack still sends both updates
            assert memo.encode(batch, huffman) == plain.encode(batch, huffman)
            assert memo.encode(batch, huffman) == plain.encode(batch, huffman)
            assert _table(memo) == _table(plain)


@pytest.mark.usefixtures("fast_paths_on")
def test_header_table_size_between_identical_requests_on_the_wire() -> None:
    """The server shrinks our encoder's table between two sends of the same fields (RFC 7541 4.2, 6.3)."""
    side = Side(reference=False)
    core = side.core
    fields = [*GET, (b"user-agent", b"review6"), (b"accept", b"*/*")]
    plain = _plain_client()
    plain.data_to_send()
    received: list[Any] = []
    sizes = {3: 0, 6: 4096, 8: 4096}  # emptied, back, then the same size again (no update)
    for round_ in range(10):
        if round_ in sizes:
            size = sizes[round_]
            side.server.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: size})
            side.flush(0)
            side.flush(0)  # our SETTINGS ACK goes out before the request
            _server_settings(plain, {h2.settings.SettingCodes.HEADER_TABLE_SIZE: size})
            plain.encoder.header_table_size = size  # as h2 does on the server's SETTINGS
        stream_id = core.open_stream(fields, True, slot_checked=core.can_open_stream())
        out = core.data_to_send()
        plain.send_headers(stream_id, fields, end_stream=True)
        theirs = plain.data_to_send()
        assert out == theirs, round_  # the HEADERS frame, byte for byte
        for event in side.server.receive_data(out):
            if isinstance(event, h2.events.RequestReceived):
                received.append(event.headers)
        side.server.send_headers(stream_id, [(b":status", b"204")], end_stream=True)
        side.flush(0)
    assert received == [fields] * 10
    encoder: Any = core._h2.encoder
    assert isinstance(encoder, MemoEncoder)
    assert encoder.hits >= 2  # served again between the resizes (rounds 2 and 9)


# -- take_output, new_request_stream ------------------------------------------------


@pytest.mark.usefixtures("fast_paths_on")
def test_take_output_gives_data_to_send_and_keeps_the_buffer() -> None:
    core = H2Core()
    core.initiate()
    conn = core._h2
    first = take_output(conn)
    assert first.startswith(b"PRI * HTTP/2.0")
    empty_buffer = conn._data_to_send
    assert take_output(conn) == b"" and conn._data_to_send is empty_buffer  # no new buffer
    conn.ping(b"abcdefgh")
    ping = take_output(conn)
    assert ping[3] == 0x6 and ping.endswith(b"abcdefgh") and not conn._data_to_send
    assert type(ping) is bytes


@pytest.mark.usefixtures("fast_paths_on")
def test_new_request_stream_matches_h2_after_settings_changes() -> None:
    """Window sizes and frame size come from the settings in force, as in ``_begin_new_stream``."""
    from h2.connection import AllowedStreamIDs

    made = []
    for ours in (True, False):
        conn = _plain_client()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 99})  # not acknowledged yet
        _server_settings(conn, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 777})
        conn.max_outbound_frame_size = 32768
        stream = new_request_stream(conn, 5) if ours else conn._begin_new_stream(5, AllowedStreamIDs.ODD)
        made.append(
            (
                stream.inbound_flow_control_window,
                stream.outbound_flow_control_window,
                stream.max_outbound_frame_size,
                conn.highest_outbound_stream_id,
                sorted(conn.streams),
                stream.state_machine.state,
            )
        )
    assert made[0] == made[1]


# -- threads: the cached count is read and changed under the session's state lock ------


class OwnedLock:
    """A ``threading.Lock`` that knows which thread holds it."""

    def __init__(self) -> None:
        self._lock = _REAL_LOCK()
        self.owner: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self.owner = threading.get_ident()
        return got

    def release(self) -> None:
        self.owner = None
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def _is_owned(self) -> bool:  # threading.Condition asks this of its lock
        return self.owner == threading.get_ident()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_REAL_LOCK = threading.Lock


def test_threads_use_the_cached_count_only_under_the_state_lock(
    nginx_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight threads share one connection; every question to the count comes from the lock's holder."""
    from hyper.http20 import session_wire

    locks: list[OwnedLock] = []

    def new_lock() -> OwnedLock:
        lock = OwnedLock()
        locks.append(lock)
        return lock

    # Only the session's module gets the owner-tracking lock.
    patched = types.SimpleNamespace(**{name: getattr(threading, name) for name in dir(threading)})
    patched.Lock = new_lock
    monkeypatch.setattr(session_wire, "threading", patched)
    outside: list[str] = []
    uses = [0]

    def checked(method: Any) -> Any:
        def wrapper(self: OpenStreamCount, *args: Any) -> Any:
            uses[0] += 1
            if not any(lock.owner == threading.get_ident() for lock in locks):
                outside.append(method.__name__)
            return method(self, *args)

        return wrapper

    for name in ("get", "opened", "forget"):
        monkeypatch.setattr(OpenStreamCount, name, checked(getattr(OpenStreamCount, name)))
    context = hyper.tls.init_context(cert_path=nginx_server.ca_file)
    conn = hyper.HTTP20Connection(
        nginx_server.host, nginx_server.port, secure=True, ssl_context=context, timeout=30
    )
    failures: list[Exception] = []
    start = threading.Barrier(8, timeout=30)

    def fetch_some() -> None:
        try:
            start.wait()
            for _ in range(15):
                response = conn.get_response(conn.request("GET", "/hello.txt"))
                assert response.read() == HELLO_TEXT
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            failures.append(exc)

    try:
        threads = [threading.Thread(target=fetch_some) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        conn.close()
    assert not failures, failures
    assert locks and uses[0] >= 120  # a question before every request at least
    assert outside == []


@pytest.mark.usefixtures("fast_paths_on")
def test_the_upgraded_stream_counts_until_its_response_ends() -> None:
    """``Upgrade: h2c``: h2 opens stream 1 itself (RFC 7540 3.2); the count walks after that."""
    core = H2Core()
    settings = core.initiate_upgrade()
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_upgrade_connection(settings)
    assert core._open_count.get() == h2_count(core._h2) == 1  # HALF_CLOSED_LOCAL counts
    second = core.open_stream(GET, True, slot_checked=core.can_open_stream())
    assert core._open_count.get() == h2_count(core._h2) == 2
    server.receive_data(core.data_to_send())
    server.send_headers(1, [(b":status", b"200")], end_stream=True)
    core.receive(server.data_to_send())
    assert core._open_count.get() == h2_count(core._h2) == 1
    assert 1 in core._h2._closed_streams and second in core._h2.streams


@pytest.mark.usefixtures("fast_paths_on")
def test_a_fast_open_failing_after_h2_made_the_stream_is_still_counted() -> None:
    """The guard on the size of h2's table: a stream made by an open that then failed counts.

    A malformed field (a 1-tuple) makes hpack fail after h2's stream exists
    in OPEN (h2's own send_headers would leave it the same way); nothing
    told the count, yet it must still agree with h2's walk.
    """
    core = H2Core()
    core.initiate()
    core.data_to_send()
    core.open_stream(GET, True, slot_checked=core.can_open_stream())
    assert core._open_count.get() == 1
    with pytest.raises(IndexError):
        core.open_stream([*GET, (b"bad",)], True, slot_checked=core.can_open_stream())  # type: ignore[list-item]
    assert core._h2.streams[3].state_machine.state.name == "OPEN"
    assert core._open_count.get() == h2_count(core._h2) == 2
    assert core.open_stream(GET, True, slot_checked=core.can_open_stream()) == 5
    assert core._open_count.get() == h2_count(core._h2) == 3


def test_the_huffman_choice_is_part_of_the_last_block() -> None:
    """The same field objects, the table unchanged, Huffman switched: hpack's other bytes (RFC 7541 5.2)."""
    plain, memo = hpack.Encoder(), MemoEncoder()
    fields = [(b":method", b"GET"), (b"x-long-name", b"a literal value never indexed", True)]
    for huffman in (True, True, False, False, True, False):
        assert memo.encode(fields, huffman) == plain.encode(fields, huffman), huffman
        assert _table(memo) == _table(plain)
    assert memo.hits >= 2  # the repeats were served, each with its own choice
