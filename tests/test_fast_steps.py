"""The prepared state machine steps do exactly what h2's ``process_input`` does.

:mod:`hyper.http20.h2_internals_steps` runs h2's own transition functions
through entries looked up once, instead of h2's generic ``process_input``.
These tests feed the same frames, and open the same requests, through the
fast paths and through h2's public API on two identical connections, and
compare everything after every step: events, bytes to send, every flag of
every stream's state machine, windows and content-length counts. And a
step that no longer matches h2 turns the fast paths off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest

from hyper.http20 import h2_internals, h2_internals_steps
from hyper.http20.h2_adapters import new_client_connection
from hyper.http20.h2_internals_check import _signature
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark

pytestmark = pytest.mark.usefixtures("fast_paths_on")

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"steps.example"), (b":path", b"/")]
HEAD = [(b":method", b"HEAD"), *REQUEST[1:]]


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


class Pair:
    """A fast-path client and a public-API client, each with its own server, in step."""

    def __init__(self) -> None:
        self.fast = new_client_connection()
        self.plain = h2.connection.H2Connection(self.fast.config)
        self.servers = []
        for client in (self.fast, self.plain):
            client.initiate_connection()
            server = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=False, header_encoding=None)
            )
            server.initiate_connection()
            server.receive_data(client.data_to_send())
            client.receive_data(server.data_to_send())
            server.receive_data(client.data_to_send())
            self.servers.append(server)
        self.compare()

    def open(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool, slot_checked: bool
    ) -> None:
        if slot_checked:
            # What the caller does first (H2Core.can_open_stream, under the
            # same lock): h2's count, which also drops closed streams.
            assert self.fast.open_outbound_streams < self.fast.remote_settings.max_concurrent_streams
        block = h2_internals.open_request_stream(self.fast, stream_id, headers, end_stream, slot_checked)
        assert block is not None
        flags = 0x4 | (0x1 if end_stream else 0)
        fast_bytes = _frame(0x1, flags, stream_id, block)
        self.plain.send_headers(stream_id, headers, end_stream=end_stream)
        assert self.plain.data_to_send() == fast_bytes
        for server in self.servers:
            server.receive_data(fast_bytes)
        self.compare()

    def headers(self, stream_id: int, block: bytes, end_stream: bool) -> list[Any]:
        stream = h2_internals.receiving_stream(self.fast, stream_id, needs_headers=False)
        assert stream is not None
        return self._both(
            lambda: h2_internals.receive_plain_headers(self.fast, stream, block, end_stream),
            _frame(0x1, 0x4 | (0x1 if end_stream else 0), stream_id, block),
        )

    def data(self, stream_id: int, payload: bytes, end_stream: bool) -> list[Any]:
        stream = h2_internals.receiving_stream(self.fast, stream_id, needs_headers=False)
        assert stream is not None
        return self._both(
            lambda: h2_internals.receive_plain_data(self.fast, stream, payload, end_stream),
            _frame(0x0, 0x1 if end_stream else 0, stream_id, payload),
        )

    def _both(self, fast_step: Any, frame: bytes) -> list[Any]:
        """The step both ways: the same events, or the same error; then the same state."""
        outcomes = []
        for run in (fast_step, lambda: self.plain._receive_frame(_parse(frame))):
            try:
                outcomes.append([_signature(event) for event in run()])
            except h2.exceptions.ProtocolError as exc:
                outcomes.append([("raised", type(exc).__name__)])
        assert outcomes[0] == outcomes[1]
        self.compare()
        return outcomes[0]

    def compare(self) -> None:
        assert _state(self.fast) == _state(self.plain)
        assert self.fast.data_to_send() == self.plain.data_to_send()


def _parse(frame: bytes) -> Any:
    import hyperframe.frame

    parsed, length = hyperframe.frame.Frame.parse_frame_header(memoryview(frame[:9]))
    parsed.parse_body(memoryview(frame[9 : 9 + length]))
    return parsed


def _state(conn: h2.connection.H2Connection) -> tuple[Any, ...]:
    """Everything h2 keeps that the steps touch, as plain values."""
    return (
        conn.state_machine.state,
        conn.highest_outbound_stream_id,
        conn._inbound_flow_control_window_manager.current_window_size,
        sorted(
            (
                stream_id,
                sorted(vars(stream.state_machine).items(), key=repr).__repr__(),
                stream.request_method,
                stream._authority,
                stream._expected_content_length,
                stream._actual_content_length,
                stream._inbound_window_manager.current_window_size,
            )
            for stream_id, stream in conn.streams.items()
        ),
    )


def _response(server: h2.connection.H2Connection, stream_id: int, fields: list[tuple[bytes, bytes]]) -> bytes:
    """The header block ``server`` encodes for ``fields`` (both servers stay in step)."""
    block: bytes = server.encoder.encode(fields)
    return block


def _blocks(pair: Pair, fields: list[tuple[bytes, bytes]]) -> bytes:
    blocks = {_response(server, 0, fields) for server in pair.servers}
    assert len(blocks) == 1
    return blocks.pop()


# -- exchanges this module and tests/test_fused_steps.py both run, each Pair checked at every step --


def response_in_parts(request_ends: bool, slot_checked: bool) -> None:
    """A request, then its response: headers with a content-length, the body in two DATA frames."""
    pair = Pair()
    pair.open(1, REQUEST, request_ends, slot_checked)
    events = pair.headers(1, _blocks(pair, [(b":status", b"200"), (b"content-length", b"6")]), False)
    assert [e[0] for e in events] == ["ResponseReceived"]
    pair.data(1, b"abc", False)
    events = pair.data(1, b"def", True)
    assert [e[0] for e in events] == ["DataReceived", "StreamEnded"]


def informational_then_final(request_ends: bool) -> None:
    """A 103 with a link, then the final response and its one-byte body."""
    pair = Pair()
    pair.open(1, REQUEST, request_ends, True)
    events = pair.headers(1, _blocks(pair, [(b":status", b"103"), (b"link", b"</a>")]), False)
    assert [e[0] for e in events] == ["InformationalResponseReceived"]
    pair.headers(1, _blocks(pair, [(b":status", b"200")]), False)
    pair.data(1, b"x", True)


def content_length_against_body(length: bytes, body: bytes) -> None:
    """A body that ends short of, past or at its content-length: refused unless they match."""
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    pair.headers(1, _blocks(pair, [(b":status", b"200"), (b"content-length", length)]), False)
    events = pair.data(1, body, True)
    assert (events[0][0] == "raised") is (length != b"3")


def head_response_without_body() -> None:
    """A HEAD's response: a content-length of 500 and END_STREAM on its headers (RFC 9110 9.3.2)."""
    pair = Pair()
    pair.open(1, HEAD, True, True)
    events = pair.headers(1, _blocks(pair, [(b":status", b"200"), (b"content-length", b"500")]), True)
    assert [e[0] for e in events] == ["ResponseReceived", "StreamEnded"]


