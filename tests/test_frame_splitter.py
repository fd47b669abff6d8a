"""The frame splitter's DATA fast path against h2's own path, in memory.

:class:`~hyper.http20.h2_adapters.FrameSplitter` cuts received bytes into
frames itself and takes plain DATA frames (unpadded, not empty, on a stream
h2 considers receiving) past h2's generic path, doing h2's window and
content-length bookkeeping directly. These tests check that this changes
nothing anyone can observe:

1. A differential property test: one server byte stream, cut at the same
   points, is fed to two cores, one with the fast path and one with every
   frame going through h2 (``fast_path = False``). After every call the two
   must agree on everything: the bytes to send, each stream's body, state,
   error, headers and trailers, the fatal error, the core's and h2's
   windows, content-length tracking and the events the splitter produced.
2. Cut points: a response fed a byte at a time, split at each frame's
   9-byte header, or all at once gives the same body and the same events;
   nothing of a frame is processed before its last byte; a frame announced
   larger than our maximum fails on its header, without waiting for a body
   that may never come; an HTTP/1.1 answer fails at once, saying so.
3. The connection-window stall: five unread 6 MiB responses used to leave
   the connection window shut while the window manager still held credit it
   was batching, so a sixth stream never got any data.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hyper.exceptions import HyperError, ProtocolError
from hyper.http20.core import DEFAULT_CONNECTION_WINDOW, DEFAULT_STREAM_WINDOW, H2Core
from hyper.http20.receive_records import as_events
from hyper.http20.window import EagerFlowControlManager, FlowControlManager
from hyper.limits import Limits
from tests import hostile_frames as hf
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark

# Hypothesis imports libcst to write its patch file when a generated example
# fails; libcst warns about mypy_extensions, and ``filterwarnings = error``
# would turn the report of a real failure into an INTERNALERROR.
pytestmark = [
    pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"),
    # These compare the fast paths with h2's own: they need them on.
    pytest.mark.usefixtures("fast_paths_on"),
]

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.org"), (b":path", b"/")]
POST = [(b":method", b"POST"), *GET[1:]]
#: HTTP/2's initial window and largest default frame payload.
INITIAL_WINDOW = 65535
MAX_FRAME = 16384
FRAME_SIZE_ERROR = 0x6

#: (window manager, stream window, connection window, limits) of the cores compared.
CONFIGS: tuple[tuple[type[Any], int, int, Limits], ...] = (
    # What HTTP20Connection uses.
    (FlowControlManager, DEFAULT_STREAM_WINDOW, DEFAULT_CONNECTION_WINDOW, Limits()),
    # Small windows: DATA beyond the stream or connection window, withheld
    # credit (max_buffered), and a flood limit within reach.
    (FlowControlManager, 16384, INITIAL_WINDOW, Limits(max_buffered=32768, max_control_frames_per_second=20)),
    # Eager credit: a WINDOW_UPDATE after nearly every read.
    (EagerFlowControlManager, INITIAL_WINDOW, 2 * INITIAL_WINDOW, Limits()),
)


def new_core(config: int, fast: bool) -> H2Core:
    manager, stream_window, connection_window, limits = CONFIGS[config]
    core = H2Core(
        window_manager=manager,
        stream_window=stream_window,
        connection_window=connection_window,
        limits=limits,
    )
    if not fast:
        core._frames.fast_path = False
    return core


# -- what is compared ------------------------------------------------------------


def plain(value: Any) -> Any:
    """``value`` as comparable plain data (h2's ChangedSetting, for one, has no ``==``)."""
    if isinstance(value, h2.events.Event):
        return type(value).__name__  # nested, as in DataReceived.stream_ended
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((repr(k), plain(v)) for k, v in value.items()))
    return repr(value)


def event_signature(event: Any) -> tuple[Any, ...]:
    """An event as plain values."""
    if dataclasses.is_dataclass(event):
        values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    else:
        values = dict(vars(event))
    return (type(event).__name__, plain(values))


def data_bytes(data: Any) -> bytes:
    """A DataReceived's payload as bytes: a run's list of buffer views is joined."""
    return b"".join(data) if isinstance(data, list) else bytes(data)


