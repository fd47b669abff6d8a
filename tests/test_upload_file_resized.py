"""A file body that changes size while it is uploaded over HTTP/2: today's documented behaviour, pinned.

A file body's length is measured when the request is made (fstat, see
:func:`hyper.common.body.prepare_body`) and sent as ``content-length``. The
upload then reads the file to its end, counting against that length
(:class:`hyper.common.body.LengthCounter`):

- a file that grew: the block that would go beyond the declared length is
  refused before any of it is sent, the stream is reset (RST_STREAM CANCEL)
  and ``request()`` raises :class:`BodyLengthError`; the server saw only
  whole blocks before it, never END_STREAM;
- a file that shrank: every byte read is sent, then the short body resets
  the stream instead of ending it, and :class:`BodyLengthError` again.

A scripted server records what it received (a real server does not tell
the client whether it saw RST_STREAM or END_STREAM).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import h2.events
import h2.settings
import pytest

from hyper import HTTP20Connection
from hyper.common.body import READ_BLOCK
from hyper.exceptions import BodyLengthError
from tests.scripted import Peer, ScriptedServer

S = h2.settings.SettingCodes
ORIGINAL = bytes((i * 11 + i // 509) % 256 for i in range(READ_BLOCK + 50_000))


class ResizedAfterFirstRead(io.BufferedReader):
    """A binary file that another writer resizes right after the upload's first read."""

    def __init__(self, path: Path, resize: Any) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._resize = resize
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.reads += 1
        if self.reads == 1:
            self._resize()
        return data


def upload_recorded(body: Any) -> tuple[bytes, list[str], BaseException | None]:
    """POST ``body``; return the bytes the server got, its stream events in order, and the error raised."""
    got = bytearray()
    events: list[str] = []

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        peer.collect_upload(sid, got, events)
        peer.drain_until_closed()

    error: BaseException | None = None
    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
            try:
                conn.request("POST", "/", body=body)
            except BodyLengthError as exc:
                error = exc
    return bytes(got), events, error


def test_a_file_that_grows_mid_upload(tmp_path: Path) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(ORIGINAL)

    def grow() -> None:
        with path.open("ab") as writer:
            writer.write(b"appended later")

    with ResizedAfterFirstRead(path, grow) as body:
        got, events, error = upload_recorded(body)
    assert isinstance(error, BodyLengthError)
    assert (error.expected, error.actual) == (len(ORIGINAL), len(ORIGINAL) + len(b"appended later"))
    # The first block went out whole; the second, which would overrun the
    # declared length, not a byte of it.
    assert got == ORIGINAL[:READ_BLOCK]
    assert events[-1] == "StreamReset"
    assert "StreamEnded" not in events


def test_a_file_that_shrinks_mid_upload(tmp_path: Path) -> None:
    path = tmp_path / "shrinking.bin"
    path.write_bytes(ORIGINAL)
    kept = READ_BLOCK + 1000

    def shrink() -> None:
        os.truncate(path, kept)

    with ResizedAfterFirstRead(path, shrink) as body:
        got, events, error = upload_recorded(body)
    assert isinstance(error, BodyLengthError)
    assert (error.expected, error.actual) == (len(ORIGINAL), kept)
    assert got == ORIGINAL[:kept]  # every byte read was sent ...
    assert events[-1] == "StreamReset"  # ... and the short body reset, not ended
    assert "StreamEnded" not in events


@pytest.mark.parametrize("resize", ["grow", "shrink"])
def test_the_connection_stays_usable(tmp_path: Path, resize: str) -> None:
    """The failed upload resets only its stream: the next request on the connection works."""
    path = tmp_path / "body.bin"
    path.write_bytes(ORIGINAL)

    def change() -> None:
        if resize == "grow":
            with path.open("ab") as writer:
                writer.write(b"more")
        else:
            os.truncate(path, 10)

    def script(peer: Peer) -> None:
        first = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == first, timeout=10)
        second = peer.wait_request()
        peer.respond(second.stream_id, body=b"still here")
        peer.drain_until_closed()

    with ScriptedServer(script, settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
            with ResizedAfterFirstRead(path, change) as body, pytest.raises(BodyLengthError):
                conn.request("POST", "/", body=body)
            assert conn.getresponse(conn.request("GET", "/")).read() == b"still here"