def data_before_the_response_headers() -> None:
    """DATA before any response headers: a protocol error (RFC 9113 8.1)."""
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    assert pair.data(1, b"early", True) == [("raised", "ProtocolError")]


def many_streams_in_flight(request_ends: Callable[[int], bool]) -> Pair:
    """Twenty requests open at once, all answered with headers, then their bodies in reverse order."""
    pair = Pair()
    for stream_id in range(1, 41, 2):
        pair.open(stream_id, REQUEST, request_ends(stream_id), True)
    for stream_id in range(1, 41, 2):
        pair.headers(stream_id, _blocks(pair, [(b":status", b"200")]), False)
    for stream_id in range(39, 0, -2):
        pair.data(stream_id, b"z" * stream_id, True)
    return pair


CONTENT_LENGTH_CASES = [(b"10", b"abc"), (b"2", b"abc"), (b"3", b"abc")]


@pytest.mark.parametrize("slot_checked", [False, True])
@pytest.mark.parametrize("request_ends", [True, False])
def test_a_response_in_headers_data_and_end(slot_checked: bool, request_ends: bool) -> None:
    response_in_parts(request_ends, slot_checked)


def test_headers_that_end_the_stream_and_trailers() -> None:
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    events = pair.headers(1, _blocks(pair, [(b":status", b"204")]), True)
    assert [e[0] for e in events] == ["ResponseReceived", "StreamEnded"]
    pair.open(3, REQUEST, True, True)
    pair.headers(3, _blocks(pair, [(b":status", b"200")]), False)
    pair.data(3, b"body", False)
    events = pair.headers(3, _blocks(pair, [(b"x-trailer", b"1")]), True)
    assert [e[0] for e in events] == ["TrailersReceived", "StreamEnded"]


def test_trailers_without_end_stream_are_refused_alike() -> None:
    pair = Pair()
    pair.open(1, REQUEST, True, False)
    pair.headers(1, _blocks(pair, [(b":status", b"200")]), False)
    assert pair.headers(1, _blocks(pair, [(b"x-trailer", b"1")]), False) == [("raised", "ProtocolError")]


def test_informational_then_final_response() -> None:
    informational_then_final(request_ends=False)


@pytest.mark.parametrize(("length", "body"), CONTENT_LENGTH_CASES)
def test_content_length_is_held_alike(length: bytes, body: bytes) -> None:
    content_length_against_body(length, body)


def test_head_response_with_content_length_and_no_body() -> None:
    head_response_without_body()


def test_data_before_the_response_headers_is_refused_alike() -> None:
    data_before_the_response_headers()


def test_many_streams_in_flight_with_the_slot_already_checked() -> None:
    pair = many_streams_in_flight(lambda stream_id: True)
    assert pair.fast.open_outbound_streams == pair.plain.open_outbound_streams == 0


def test_the_slot_check_is_h2s_when_not_done_by_the_caller() -> None:
    conn = new_client_connection()
    conn.initiate_connection()
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    server.receive_data(conn.data_to_send())
    conn.receive_data(server.data_to_send())
    assert conn.remote_settings.max_concurrent_streams == 1
    assert h2_internals.open_request_stream(conn, 1, REQUEST, False) is not None
    with pytest.raises(h2.exceptions.TooManyStreamsError):
        h2_internals.open_request_stream(conn, 3, REQUEST, False)


def test_a_step_that_no_longer_matches_h2_turns_the_fast_paths_off(monkeypatch: pytest.MonkeyPatch) -> None:
    state = h2_internals_steps.StreamState.OPEN
    broken = dict(h2_internals_steps._RECV_DATA)
    broken[state] = (None, state)  # no DataReceived event, no check of the headers
    monkeypatch.setattr(h2_internals_steps, "_RECV_DATA", broken)
    problem = h2_internals.self_test()
    assert problem is not None and "state machine steps" in problem and "RECV_DATA" in problem


def test_the_steps_pass_the_self_test() -> None:
    assert h2_internals.self_test() is None
