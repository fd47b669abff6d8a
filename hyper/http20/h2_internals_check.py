"""The fence's self-test: do h2's and hpack's internals still behave as hyper assumes?

:func:`self_test` drives two in-memory client connections, each with its own
h2 server, through the same exchange: one with h2's public API only, one
through every primitive of :mod:`hyper.http20.h2_internals`. The bytes each
client sends, the events it sees and its windows must agree; the RFC 9113
adaptations (GOAWAY that keeps the connection open, resetting a stream h2
left half-done, a HEAD request over ``Upgrade: h2c``) and the HPACK table
counters must do what hyper relies on, including what makes a decoded block
a function of the table's generation (those HPACK checks are in
:mod:`hyper.http20.h2_internals_check_hpack`, the state machine steps' in
:mod:`hyper.http20.h2_internals_check_steps`).
It takes a few milliseconds.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack

from . import h2_internals as fence
from .h2_internals_check_hpack import _check_hpack, _check_hpack_generations, _expect, _Mismatch
from .h2_internals_check_steps import check_steps

_DATA, _HEADERS, _RST_STREAM, _GOAWAY = 0x0, 0x1, 0x3, 0x7
_END_STREAM, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x4, 0x8, 0x20
_PROTOCOL_ERROR, _STREAM_CLOSED = 0x1, 0x5

_REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"fence.example"),
    (b":path", b"/check"),
    (b"user-agent", b"hyper-self-test"),
]


def self_test() -> str | None:
    """``None`` when every internal hyper uses exists and behaves; else what went wrong."""
    if fence.IMPORT_PROBLEM is not None:
        return fence.IMPORT_PROBLEM
    if fence._LITERAL_DECODER is None:
        return "hpack's Decoder._decode_literal no longer calls a module-level decode_huffman"
    step = "state machine steps"
    try:
        check_steps()
        step = "request and response"
        fast, server, buffer = _check_exchange()
        step = "GOAWAY and stream reset"
        _check_goaway_and_reset(fast, server, buffer)
        step = "HEAD over h2c"
        _check_head_upgrade()
        step = "HPACK tables"
        _check_hpack()
        step = "HPACK generations"
        _check_hpack_generations()
    except _Mismatch as exc:
        return f"self-test ({step}): {exc}"
    except Exception as exc:  # noqa: BLE001 - anything a changed internal may raise means "off"
        return f"self-test ({step}): {type(exc).__name__}: {exc}"
    return None


# -- wire helpers -------------------------------------------------------------------


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def _split(data: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """(type, flags, stream id, payload, whole frame) of each frame in ``data``."""
    frames, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 3], "big")
        end = offset + 9 + length
        stream_id = int.from_bytes(data[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
        payload = data[offset + 9 : end]
        frames.append((data[offset + 3], data[offset + 4], stream_id, payload, data[offset:end]))
        offset = end
    return frames


def _signature(event: Any) -> tuple[Any, ...]:
    """An h2 event as comparable plain values (nested events by their type)."""

    def plain(value: Any) -> Any:
        if isinstance(value, h2.events.Event):
            return type(value).__name__
        if isinstance(value, (list, tuple)):
            return tuple(plain(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((repr(k), plain(v)) for k, v in value.items()))
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        return value if value is None or isinstance(value, (int, str)) else repr(value)

    return (type(event).__name__, plain(dict(vars(event))))


# -- connections --------------------------------------------------------------------


def _client(adapted: bool) -> h2.connection.H2Connection:
    """A client configured as hyper's; ``adapted`` with the fenced adaptations and coders."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=True,
        )
    )
    if adapted:
        fence.install_adaptations(conn)
        encoder = hpack.Encoder()
        encoder.header_table = fence.CountingHeaderTable()

        def make_decoder(max_header_list_size: int, max_allowed_table_size: int) -> hpack.Decoder:
            decoder = fence.HuffmanMemoDecoder(max_header_list_size)
            decoder.max_allowed_table_size = max_allowed_table_size
            decoder.header_table = fence.CountingHeaderTable()
            return decoder

        fence.install_coders(conn, encoder, make_decoder)
    conn.initiate_connection()
    return conn


def _server() -> h2.connection.H2Connection:
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_connection()
    return server