def merge_data_runs(events: list[Any]) -> list[Any]:
    """Consecutive DataReceived of one stream as one event (the fast path delivers runs so).

    Only plain data events merge (no ``stream_ended``): h2 gives one per
    frame, the splitter one per run of frames, with the same bytes and
    the same flow-controlled total.
    """
    merged: list[Any] = []
    for event in events:
        previous = merged[-1] if merged else None
        if (
            type(event) is h2.events.DataReceived
            and type(previous) is h2.events.DataReceived
            and event.stream_id == previous.stream_id
            and event.stream_ended is None
            and previous.stream_ended is None
        ):
            merged[-1] = h2.events.DataReceived(
                stream_id=event.stream_id,
                data=data_bytes(previous.data) + data_bytes(event.data),
                flow_controlled_length=previous.flow_controlled_length + event.flow_controlled_length,
            )
        elif type(event) is h2.events.DataReceived and isinstance(event.data, list):
            merged.append(
                h2.events.DataReceived(
                    stream_id=event.stream_id,
                    data=data_bytes(event.data),
                    flow_controlled_length=event.flow_controlled_length,
                )
            )
        else:
            merged.append(event)
    return merged


def record_events(core: H2Core, raw: list[Any] | None = None) -> list[list[tuple[Any, ...]]]:
    """Keep the events the splitter hands the core, one list per ``receive()`` (and all in ``raw``)."""
    calls: list[list[tuple[Any, ...]]] = []
    splitter = core._frames
    original = splitter.receive

    def receive(data: Any) -> Any:
        events, error = original(data)
        # A plain response's records (hyper.http20.receive_records) as the h2 events they stand for.
        expanded = [event for item in events for event in as_events(item)]
        if raw is not None:
            raw.extend(expanded)
        merged = merge_data_runs(expanded)
        calls.append([event_signature(e) for e in merged] + [("error", type(error).__name__, str(error))])
        return events, error

    splitter.receive = receive  # type: ignore[method-assign]
    return calls


def error_signature(error: BaseException | None) -> Any:
    if error is None:
        return None
    cause = error.__cause__
    return (
        type(error).__name__,
        getattr(error, "error_code", None),
        str(error),
        None if cause is None else (type(cause).__name__, str(cause)),
    )


def window_state(manager: Any) -> tuple[Any, ...]:
    """An h2 WindowManager, or one of hyper's flow-control managers, as plain values."""
    return tuple(sorted(vars(manager).items()))


def snapshot(core: H2Core) -> dict[str, Any]:
    """Everything observable about a core, and h2's state under it."""
    conn = core._h2
    streams = {}
    for sid, stream in core.streams.items():
        streams[sid] = {
            "data": b"".join(stream.data),
            "buffered": stream.buffered,
            "headers": stream.headers,
            "informational": stream.informational,
            "trailers": stream.trailers,
            "ended": stream.ended,
            "request_ended": stream.request_ended,
            "discarded": stream.discarded,
            "error": error_signature(stream.error),
            "failure": error_signature(core.stream_failure(stream)),
            "window": window_state(stream.window),
        }
    h2_streams = {}
    for sid, h2_stream in conn.streams.items():
        machine = h2_stream.state_machine
        h2_streams[sid] = (
            machine.state,
            machine.headers_received,
            machine.trailers_received,
            machine.stream_closed_by,
            window_state(h2_stream._inbound_window_manager),
            h2_stream._inbound_window_manager.current_window_size,
            h2_stream.outbound_flow_control_window,
            h2_stream._expected_content_length,
            h2_stream._actual_content_length,
        )
    manager = core._connection_window
    return {
        "streams": streams,
        "total_buffered": core.total_buffered,
        "withheld": core._withheld,
        "fatal": error_signature(core.fatal),
        "fatal_code": getattr(core.fatal, "error_code", None),
        "goaway": core.goaway,
        "closed": core.closed,
        "settings_received": core.settings_received,
        "control_frames": core._control_frames,
        "connection_window": None if manager is None else window_state(manager),
        "h2_state": conn.state_machine.state,
        "h2_window": conn._inbound_flow_control_window_manager.current_window_size,
        "h2_window_manager": window_state(conn._inbound_flow_control_window_manager),
        "h2_outbound_window": conn.outbound_flow_control_window,
        "h2_streams": h2_streams,
        "h2_closed_streams": dict(conn._closed_streams),
        "header_block_pending": bool(core._frames._slow._headers_buffer),
    }


# -- server byte streams -----------------------------------------------------------

