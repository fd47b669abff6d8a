"""A request stream's written-out steps do what h2's own code does (issue 14, seq round 5).

Three steps of every request are written out behind the fence, and each is
compared here with h2's own, in both of its forms where it has two:

* a new request stream's h2 objects made by attribute stores
  (``new_request_stream`` with ``_STREAM_WRITTEN_OUT``) against h2's
  constructors (the same function without it) and ``_begin_new_stream``,
  every attribute of every nested object, after settings changes;
* a response block's ``content-length`` (and ``cookie``) looked for in one
  pass (``receive_plain_headers``) against h2's ``_initialize_content_length``
  and header pipeline, through the step-by-step comparison of
  ``tests/test_fast_steps.py`` (events or error, then every stream field);
* the next stream id taken without h2's ``get_next_available_stream_id``
  (``H2Core.open_stream``), up to the last id a client may use
  (RFC 9113 section 5.1.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.settings
import h2.stream
import pytest
from h2.connection import AllowedStreamIDs

from hyper.exceptions import ConnectionTerminated
from hyper.http20 import h2_internals_receive, h2_internals_steps
from hyper.http20.core import H2Core
from hyper.http20.h2_internals_check_steps import _vars
from hyper.http20.h2_internals_hpack import CountingHeaderTable
from hyper.http20.hpack_cache import MemoDecoder
from hyper.http20.streams import RequestState, ResponseState, StreamState
from hyper.http20.window import FlowControlManager
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.test_fast_steps import HEAD, REQUEST, Pair, _blocks

pytestmark = pytest.mark.usefixtures("fast_paths_on")

LAST_ID = 2**31 - 1


# -- a new request stream ------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["written-out", "h2-constructors"])
def written_out(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """``new_request_stream`` in each of its two forms."""
    monkeypatch.setattr(h2_internals_steps, "_STREAM_WRITTEN_OUT", request.param)
    yield request.param


def _client_with_settings(
    ours: int | None, theirs: int | None, frame_size: int
) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    if ours is not None:
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: ours})
        conn.local_settings.acknowledge()
    if theirs is not None:
        server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        server.initiate_connection()
        server.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: theirs})
        server.receive_data(conn.data_to_send())
        conn.receive_data(server.data_to_send())
    conn.max_outbound_frame_size = frame_size
    return conn


@pytest.mark.parametrize(
    ("ours", "theirs", "frame_size"),
    [(None, None, 16384), (99, None, 20000), (1234567, 777, 32768), (2**31 - 1, 0, 16384)],
)
def test_a_new_request_stream_is_h2s_in_every_attribute(
    written_out: bool, ours: int | None, theirs: int | None, frame_size: int
) -> None:
    made: list[Any] = []
    for fast in (True, False):
        conn = _client_with_settings(ours, theirs, frame_size)
        for stream_id in (1, 5, 9):
            if fast:
                stream = h2_internals_steps.new_request_stream(conn, stream_id)
            else:
                stream = conn._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
        made.append(
            (
                _vars(stream),
                type(stream.state_machine),
                type(stream._inbound_window_manager),
                stream.config is conn.config,
                sorted(conn.streams),
                conn.highest_outbound_stream_id,
            )
        )
    assert made[0] == made[1]
    # Each stream has objects of its own: nothing is shared with another stream.
    conn = _client_with_settings(None, None, 16384)
    first = h2_internals_steps.new_request_stream(conn, 1)
    second = h2_internals_steps.new_request_stream(conn, 3)
    assert first.state_machine is not second.state_machine
    assert first._inbound_window_manager is not second._inbound_window_manager


def test_the_written_out_form_is_chosen_by_checking_h2s_constructors() -> None:
    assert h2_internals_steps._stream_written_out() is True
    assert h2_internals_steps._STREAM_WRITTEN_OUT is True


def test_a_constructor_with_another_attribute_keeps_h2s_constructors(monkeypatch: pytest.MonkeyPatch) -> None:
    """An h2 whose stream has a field the written-out form would not set is not written out."""
    real_init = h2_internals_steps.H2Stream.__init__

    def init_with_more(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.new_field_of_a_later_h2 = 1

    monkeypatch.setattr(h2_internals_steps.H2Stream, "__init__", init_with_more)
    assert h2_internals_steps._stream_written_out() is False


@pytest.mark.parametrize("headers", [REQUEST, HEAD])
def test_requests_opened_on_written_out_streams_match_h2(written_out: bool, headers: list[Any]) -> None:
    pair = Pair()  # compares every stream field after every step
    for stream_id in (1, 3, 5):
        pair.open(stream_id, headers, True, True)
    pair.headers(3, _blocks(pair, [(b":status", b"200"), (b"content-length", b"0")]), True)
    pair.open(7, headers, False, False)


# -- content-length and cookie, looked for in one pass --------------------------------

LENGTH_BLOCKS = [
    pytest.param([], id="no-length"),
    pytest.param([(b"content-length", b"3")], id="one"),
    pytest.param([(b"content-length", b"003")], id="leading-zeros"),
    pytest.param([(b"content-length", b"3"), (b"content-length", b"3")], id="twice-equal"),
    pytest.param([(b"content-length", b"3"), (b"content-length", b"4")], id="twice-conflicting"),
    pytest.param([(b"content-length", b"x3")], id="not-digits"),
    pytest.param([(b"content-length", b"+3")], id="signed"),
    pytest.param([(b"content-length", b"")], id="empty"),
    pytest.param([(b"content-length", b"\xd9\xa3")], id="non-ascii-digit"),
    pytest.param([(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"content-length", b"3")], id="cookies"),
    pytest.param([(b"set-cookie", b"a=1"), (b"content-length", b"3")], id="set-cookie"),
]


@pytest.mark.parametrize("fields", LENGTH_BLOCKS)
@pytest.mark.parametrize("method", [REQUEST, HEAD], ids=["GET", "HEAD"])
@pytest.mark.parametrize("body", [b"abc", b"ab"])
def test_a_response_blocks_content_length_is_h2s(fields: list[Any], method: list[Any], body: bytes) -> None:
    """The same events (headers included) or error, the same expected length, the body held to it."""
    pair = Pair()
    pair.open(1, method, True, True)
    events = pair.headers(1, _blocks(pair, [(b":status", b"200"), *fields]), False)
    if events[0][0] != "raised" and method is REQUEST:
        pair.data(1, body, True)


def test_trailers_with_a_content_length_are_h2s() -> None:
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    pair.headers(1, _blocks(pair, [(b":status", b"200"), (b"content-length", b"2")]), False)
    pair.data(1, b"ab", False)
    events = pair.headers(1, _blocks(pair, [(b"x-sum", b"1"), (b"content-length", b"9")]), True)
    assert [event[0] for event in events] == ["TrailersReceived", "StreamEnded"]


# -- the next stream id ---------------------------------------------------------------


def _open(core: H2Core) -> int:
    return core.open_stream(list(REQUEST), True)


def test_stream_ids_are_h2s_next_ids() -> None:
    core = H2Core()
    core.initiate()
    for expected in (1, 3, 5, 7):
        assert core.next_stream_id == expected  # h2's own answer
        assert _open(core) == expected


def test_the_last_client_stream_id_is_used_then_the_connection_is_out_of_ids() -> None:
    core = H2Core()
    core.initiate()
    _open(core)
    # As if the ids up to here were used (RFC 9113 section 5.1.1: 2**31-1 is the last).
    core._h2.highest_outbound_stream_id = LAST_ID - 4
    assert _open(core) == LAST_ID - 2
    assert _open(core) == LAST_ID
    assert core.ids_exhausted
    with pytest.raises(ConnectionTerminated) as caught:
        _open(core)
    assert caught.value.retryable


# -- the open-stream count after a read that stopped part-way --------------------------


def test_a_read_that_raises_part_way_still_forgets_the_open_stream_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The count is forgotten once per read, after the frames: also when splitting them raised."""
    core = H2Core()
    core.initiate()
    _open(core)
    assert core.can_open_stream()  # the count is cached now
    assert core._open_count._count is not None

    def broken_split(data: Any) -> Any:
        core._h2.streams[1].state_machine.state = h2.stream.StreamState.CLOSED  # a step that moved a stream
        raise RuntimeError("an unforeseen failure in the splitter")

    monkeypatch.setattr(core._frames, "receive", broken_split)
    with pytest.raises(RuntimeError):
        core.receive(b"\x00" * 9)
    assert core._open_count._count is None  # the next question walks h2's streams again
    assert core._open_count.get() == core._h2.open_outbound_streams == 0