def _feed(conn: h2.connection.H2Connection, buffer: Any, data: bytes) -> list[Any]:
    """Receive ``data`` the way hyper's frame splitter does, through the fenced primitives."""
    events: list[Any] = []
    for kind, flags, stream_id, payload, whole in _split(data):
        if not buffer.headers_pending:
            if kind == _DATA and payload and not flags & _PADDED:
                stream = fence.receiving_stream(conn, stream_id, needs_headers=True)
                if stream is not None:
                    if flags & _END_STREAM:
                        events += fence.receive_plain_data(conn, stream, payload, True)
                    else:
                        fence.consume_plain_data(conn, stream, len(payload))
                        events.append(
                            h2.events.DataReceived(
                                stream_id=stream_id, data=payload, flow_controlled_length=len(payload)
                            )
                        )
                    continue
            if kind == _HEADERS and flags & _END_HEADERS and not flags & (_PADDED | _PRIORITY):
                stream = fence.receiving_stream(conn, stream_id, needs_headers=False)
                if stream is not None:
                    events += fence.receive_plain_headers(conn, stream, payload, bool(flags & _END_STREAM))
                    continue
        frame = buffer.feed(whole)
        if frame is not None:
            events += fence.receive_frame(conn, frame)
    return events


def _new_buffer(conn: h2.connection.H2Connection) -> Any:
    buffer = fence.SlowFrameBuffer(server=False)
    buffer.max_frame_size = conn.max_inbound_frame_size
    return buffer


# -- the checks ---------------------------------------------------------------------


def _check_exchange() -> tuple[h2.connection.H2Connection, h2.connection.H2Connection, Any]:
    """One request with a body and its response, through both clients; all must agree."""
    plain, fast = _client(False), _client(True)
    plain_server, fast_server = _server(), _server()
    buffer = _new_buffer(fast)
    plain_server.receive_data(plain.data_to_send())
    fast_server.receive_data(fast.data_to_send())
    handshake = fast_server.data_to_send()
    _expect(plain_server.data_to_send() == handshake, "servers disagree")
    _expect(
        [_signature(e) for e in plain.receive_data(handshake)]
        == [_signature(e) for e in _feed(fast, buffer, handshake)],
        "SETTINGS events differ",
    )
    _expect(plain.data_to_send() == fast.data_to_send(), "SETTINGS ACKs differ")

    plain.send_headers(1, _REQUEST, end_stream=False)
    block = fence.open_request_stream(fast, 1, _REQUEST, False)
    _expect(block is not None, "a request stream could not be opened")
    assert block is not None
    sent = _frame(_HEADERS, _END_HEADERS, 1, block)
    _expect(plain.data_to_send() == sent, "request HEADERS differ")
    body = b"fence" * 20
    plain.send_data(1, body)
    _expect(fence.take_send_credit(fast, 1, len(body)), "send credit refused")
    sent = _frame(_DATA, 0, 1, body)
    _expect(plain.data_to_send() == sent, "request DATA differs")
    _expect(plain.local_flow_control_window(1) == fast.local_flow_control_window(1), "send windows differ")
    plain.end_stream(1)
    fast.end_stream(1)
    _expect(plain.data_to_send() == fast.data_to_send(), "END_STREAM differs")
    for server in (plain_server, fast_server):
        server.receive_data(_frame(_HEADERS, _END_HEADERS, 1, block) + _frame(_DATA, 0, 1, body))
        server.receive_data(_frame(_DATA, _END_STREAM, 1, b""))
        server.send_headers(1, [(b":status", b"200"), (b"content-length", b"15"), (b"server", b"fence")])
        server.send_data(1, b"hello")
        server.send_data(1, b"world")
        server.send_data(1, b"!!!!!", end_stream=True)
    response = fast_server.data_to_send()
    _expect(plain_server.data_to_send() == response, "servers disagree")
    plain_events = [_signature(e) for e in plain.receive_data(response)]
    _expect(plain_events == [_signature(e) for e in _feed(fast, buffer, response)], "response events differ")
    _expect([e[0] for e in plain_events][-1] == "StreamEnded", "the response did not end")
    plain.acknowledge_received_data(15, 1)
    fast.acknowledge_received_data(15, 1)
    _expect(plain.data_to_send() == fast.data_to_send(), "receive windows differ")
    _expect(
        fast.remote_flow_control_window(1) == plain.remote_flow_control_window(1), "stream windows differ"
    )

    # Content-length is checked on the fast path as h2 does (RFC 9113 8.1.1).
    for conn in (plain, fast):
        conn.send_headers(3, _REQUEST, end_stream=True)
        conn.data_to_send()
    short = _frame(_DATA, _END_STREAM, 3, b"abc")
    for server in (plain_server, fast_server):
        server.receive_data(_frame(_HEADERS, _END_HEADERS | _END_STREAM, 3, block))
        server.send_headers(3, [(b":status", b"200"), (b"content-length", b"10")])
    head = fast_server.data_to_send()
    plain_server.data_to_send()
    plain.receive_data(head)
    _feed(fast, buffer, head)
    stream = fence.receiving_stream(fast, 3, needs_headers=True)
    _expect(stream is not None, "a receiving stream was not recognised")
    for conn in (plain, fast):
        try:
            if conn is plain:
                plain.receive_data(short)
            else:
                fence.receive_plain_data(fast, stream, b"abc", True)
        except h2.exceptions.InvalidBodyLengthError:
            continue
        raise _Mismatch("a short body was not refused")
    return fast, fast_server, buffer


