"""Review of upload runs (upload3): sizes at the edges, END_STREAM, declared lengths.

A scripted h2 server records every DATA frame of an upload (its size and
END_STREAM flag) and grants exactly the window the test says, never more:
h2 fails the connection on any frame beyond a window (RFC 9113 section
6.9.1) or beyond SETTINGS_MAX_FRAME_SIZE (section 4.2).
"""

from __future__ import annotations

import io
from typing import Any

import h2.events
import h2.settings
import pytest

from hyper import HTTP20Connection
from hyper.common.body import READ_BLOCK
from hyper.exceptions import BodyLengthError
from hyper.http20.session_upload import SEND_BATCH
from tests.scripted import Peer, ScriptedServer

S = h2.settings.SettingCodes
BODY = bytes((i * 5 + i // 263) % 256 for i in range(3 * SEND_BATCH + 40_000))


def upload(
    body: Any, size: int, headers: dict[str | bytes, str | bytes | int] | None = None
) -> tuple[bytes, list[tuple[int, bool]]]:
    """Upload ``body`` to a server whose windows fit ``size`` bytes exactly; return what it got, its frames.

    The stream's window (SETTINGS_INITIAL_WINDOW_SIZE) and the connection's
    (widened by WINDOW_UPDATE) fit the body exactly, so after the last body
    byte both are at zero: END_STREAM must still go out, on an empty DATA
    frame that no window limits (RFC 9113 section 6.9.1).
    """
    got = bytearray()
    frames: list[tuple[int, bool]] = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"hi")
        request = peer.wait_request()
        sid = request.stream_id
        ended = request.stream_ended is not None
        if size > 65_535:
            peer.h2.increment_flow_control_window(size - 65_535)
            peer.flush()
        while not ended:
            event = peer.wait_for(
                lambda e: (
                    isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded, h2.events.StreamReset))
                    and e.stream_id == sid
                ),
                timeout=10,
            )
            if isinstance(event, h2.events.DataReceived):
                got.extend(event.data)
                frames.append((len(event.data), event.stream_ended is not None))
            else:
                ended = True
                if isinstance(event, h2.events.StreamReset):
                    frames.append((-1, False))  # the client reset the stream
                    peer.drain_until_closed()
                    return
        if request.stream_ended is not None:
            frames.append((0, True))  # END_STREAM on the HEADERS
        peer.respond(sid, body=b"ok")
        peer.drain_until_closed()

    settings: dict[int, int] = {S.INITIAL_WINDOW_SIZE: size}
    with ScriptedServer(script, settings=settings) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"hi"
            response = conn.getresponse(conn.request("POST", "/", body=body, headers=headers))
            assert response.read() == b"ok"
    return bytes(got), frames


SIZES = [1, 16_383, 16_384, 16_385, 65_535, SEND_BATCH, SEND_BATCH + 1, READ_BLOCK * 2 + 16_384, len(BODY)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["bytes", "BytesIO", "generator"])
def test_a_body_that_uses_both_windows_up_exactly_still_ends(size: int, kind: str) -> None:
    data = BODY[:size]
    body: Any = {
        "bytes": data,
        "BytesIO": io.BytesIO(data),
        "generator": (data[at : at + 77_777] for at in range(0, size, 77_777)),
    }[kind]
    got, frames = upload(body, size)
    assert got == data
    # Every frame full-size but the last of a run; END_STREAM once, last.
    assert all(0 < length <= 16_384 for length, _ in frames[:-1])
    assert [end for _, end in frames] == [False] * (len(frames) - 1) + [True]
    # END_STREAM on an empty DATA frame after the body, with both windows at zero.
    assert frames[-1] == (0, True)


def test_an_empty_body_ends_on_the_headers() -> None:
    for body in (b"", io.BytesIO(b""), iter([b"", b""])):
        got, frames = upload(body, 100)
        assert got == b""
        assert frames[-1][1]  # ended, and no byte was sent
        assert sum(length for length, _ in frames if length > 0) == 0


def test_a_body_shorter_than_its_content_length_is_reset_not_ended() -> None:
    """The server sees RST_STREAM after the bytes, never END_STREAM (which would claim a complete body)."""
    got = bytearray()
    events: list[str] = []

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(1 << 20)
        peer.flush()
        peer.collect_upload(sid, got, events)
        peer.drain_until_closed()

    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 1 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
            # Typed so: mypy refuses a plain dict[str, str] (see the review's report).
            declared: dict[str | bytes, str | bytes | int] = {"content-length": "300001"}
            with pytest.raises(BodyLengthError):
                conn.request("POST", "/", body=io.BytesIO(BODY[:300_000]), headers=declared)
    assert bytes(got) == BODY[:300_000]
    assert events[-1] == "StreamReset"
    assert "StreamEnded" not in events