#: Payload sizes of DATA: small, empty, and whole frames that fill windows fast.
DATA_SIZES = st.one_of(st.integers(0, 300), st.sampled_from([0, 1, MAX_FRAME - 300, MAX_FRAME]))


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws (never for the simplest choice)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def data_frame(draw: st.DrawFn, sid: int, size: int, end_stream: bool) -> bytes:
    """DATA of ``size`` payload bytes, sometimes PADDED (within the frame size limit)."""
    body = bytes([draw(st.integers(0, 255))]) * size
    flags = hf.END_STREAM if end_stream else 0
    if rarely(draw, 4):
        pad = draw(st.sampled_from([0, 1, 7, 255]))
        body = bytes([pad]) + body[: MAX_FRAME - 1 - pad] + b"\0" * pad
        flags |= hf.PADDED
    return hf.frame(hf.DATA, flags, sid, body)


def header_frames(draw: st.DrawFn, sid: int, block: bytes, end_stream: bool) -> list[bytes]:
    """HEADERS, sometimes continued in a CONTINUATION that other frames may precede (a violation)."""
    if len(block) > 1 and rarely(draw, 5):
        cut = draw(st.integers(1, len(block) - 1))
        flags = hf.END_STREAM if end_stream else 0
        first = hf.frame(hf.HEADERS, flags, sid, block[:cut])
        rest = hf.continuation(sid, block[cut:], end_headers=True)
        return [first, rest] if rarely(draw, 4) else [first + rest]
    return [hf.headers(sid, block, end_stream=end_stream)]


@st.composite
def response(draw: st.DrawFn, sid: int) -> list[bytes]:
    """One stream's response, as the pieces that must stay in order: HEADERS, DATA, an end."""
    out: list[bytes] = []
    if rarely(draw, 8):  # DATA before any HEADERS
        out.append(data_frame(draw, sid, draw(DATA_SIZES), draw(st.booleans())))
    if rarely(draw, 6):  # a 1xx first
        out += header_frames(draw, sid, hf.block((b":status", b"103")), False)
    end = draw(st.sampled_from(["data", "data", "trailers", "open", "headers only", "rst"]))
    sizes = [] if end == "headers only" else draw(st.lists(DATA_SIZES, max_size=8))
    if end == "data":
        sizes.append(draw(DATA_SIZES))
    status = b"204" if rarely(draw, 10) else draw(st.sampled_from([b"200", b"404"]))  # 204: no body allowed
    fields = [(b":status", status), (b"content-type", b"text/plain")]
    length = draw(st.sampled_from(["none", "exact"]))
    if rarely(draw, 6):  # content-length violated
        length = draw(st.sampled_from(["short", "long"]))
    body = sum(sizes)
    if length != "none":
        claimed = body + {"exact": 0, "short": -1, "long": 1}[length]
        fields.append((b"content-length", str(max(claimed, 0)).encode()))
    out += header_frames(draw, sid, hf.block(*fields), end == "headers only")
    for i, size in enumerate(sizes, 1):
        out.append(data_frame(draw, sid, size, end == "data" and i == len(sizes)))
    if end == "trailers":
        trailer = hf.block((b"x-checksum", b"abc"))
        out += header_frames(draw, sid, trailer, draw(st.sampled_from([True, True, True, False])))
    elif end == "rst":
        out.append(hf.rst_stream(sid, draw(st.sampled_from([0, 2, 7, 8]))))
    if rarely(draw, 5):  # DATA after the end: on a closed or reset stream
        out.append(data_frame(draw, sid, draw(DATA_SIZES), draw(st.booleans())))
    return out


