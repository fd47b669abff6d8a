"""Frames in flight on streams we reset, in both modes (fast paths on, h2's public API only).

h2 drops a closed stream from its table whenever it counts open streams
(every new request does), and then takes HEADERS on it for a stream the
server opens: with push off that was TooManyStreamsError ("Max inbound
streams is 0"), and the whole connection failed. RFC 9113 section 5.1 says a
client that reset a stream must ignore what the server sent before it saw the
RST_STREAM; the header block must still be decoded (section 4.3), or the
HPACK tables drift apart. Each test runs in both modes, whatever
``HYPER_FAST_PATHS`` says for the rest of the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import h2.errors
import h2.events
import hyperframe.frame
import pytest

import hyper
from hyper import HTTP20Connection
from hyper.http20 import h2_internals
from tests.scripted import Peer, ScriptedServer


@pytest.fixture(params=["fast-paths", "public-api"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Connections built in the test use the fast paths, or h2's public API only."""
    fast = request.param == "fast-paths"
    if fast:
        problem = h2_internals.self_test()
        if problem is not None:
            pytest.skip(f"the fence keeps the fast paths off: {problem}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(h2_internals, "_enabled", fast)
        patch.setattr(h2_internals, "_problem", None if fast else "forced off by the test")
        yield request.param


def connect(server: ScriptedServer, timeout: object = 5) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout)  # type: ignore[arg-type]


def header_frames(peer: Peer, stream_id: int, fields: list[tuple[bytes, bytes]], *, pieces: int = 1) -> bytes:
    """HEADERS (+ CONTINUATIONs) with END_STREAM for ``fields``, encoded by the server's own encoder.

    Sent raw because the server's h2 refuses to send on a stream it saw reset;
    its encoder is used so the HPACK state stays that of a real server.
    """
    block = peer.h2.encoder.encode(fields)
    size = -(-len(block) // pieces)
    chunks = [block[i : i + size] for i in range(0, len(block), size)]
    first = hyperframe.frame.HeadersFrame(stream_id, data=chunks[0])
    first.flags.add("END_STREAM")
    frames = [first]
    frames += [hyperframe.frame.ContinuationFrame(stream_id, data=chunk) for chunk in chunks[1:]]
    frames[-1].flags.add("END_HEADERS")
    return b"".join(frame.serialize() for frame in frames)


def data_frame(stream_id: int, data: bytes) -> bytes:
    return hyperframe.frame.DataFrame(stream_id, data=data).serialize()


def wait_reset(peer: Peer, stream_id: int) -> None:
    """Wait for our RST_STREAM: what follows was 'in flight' when the client reset."""
    peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id)


@pytest.mark.parametrize("pieces", [1, 3])
def test_trailers_and_data_after_our_reset_are_ignored(mode: str, pieces: int) -> None:
    """A response closed early: its late DATA and trailers do not fail the next request."""

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"partial", end_stream=False)
        wait_reset(peer, first.stream_id)
        second = peer.wait_request()  # h2 on the client has dropped the first stream by now
        # The late trailers add x-late to the dynamic table; the second response
        # uses that entry, so a block not decoded shows as a wrong header.
        late = header_frames(peer, first.stream_id, [(b"x-late", b"trailer value")], pieces=pieces)
        peer.send_raw(data_frame(first.stream_id, b"late body") + late)
        peer.respond(second.stream_id, headers=[(b"x-late", b"trailer value")], body=b"second")
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        with connect(server) as conn:
            first = conn.request("GET", "/first")
            response = conn.getresponse(first)
            assert response.read(3) == b"par"
            response.close()  # unfinished: RST_STREAM(CANCEL)
            second = conn.request("GET", "/second")
            response = conn.getresponse(second)
            assert response.read() == b"second"
            assert response.headers.get("x-late") == [b"trailer value"]
            # The connection is still usable afterwards.
            assert conn.ping(b"12345678") >= 0