# -- a response's last DATA frame: windows and content-length written out ---------------


@pytest.fixture(params=[True, False], ids=["accounting-written-out", "h2-calls"])
def accounting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """``receive_plain_data`` with h2's window and content-length steps written out, and with h2's calls."""
    monkeypatch.setattr(h2_internals_receive, "_ACCOUNTING_WRITTEN_OUT", request.param)
    yield request.param


def test_the_accounting_is_written_out_where_h2s_steps_change_only_that() -> None:
    assert h2_internals_receive.accounting_written_out() is True
    assert h2_internals_receive._ACCOUNTING_WRITTEN_OUT is True


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        ([], b"abc"),
        ([(b"content-length", b"3")], b"abc"),
        ([(b"content-length", b"3")], b"ab"),  # short of its length (RFC 9110 8.6)
        ([(b"content-length", b"3")], b"abcd"),  # past it
        ([(b"content-length", b"0")], b"a"),
    ],
)
@pytest.mark.parametrize("in_two", [False, True], ids=["one-frame", "two-frames"])
def test_the_last_data_frame_is_accounted_as_h2_does(
    accounting: bool, fields: list[Any], body: bytes, in_two: bool
) -> None:
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    pair.headers(1, _blocks(pair, [(b":status", b"200"), *fields]), False)
    if in_two:
        pair.data(1, body[:1], False)
        body = body[1:]
    pair.data(1, body, True)


