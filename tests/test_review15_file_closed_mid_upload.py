"""review15: a file body whose object is closed (and its descriptor number reused) while it is uploaded.

An in-place upload (:mod:`hyper.http20.session_file_upload`) takes the
file's descriptor number once, when the upload starts
(:func:`hyper.common.file_body.direct_read_start`), and then reads it with
``os.preadv`` run after run, waiting for flow-control credit in between
without any lock on the file object. If another thread closes the file
object meanwhile, the number is free: the next ``open()`` anywhere in the
process gets it, and the upload goes on reading *that* file and sending its
bytes to the server. The ``read()`` path asks the file object, which says
"I/O operation on closed file" (``ValueError``) and the stream is reset.

The scripted server lets the first window (65,535 bytes, the connection's
initial window, RFC 9113 section 6.9.2) in and then holds its credit back:
the upload is then certainly waiting for credit, between two reads, when
the test closes the file. Only after that does the server give credit.
Both modes run: the ``read()`` path (fast paths off) shows what is expected.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.events
import h2.settings
import pytest

from hyper import HTTP20Connection
from hyper.exceptions import HyperError
from hyper.http20 import h2_internals
from tests.fast_paths import force_fast_paths_on
from tests.scripted import Peer, ScriptedServer

S = h2.settings.SettingCodes
FIRST_WINDOW = 65_535
SIZE = 300_000
ORIGINAL = bytes((i * 7 + i // 257) % 256 for i in range(SIZE))
#: Another file's bytes (a secret, say): none of them may ever reach the server.
OTHER = bytes((i * 13 + 101) % 256 for i in range(SIZE))

ENDS_OR_DATA = (h2.events.DataReceived, h2.events.StreamReset, h2.events.StreamEnded)


@pytest.fixture(params=["fast", pytest.param("read-path")])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Fast paths forced on (in-place reads), or off (the ``read()`` path), whatever the environment says."""
    if request.param == "fast":
        force_fast_paths_on(monkeypatch)
    else:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
        monkeypatch.setattr(h2_internals, "_enabled", False)
        monkeypatch.setattr(h2_internals, "_problem", "turned off by the test")
    yield str(request.param)


class HeldUpload:
    """A POST of ``body`` from a worker thread to a server that stops giving credit after the first window."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.first_window = threading.Event()  # the server has every byte of the first window
        self.go_on = threading.Event()  # the test has done its deed: the server gives credit
        self.got = bytearray()
        self.events: list[str] = []
        self.error: BaseException | None = None
        self.returned = False

    def script(self, peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        while len(self.got) < FIRST_WINDOW:
            event = peer.wait_for(
                lambda e: isinstance(e, ENDS_OR_DATA),
                timeout=10,
            )
            if not isinstance(event, h2.events.DataReceived):
                self.events.append(type(event).__name__)
                self.first_window.set()
                peer.drain_until_closed()
                return
            self.got.extend(event.data)
        self.first_window.set()
        assert self.go_on.wait(30)
        peer.h2.increment_flow_control_window(4 << 20)
        peer.flush()
        if isinstance(peer.collect_upload(sid, self.got, self.events), h2.events.StreamEnded):
            peer.respond(sid, body=b"stored")
        peer.drain_until_closed()

    def upload(self, port: int) -> None:
        try:
            with HTTP20Connection("127.0.0.1", port, secure=False, timeout=10) as conn:
                stream_id = conn.request("POST", "/", body=self.body)
                self.returned = True  # the body went out as if whole: its answer is read
                assert conn.getresponse(stream_id).read() == b"stored"
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc


def run_held_upload(body: Any, deed: Any) -> HeldUpload:
    """Upload ``body``; once the first window is in, run ``deed()`` (the test thread), then give credit."""
    held = HeldUpload(body)
    with ScriptedServer(held.script, settings={S.INITIAL_WINDOW_SIZE: 4 << 20}) as server:
        worker = threading.Thread(target=held.upload, args=(server.port,))
        worker.start()
        try:
            assert held.first_window.wait(30)
            deed()
        finally:
            held.go_on.set()
            worker.join(60)
        assert not worker.is_alive()
    return held


@pytest.mark.parametrize("reuse", [False, True], ids=["closed", "closed-and-number-reused"])
def test_a_file_closed_by_another_thread_mid_upload_sends_none_of_another_files_bytes(
    mode: str, reuse: bool, tmp_path: Path
) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(ORIGINAL)
    other_path = tmp_path / "other.bin"
    other_path.write_bytes(OTHER)
    reused: list[int] = []

    with path.open("rb") as body:
        number = body.fileno()

        def close_and_reuse() -> None:
            body.close()  # another thread's close, mid-upload (the upload waits for credit)
            if not reuse:
                return
            # The next open anywhere in the process gets the lowest free
            # number, usually this one; dup2 makes that certain (the number
            # is free: nothing else in this test opens files meanwhile).
            other = os.open(other_path, os.O_RDONLY)
            if other != number:
                os.dup2(other, number)
                os.close(other)
            reused.append(number)

        try:
            held = run_held_upload(body, close_and_reuse)
        finally:
            for fd in reused:
                os.close(fd)
    got = bytes(held.got)
    # Whatever the upload does about the closed file, the server never
    # receives a byte that is not the body's own ...
    assert got == ORIGINAL[: len(got)]
    # ... and the request does not end as if the body had been sent.
    assert not held.returned
    assert "StreamEnded" not in held.events


@pytest.mark.parametrize(
    "mode",
    [
        "fast",
        "read-path",
    ],
    indirect=True,
)
def test_a_file_closed_mid_upload_fails_as_the_read_path_does(mode: str, tmp_path: Path) -> None:
    """The closed file's error is the one ``read()`` gives (``ValueError``), or a hyper one; not EBADF."""
    path = tmp_path / "body.bin"
    path.write_bytes(ORIGINAL)
    with path.open("rb") as body:
        held = run_held_upload(body, body.close)
    assert isinstance(held.error, (ValueError, HyperError)), repr(held.error)
    assert held.events[-1] == "StreamReset"  # the stream is reset, not ended
    assert "StreamEnded" not in held.events
    assert bytes(held.got) == ORIGINAL[: len(held.got)]