def _check_goaway_and_reset(
    fast: h2.connection.H2Connection, server: h2.connection.H2Connection, buffer: Any
) -> None:
    """GOAWAY keeps the connection open with its queued frames; a reset stream stays reset."""
    for stream_id in (5, 7):
        block = fence.open_request_stream(fast, stream_id, _REQUEST, True)
        assert block is not None
        server.receive_data(_frame(_HEADERS, _END_HEADERS | _END_STREAM, stream_id, block))
    fast.ping(b"fence-ok")
    queued = fast.data_to_send()
    fast.ping(b"fence-ok")  # queued again, in front of the GOAWAY
    server.send_headers(5, [(b":status", b"204")], end_stream=True)
    goaway = _frame(_GOAWAY, 0, 0, (5).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    events = _feed(fast, buffer, goaway + server.data_to_send())
    _expect(
        [type(e).__name__ for e in events] == ["ConnectionTerminated", "ResponseReceived", "StreamEnded"],
        f"GOAWAY: {[type(e).__name__ for e in events]}",
    )
    _expect(fast.data_to_send() == queued, "GOAWAY dropped the frames queued before it")
    fence.reset_closed_stream(fast, 7)
    _expect(
        [(k, s, p) for k, _, s, p, _ in _split(fast.data_to_send())]
        == [(_RST_STREAM, 7, _PROTOCOL_ERROR.to_bytes(4, "big"))],
        "stream reset not sent",
    )
    _expect(not fence.receiving_stream(fast, 7, needs_headers=False), "a reset stream still receives")
    events = _feed(fast, buffer, _frame(_DATA, 0, 7, b"late"))
    _expect(
        not events
        and [(k, s, p) for k, _, s, p, _ in _split(fast.data_to_send())]
        == [(_RST_STREAM, 7, _STREAM_CLOSED.to_bytes(4, "big"))],
        "a frame on a reset stream was not answered with STREAM_CLOSED",
    )
    _expect(fence.has_stream(fast, 7) and not fence.has_stream(fast, 9), "stream bookkeeping differs")


def _check_head_upgrade() -> None:
    """After mark_head_request, a HEAD response's content-length needs no body."""
    client = _client(False)
    client.data_to_send()
    settings = client.initiate_upgrade_connection()
    fence.mark_head_request(client, 1)
    fence.set_header_list_limit(client, 65536)
    _expect(client.decoder.max_header_list_size == 65536, "header list limit not applied")
    adapted = _client(True)
    _expect(isinstance(adapted.decoder, fence.HuffmanMemoDecoder), "coders not replaced")
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_upgrade_connection(settings)
    server.send_headers(1, [(b":status", b"200"), (b"content-length", b"5")], end_stream=True)
    client.data_to_send()
    events = client.receive_data(server.data_to_send())
    _expect(any(isinstance(e, h2.events.StreamEnded) for e in events), "HEAD response not ended")