def test_response_headers_after_a_timed_out_stream_are_ignored(mode: str) -> None:
    """The whole response of a stream we gave up on (read timeout) arrives after our reset."""
    released = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        wait_reset(peer, first.stream_id)  # the client timed out and reset it
        second = peer.wait_request()
        peer.send_raw(header_frames(peer, first.stream_id, [(b":status", b"200"), (b"x-stale", b"1")]))
        peer.respond(second.stream_id, body=b"fresh")
        released.append(True)
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        # The short read timeout is the point of the first wait; the second
        # wait gets a long one.
        with connect(server, timeout=(5, 0.2)) as conn:
            first = conn.request("GET", "/slow")
            with pytest.raises(hyper.ReadTimeout):
                conn.getresponse(first)
            conn.read_timeout = 10
            second = conn.request("GET", "/fast")
            assert conn.getresponse(second).read() == b"fresh"
    assert released


def test_headers_on_a_stream_the_server_ended_still_break_the_connection(mode: str) -> None:
    """Only frames on streams we reset are forgiven: after END_STREAM, HEADERS is STREAM_CLOSED."""
    goaway: list[int] = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"done")
        second = peer.wait_request()  # the client dropped the first, finished stream by now
        peer.send_raw(header_frames(peer, first.stream_id, [(b"x-again", b"1")]))
        event = peer.wait_for(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        goaway.append(event.error_code)
        del second

    with ScriptedServer(script) as server:
        with connect(server) as conn:
            first = conn.request("GET", "/first")
            assert conn.getresponse(first).read() == b"done"
            second = conn.request("GET", "/second")
            with pytest.raises(hyper.ProtocolError) as caught:
                conn.getresponse(second)
    assert caught.value.error_code == h2.errors.ErrorCodes.STREAM_CLOSED
    assert "already ended" in str(caught.value)
    assert goaway == [h2.errors.ErrorCodes.STREAM_CLOSED]


def test_a_broken_header_block_on_a_reset_stream_is_still_a_compression_error(mode: str) -> None:
    """The block of a forgotten stream is decoded, not skipped: bad HPACK ends the connection."""
    goaway: list[int] = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"partial", end_stream=False)
        wait_reset(peer, first.stream_id)
        peer.wait_request()
        # An indexed field far past the static and (empty) dynamic table.
        bad = hyperframe.frame.HeadersFrame(
            first.stream_id, data=b"\xff\x80\x01", flags=["END_HEADERS", "END_STREAM"]
        )
        peer.send_raw(bad.serialize())
        goaway.append(peer.wait_for(lambda e: isinstance(e, h2.events.ConnectionTerminated)).error_code)

    with ScriptedServer(script) as server:
        with connect(server) as conn:
            first = conn.request("GET", "/first")
            response = conn.getresponse(first)
            response.close()
            second = conn.request("GET", "/second")
            with pytest.raises(hyper.ProtocolError) as caught:
                conn.getresponse(second)
    assert caught.value.error_code == h2.errors.ErrorCodes.COMPRESSION_ERROR
    assert goaway == [h2.errors.ErrorCodes.COMPRESSION_ERROR]


def test_headers_inside_another_header_block_stay_a_protocol_error(mode: str) -> None:
    """HEADERS on a reset stream while another block awaits its CONTINUATION: RFC 9113 6.10."""
    goaway: list[int] = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"partial", end_stream=False)
        wait_reset(peer, first.stream_id)
        second = peer.wait_request()
        opened = hyperframe.frame.HeadersFrame(
            second.stream_id, data=peer.h2.encoder.encode([(b":status", b"200")])
        )
        late = hyperframe.frame.HeadersFrame(
            first.stream_id,
            data=peer.h2.encoder.encode([(b"x-late", b"1")]),
            flags=["END_HEADERS", "END_STREAM"],
        )
        peer.send_raw(opened.serialize() + late.serialize())
        goaway.append(peer.wait_for(lambda e: isinstance(e, h2.events.ConnectionTerminated)).error_code)

    with ScriptedServer(script) as server:
        with connect(server) as conn:
            first = conn.request("GET", "/first")
            conn.getresponse(first).close()
            second = conn.request("GET", "/second")
            with pytest.raises(hyper.ProtocolError) as caught:
                conn.getresponse(second)
    assert caught.value.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert goaway == [h2.errors.ErrorCodes.PROTOCOL_ERROR]