@pytest.mark.parametrize("which", ["stream", "connection"])
@pytest.mark.parametrize("room", [4, 5])
def test_a_last_data_frame_over_a_window_is_refused_as_h2_does(
    accounting: bool, which: str, room: int
) -> None:
    """A window with ``room`` bytes left and a 5-byte frame: accepted at 5, h2's error at 4 (RFC 9113 6.9)."""
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    pair.headers(1, _blocks(pair, [(b":status", b"200")]), False)
    for conn in (pair.fast, pair.plain):
        owner = conn.streams[1] if which == "stream" else conn
        window = (
            owner._inbound_window_manager if which == "stream" else owner._inbound_flow_control_window_manager
        )
        window.current_window_size = room
    pair.compare()
    events = pair.data(1, b"12345", True)
    assert (events[0][0] == "raised") is (room < 5)


# -- hyper's own per-request objects ----------------------------------------------------


def test_a_stream_state_starts_with_every_declared_default() -> None:
    """The written-out ``__init__`` sets each dataclass field as the generated one would."""
    window = FlowControlManager(65535)
    state = StreamState(9, window)
    for item in dataclasses.fields(StreamState):
        value = getattr(state, item.name)
        if item.name in ("stream_id", "window"):
            continue
        if item.name == "request_ended":
            assert value is False  # SENDING
        elif item.default_factory is not dataclasses.MISSING:
            fresh = item.default_factory()
            assert type(value) is type(fresh), item.name
            assert (vars(value) == vars(fresh)) if hasattr(fresh, "__dict__") else (value == fresh)
        else:
            assert value == item.default, item.name
    assert (state.stream_id, state.window) == (9, window)
    # Two states never share their mutable parts.
    other = StreamState(9, window)
    assert other.data is not state.data and other.upload is not state.upload


@pytest.mark.parametrize(
    ("request_state", "response_state"),
    [(request_state, response_state) for request_state in RequestState for response_state in ResponseState],
)
def test_a_stream_states_derived_fields_follow_its_states(
    request_state: RequestState, response_state: ResponseState
) -> None:
    state = StreamState(
        1, FlowControlManager(65535), request=request_state, response=response_state, head=True
    )
    assert state.request_ended is (request_state is not RequestState.SENDING)
    assert state.ended is (response_state in (ResponseState.COMPLETE, ResponseState.ENDED_UNANSWERED))
    assert state.complete is (response_state is ResponseState.COMPLETE)
    assert state.head is True


def test_the_tables_size_limit_field_follows_its_maxsize() -> None:
    table = CountingHeaderTable()
    assert table.size_limit == table.maxsize == 4096
    table.add(b"x-name", b"a" * 100)
    for limit in (200, 0, 4096, 65536, 100):
        table.maxsize = limit
        assert table.size_limit == table.maxsize == limit
    decoder = MemoDecoder(65536, 4096)
    decoder.header_table_size = 1000  # hpack's own way in: the setter
    assert decoder.header_table.size_limit == decoder.header_table.maxsize == 1000