@st.composite
def extra_frame(draw: st.DrawFn, n: int) -> bytes:
    """A frame around the responses: control frames, and DATA where none belongs."""
    ours = st.sampled_from([2 * i + 1 for i in range(n)])
    kind = draw(st.sampled_from(["window_update", "ping", "settings", "ack", "rst", "goaway"]))
    if rarely(draw, 25):  # connection errors: rare, or few examples would get far
        kind = draw(st.sampled_from(["stray", "big"]))
    if kind == "window_update":
        return hf.window_update(draw(st.one_of(st.just(0), ours)), draw(st.integers(1, 2**20)))
    if kind == "ping":
        return hf.ping(b"12345678", ack=draw(st.booleans()))
    if kind == "settings":
        window = draw(st.sampled_from([0, 100, INITIAL_WINDOW, 2**20]))
        return hf.settings([(hf.INITIAL_WINDOW_SIZE, window), (hf.MAX_CONCURRENT_STREAMS, 100)])
    if kind == "ack":
        return hf.settings(ack=True)
    if kind == "stray":  # DATA on an idle, an even, a huge or the connection's stream
        sid = draw(st.sampled_from([2 * n + 1, 2, 2**31 - 1, 0]))
        return data_frame(draw, sid, draw(DATA_SIZES), draw(st.booleans()))
    if kind == "rst":
        return hf.rst_stream(draw(ours), draw(st.sampled_from([0, 8])))
    if kind == "goaway":
        return hf.goaway(draw(st.sampled_from([2 * n - 1, 1, 2**31 - 1])))
    # "big": announced beyond our SETTINGS_MAX_FRAME_SIZE.
    return hf.frame(hf.DATA, 0, draw(ours), b"x" * (MAX_FRAME + 1))


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One input: requests ("GET" ends our side, "POST" keeps it open), the server's bytes, cuts, actions.

    ``actions[i]`` run after the i-th ``receive()``: ``("take", sid, max_bytes)``,
    ``("discard", sid)`` or ``("budget",)``.
    """

    config: int
    requests: tuple[str, ...]
    wire: bytes
    cuts: tuple[int, ...] = ()
    actions: tuple[tuple[tuple[Any, ...], ...], ...] = ()


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, 4))
    requests = tuple(draw(st.sampled_from(["GET", "GET", "POST"])) for _ in range(n))
    preface = hf.settings(draw(st.sampled_from([[], [(hf.INITIAL_WINDOW_SIZE, INITIAL_WINDOW)]])))
    if rarely(draw, 50):
        preface = b""  # no SETTINGS first: not an HTTP/2 server
    if draw(st.booleans()):  # our SETTINGS acknowledged: h2 enforces our smaller stream windows
        preface += hf.settings(ack=True)
    queues = [draw(response(sid)) for sid in range(1, 2 * n, 2)]
    queues += [[draw(extra_frame(n))] for _ in range(draw(st.integers(0, 6)))]
    queues = [q for q in queues if q]
    # Interleave: each queue keeps its order (a stream's frames), the rest is free.
    chunks = [preface]
    while queues:
        i = draw(st.integers(0, len(queues) - 1))
        chunks.append(queues[i].pop(0))
        if not queues[i]:
            del queues[i]
    wire = b"".join(chunks)
    cutting = draw(st.sampled_from(["frames", "random", "whole"]))
    cuts: tuple[int, ...] = ()
    if cutting == "frames":
        cuts = tuple(itertools.accumulate(len(c) for c in chunks[:-1] if c))
    elif cutting == "random" and len(wire) > 1:
        cuts = tuple(sorted(set(draw(st.lists(st.integers(1, len(wire) - 1), max_size=10)))))
    sid = st.sampled_from([2 * i + 1 for i in range(n)])
    action = st.one_of(
        st.tuples(st.just("take"), sid, st.one_of(st.none(), st.integers(1, 5000))),
        st.tuples(st.just("discard"), sid),
        st.just(("budget",)),
    )
    # Without reads the connection window shuts; with them DATA keeps flowing.
    steps = tuple(tuple(draw(st.lists(action, max_size=3))) for _ in range(len(cuts) + 1))
    return Scenario(draw(st.integers(0, len(CONFIGS) - 1)), requests, wire, cuts, steps)


def split(wire: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    return [wire[a:b] for a, b in itertools.pairwise([0, *cuts, len(wire)])]


class Pair:
    """Two cores fed the same bytes, one with the DATA fast path and one without."""

    def __init__(self, scenario: Scenario) -> None:
        self.fast = new_core(scenario.config, fast=True)
        self.slow = new_core(scenario.config, fast=False)
        self.events = {core: record_events(core) for core in (self.fast, self.slow)}
        for core in (self.fast, self.slow):
            core.initiate()
            for method in scenario.requests:
                core.open_stream(GET if method == "GET" else POST, end_stream=method == "GET")
        self.compare("after opening the streams")

    def both(self, step: Callable[[H2Core], Any]) -> Any:
        """Run ``step`` on both cores; it must return the same (or raise the same hyper error)."""
        results = []
        for core in (self.fast, self.slow):
            try:
                results.append(("ok", step(core)))
            except HyperError as exc:
                results.append(("raised", error_signature(exc)))
        assert results[0] == results[1], f"fast path {results[0]!r} != h2 path {results[1]!r}"
        return results[0]

    def compare(self, when: str) -> None:
        sent = self.both(lambda core: core.data_to_send())
        assert sent[0] == "ok"
        fast, slow = snapshot(self.fast), snapshot(self.slow)
        for key in fast:
            assert fast[key] == slow[key], f"{when}: {key} differs:\n fast {fast[key]!r}\n h2   {slow[key]!r}"
        fast_events, slow_events = self.events[self.fast], self.events[self.slow]
        assert fast_events == slow_events, f"{when}: events differ"

    def act(self, step: tuple[Any, ...]) -> None:
        name = step[0]
        if name == "take":
            _, sid, max_bytes = step
            self.both(lambda core: core.take_data(sid, max_bytes) if sid in core.streams else None)
        elif name == "discard":
            self.both(lambda core: core.discard_stream(step[1]))
        else:
            self.both(lambda core: core.reset_flood_budget())


def run(scenario: Scenario) -> Pair:
    pair = Pair(scenario)
    pieces = split(scenario.wire, scenario.cuts)
    for i, (piece, steps) in enumerate(zip(pieces, scenario.actions or ((),) * len(pieces), strict=True)):
        pair.both(lambda core, piece=piece: core.receive(piece))
        pair.compare(f"after receive() #{i}")
        for step in steps:
            pair.act(step)
            pair.compare(f"after receive() #{i} and {step!r}")
    return pair


# Hand-written inputs for the cases the fast path must get right, kept in
# every run whatever Hypothesis draws.
RESPONSE = hf.response_headers(1, (b"content-length", b"10"))
EXPLICIT = [
    # A body in plain, padded and empty DATA, ended by an empty DATA frame.
    Scenario(
        0,
        ("GET",),
        hf.settings()
        + RESPONSE
        + hf.data(1, b"abcd")
        + hf.frame(hf.DATA, hf.PADDED, 1, b"\x02efg\0\0")
        + hf.data(1)
        + hf.data(1, b"hij")
        + hf.data(1, end_stream=True),
    ),
    # content-length exceeded by a plain DATA frame: a stream error on either path.
    Scenario(0, ("GET", "GET"), hf.settings() + RESPONSE + hf.data(1, b"x" * 11) + hf.data(1, b"late")),
    # DATA before HEADERS, then on a stream reset by the server, then on an idle one.
    Scenario(0, ("GET", "GET"), hf.settings() + hf.data(1, b"early")),
    Scenario(
        0, ("GET", "GET"), hf.settings() + hf.response_headers(3) + hf.rst_stream(3, 8) + hf.data(3, b"after")
    ),
    Scenario(0, ("GET",), hf.settings() + hf.data(5, b"idle")),
    # DATA inside a header block of another stream.
    Scenario(
        0,
        ("GET", "GET"),
        hf.settings()
        + hf.response_headers(1)
        + hf.headers(3, hf.STATUS_200, end_headers=False)
        + hf.data(1, b"x"),
    ),
    # The stream window (16384 once acknowledged) and the connection window (65535) exceeded.
    Scenario(
        1,
        ("GET",),
        hf.settings() + hf.settings(ack=True) + hf.response_headers(1) + hf.data(1, b"x" * MAX_FRAME) * 2,
    ),
    Scenario(
        1,
        ("GET",) * 4,
        hf.settings()
        + b"".join(hf.response_headers(s) + hf.data(s, b"y" * MAX_FRAME) for s in (1, 3, 5, 7)) * 2,
        cuts=(50, 20000),
        actions=((), (("take", 1, None),), (("take", 3, 100),)),
    ),
    # A response discarded by the application, then more DATA on it.
    Scenario(
        0,
        ("POST",),
        hf.settings() + hf.response_headers(1) + hf.data(1, b"first") + hf.data(1, b"second"),
        cuts=(33,),
        actions=((("discard", 1),), ()),
    ),
]

#: Examples per run: about 10 s on a loaded 2-core machine.
EXAMPLES = 400


def examples(test: Callable[..., Any]) -> Callable[..., Any]:
    for scenario in reversed(EXPLICIT):
        test = example(scenario)(test)
    return test


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=True)
@given(scenarios())
@examples
def test_fast_and_h2_paths_agree_on_everything(scenario: Scenario) -> None:
    run(scenario)


def test_explicit_scenarios_reach_the_fast_path_and_h2s_errors() -> None:
    """The hand-written inputs exercise what they are meant to (not only agreeing no-ops)."""
    pair = run(EXPLICIT[0])
    assert pair.fast.take_data(1) == b"abcdefghij" and pair.fast.streams[1].ended
    pair = run(EXPLICIT[1])
    assert isinstance(pair.fast.streams[1].error, ProtocolError) and pair.fast.fatal is None
    for scenario in EXPLICIT[2:6]:
        core = run(scenario).fast
        assert core.fatal is not None or any(s.error is not None for s in core.streams.values()), scenario
    for scenario in EXPLICIT[6:8]:  # beyond the stream window, then the connection window
        core = run(scenario).fast
        assert isinstance(core.fatal, ProtocolError) and core.fatal.error_code == 0x3  # FLOW_CONTROL_ERROR
    core = run(EXPLICIT[8]).fast
    assert core.fatal is None and core.streams == {}


# -- cut points ----------------------------------------------------------------------


def frame_ends(wire: bytes) -> list[int]:
    """The offset just past each frame of ``wire``."""
    ends, pos = [], 0
    while pos < len(wire):
        pos += 9 + int.from_bytes(wire[pos : pos + 3], "big")
        ends.append(pos)
    return ends


BODY = b"".join(bytes([65 + i]) * size for i, size in enumerate([1, 300, MAX_FRAME, 17, 5000]))
CUT_RESPONSE = (
    hf.settings()
    + hf.settings(ack=True)
    + hf.response_headers(1, (b"content-length", str(len(BODY)).encode()))
    + hf.data(1, BODY[:1])
    + hf.data(1, BODY[1:301])
    + hf.ping(b"pingpong")
    + hf.data(1)  # empty
    + hf.data(1, BODY[301 : 301 + MAX_FRAME])
    + hf.frame(hf.DATA, hf.PADDED, 1, b"\x03" + BODY[301 + MAX_FRAME : 318 + MAX_FRAME] + b"\0\0\0")
    + hf.data(1, BODY[318 + MAX_FRAME :])
    + hf.headers(1, hf.block((b"x-trailer", b"yes")), end_stream=True)
)


def pieces_for(mode: str, wire: bytes) -> list[bytes]:
    if mode == "whole":
        return [wire]
    if mode == "bytes":
        return [wire[i : i + 1] for i in range(len(wire))]
    cuts = set()
    for start in [0, *frame_ends(wire)[:-1]]:
        cuts |= {start, start + 9}  # "headers": the 9-byte header alone, then the payload
        if mode == "inside headers":  # and the header itself cut in two, 4 + 5 bytes
            cuts.add(start + 4)
    return split(wire, tuple(sorted(c for c in cuts if 0 < c < len(wire))))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
@pytest.mark.parametrize("mode", ["bytes", "headers", "inside headers"])
def test_cut_points_change_nothing(mode: str, fast: bool) -> None:
    results = []
    for how in ("whole", mode):
        core = new_core(0, fast)
        raw: list[Any] = []
        calls = record_events(core, raw)
        core.initiate()
        core.open_stream(GET, True)
        core.data_to_send()
        offset = 0
        ends = set(frame_ends(CUT_RESPONSE))
        for piece in pieces_for(how, CUT_RESPONSE):
            core.receive(piece)
            offset += len(piece)
            events = [e for e in calls[-1] if e[0] != "error"]
            if offset not in ends:  # no piece spans frames: a frame counts on its last byte only
                assert events == [], f"events at {offset}, inside a frame: {events}"
            assert calls[-1][-1] == ("error", "NoneType", "None")
        stream = core.streams[1]
        assert core.fatal is None
        assert stream.ended and stream.trailers == [(b"x-trailer", b"yes")]
        assert stream.headers is not None and stream.headers[0] == (b":status", b"200")
        body = core.take_data(1)
        assert body == BODY
        # Cut differently, runs of DATA frames arrive as different events.
        results.append(([event_signature(e) for e in merge_data_runs(raw)], stream.headers, stream.trailers))
    assert results[0] == results[1]


def connected_core(fast: bool = True, streams: int = 1) -> H2Core:
    core = new_core(0, fast)
    core.initiate()
    for _ in range(streams):
        core.open_stream(GET, True)
    core.data_to_send()
    core.receive(hf.settings() + hf.settings(ack=True) + hf.response_headers(1))
    core.data_to_send()
    return core


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
def test_a_frame_split_over_receives_is_processed_when_whole(fast: bool) -> None:
    core = connected_core(fast)
    first, second, third = (
        hf.data(1, b"a" * 100),
        hf.data(1, b"b" * 50),
        hf.data(1, b"c" * 30, end_stream=True),
    )
    stream = core.streams[1]
    core.receive(first[:5])  # part of the header
    core.receive(first[5:20])  # the rest of the header and part of the payload
    assert stream.buffered == 0 and core.fatal is None
    core.receive(first[20:-1])
    assert stream.buffered == 0
    # The end of one frame, a whole one, and the start of the next, in one call.
    core.receive(first[-1:] + second + third[:12])
    assert (stream.buffered, stream.ended) == (150, False)
    core.receive(third[12:])
    assert (stream.buffered, stream.ended) == (180, True)
    assert core.take_data(1) == b"a" * 100 + b"b" * 50 + b"c" * 30
    assert core.fatal is None


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "two-reads"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
def test_data_before_an_oversized_frame_in_the_same_read_is_kept(fast: bool, split: bool) -> None:
    # The DATA was accounted for in the windows: it must reach its stream
    # whether or not the bad header came in the same read (review finding).
    core = connected_core(fast)
    wire = hf.data(1, b"d" * 1000) + hf.frame_header(2**20, hf.DATA, 0, 1)
    if split:
        core.receive(wire[:1009])
        core.receive(wire[1009:])
    else:
        core.receive(wire)
    assert isinstance(core.fatal, ProtocolError)
    assert core.streams[1].buffered == 1000


def goaway_codes(core: H2Core) -> list[int]:
    return [f.error_code for f in hf.parse_frames(core.data_to_send()) if f.type == hf.GOAWAY]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
@pytest.mark.parametrize("frame_type", [hf.DATA, hf.HEADERS, 0xFA], ids=["data", "headers", "unknown"])
@pytest.mark.parametrize("length", [MAX_FRAME + 1, 2**24 - 1])
@pytest.mark.parametrize("bytewise", [False, True], ids=["at once", "bytewise"])
def test_a_frame_announced_too_large_fails_on_its_header(
    fast: bool, frame_type: int, length: int, bytewise: bool
) -> None:
    core = connected_core(fast)
    header = hf.frame_header(length, frame_type, 0, 1)
    pieces = [header[i : i + 1] for i in range(9)] if bytewise else [header]
    for piece in pieces[:-1]:
        core.receive(piece)
        assert core.fatal is None  # not a whole header yet
    core.receive(pieces[-1])  # the header is complete: no body is waited for
    assert isinstance(core.fatal, ProtocolError), core.fatal
    assert core.fatal.error_code == FRAME_SIZE_ERROR
    assert str(length) in str(core.fatal)
    assert goaway_codes(core) == [FRAME_SIZE_ERROR]


def test_a_frame_of_exactly_the_maximum_size_is_accepted() -> None:
    core = connected_core()
    frame = hf.data(1, b"m" * MAX_FRAME)
    core.receive(frame[:9])
    assert core.fatal is None
    core.receive(frame[9:])
    assert core.fatal is None and core.take_data(1) == b"m" * MAX_FRAME


HTTP1_REPLY = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nBad Request"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
@pytest.mark.parametrize("bytewise", [False, True], ids=["at once", "bytewise"])
def test_an_http1_reply_fails_at_once(fast: bool, bytewise: bool) -> None:
    core = new_core(0, fast)
    core.initiate()
    core.open_stream(GET, True)
    core.data_to_send()
    pieces = [HTTP1_REPLY[i : i + 1] for i in range(9)] if bytewise else [HTTP1_REPLY]
    for piece in pieces[:-1]:
        core.receive(piece)
        assert core.fatal is None
    core.receive(pieces[-1])  # at most the 9 bytes of a frame header: no waiting for more
    assert isinstance(core.fatal, ProtocolError), core.fatal
    assert "HTTP/1.x" in str(core.fatal) and "HTTP/1.1" in str(core.fatal)
    failure = core.stream_failure(core.streams[1])
    assert failure is core.fatal


# -- the connection-window stall -------------------------------------------------------


class Server:
    """A server-side h2 connection that keeps to the windows the client grants, as a real one does."""

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=False)
        )
        self.conn.initiate_connection()

    def exchange(self, core: H2Core) -> None:
        """Deliver what each side has queued to the other, until neither has anything."""
        while True:
            to_client = self.conn.data_to_send()
            if to_client:
                core.receive(to_client)
            to_server = core.data_to_send()
            if to_server:
                self.conn.receive_data(to_server)
            if not to_client and not to_server:
                return

    def sendable(self, sid: int) -> int:
        return min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)


# How many frames arrive per receive() decides where the window manager's
# batched credit falls: before the fix, batches that do not divide its 8 MiB
# step (5, 40, 100 frames of 16 KiB) left credit held while the window shut.
@pytest.mark.parametrize("frames_per_read", [1, 5, 40, 64, 100])
@pytest.mark.parametrize("order", ["one stream after another", "round robin"])
def test_unread_streams_do_not_starve_a_new_one(order: str, frames_per_read: int) -> None:
    core = H2Core()  # default windows (6 MiB / 16 MiB) and window manager
    assert (core._stream_window, core._connection_window_size) == (6 * 2**20, 16 * 2**20)
    assert core._window_manager is FlowControlManager
    bound = core._max_buffered + DEFAULT_CONNECTION_WINDOW
    core.initiate()
    ids = [core.open_stream(GET, True) for _ in range(6)]
    server = Server()
    server.exchange(core)
    for sid in ids:
        server.conn.send_headers(sid, [(b":status", b"200")])
    server.exchange(core)
    assert core.settings_received and core.fatal is None
    busy, idle = ids[:5], ids[5]
    left = dict.fromkeys(busy, 6 * 2**20)
    chunk = b"z" * MAX_FRAME
    turn = 0
    while True:
        # The server sends what its windows allow, ``frames_per_read`` frames
        # per receive(); the client answers; nobody reads. It ends when the
        # server can send nothing more even after the client's answer.
        sent_now = 0
        for _ in range(frames_per_read):
            ready = [sid for sid in busy if left[sid] and server.sendable(sid) > 0]
            if not ready:
                break
            sid = ready[0] if order == "one stream after another" else ready[turn % len(ready)]
            turn += 1
            size = min(server.sendable(sid), left[sid])
            server.conn.send_data(sid, chunk[:size])
            left[sid] -= size
            sent_now += 1
        server.exchange(core)
        assert core.fatal is None
        assert core.total_buffered <= bound, f"{core.total_buffered / 2**20:.1f} MiB buffered"
        if not sent_now:
            break
    sent = {sid: 6 * 2**20 - left[sid] for sid in busy}
    assert sum(sent.values()) > DEFAULT_CONNECTION_WINDOW  # the connection window was used up and more
    assert all(core.streams[sid].buffered == sent[sid] for sid in busy)
    # The point: the client credited enough that the sixth stream can still get data.
    window = server.conn.outbound_flow_control_window
    assert window > 0, f"connection window shut ({window}) with {core.total_buffered / 2**20:.1f} MiB unread"
    size = server.sendable(idle)
    assert size > 0
    server.conn.send_data(idle, b"n" * size, end_stream=True)
    server.exchange(core)
    assert core.fatal is None and core.streams[idle].complete
    assert core.take_data(idle) == b"n" * size
    assert core.total_buffered <= bound


def test_reading_reopens_the_window_for_the_others() -> None:
    """Two streams fill their windows unread; a third that is read keeps flowing (liveness)."""
    core = H2Core()
    core.initiate()
    ids = [core.open_stream(GET, True) for _ in range(3)]
    server = Server()
    server.exchange(core)
    for sid in ids:
        server.conn.send_headers(sid, [(b":status", b"200")])
    server.exchange(core)
    # Fill the connection window with unread data on the first two streams (6 MiB each fits twice).
    for sid in ids[:2]:
        while (size := server.sendable(sid)) > 0:
            server.conn.send_data(sid, b"q" * size)
            server.exchange(core)
    total = 0
    for _ in range(4 * 2**20 // MAX_FRAME):
        size = server.sendable(ids[2])
        assert size > 0, "the third stream stalled although it is being read"
        server.conn.send_data(ids[2], b"r" * size)
        server.exchange(core)
        total += len(core.take_data(ids[2]))
        server.exchange(core)
    assert total == 4 * 2**20 and core.fatal is None
