"""DATA runs kept as views of the receive buffer: no byte lost, moved or read over.

The frame splitter hands the payloads of a run of plain DATA frames to the
core as views of the session's receive buffer (:mod:`hyper.http20.data_runs`),
and the core copies them once, when the application takes them. The session
(:mod:`hyper.http20.session_wire`) must therefore never read over bytes a
view still points at: it fills the buffer after them, and once the buffer is
nearly used up it has the core copy the views out
(:meth:`~hyper.http20.core_bodies.CoreBodies.detach_views`) before it starts
again at the beginning.

These tests shrink the receive buffer so that a download wraps it many times
with views still held, read two responses at once in odd sizes (so that
reads split frames and runs), and compare every byte with the file the
server sends, with the fast path on and off; and they check
``detach_views`` on its own.
"""

from __future__ import annotations

import hashlib
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest

from hyper.http20.core_bodies import CoreBodies
from tests import held_views
from tests.held_views import shrink_receive_buffer, tls_connection
from tests.servers import ServerInfo, docroot_content

#: The three frame paths (a fixture shared with tests/test_review8_views.py).
frame_path = held_views.frame_path

#: How much of each response the two-stream tests read (and check).
PREFIX = 12 * 1024 * 1024


def test_detach_views_copies_views_of_the_buffer_only_and_keeps_their_order() -> None:
    buffer = bytearray(b"abcdefghij")
    other = b"0123456789"
    view = memoryview(buffer)
    stream = SimpleNamespace(data=deque([view[0:3], b"XY", memoryview(other)[2:4], view[5:9]]))
    empty = SimpleNamespace(data=deque())
    core: Any = SimpleNamespace(streams={1: stream, 3: empty})
    CoreBodies.detach_views(core, buffer)
    pieces = list(stream.data)
    # Views of the buffer became bytes; the rest is untouched (same objects).
    assert [type(piece) for piece in pieces] == [bytes, bytes, memoryview, bytes]
    assert pieces[1] is not None and pieces[1] == b"XY"
    buffer[:] = b"#" * len(buffer)  # the session reads over the buffer
    assert b"".join(pieces) == b"abcXY23fghi"
    assert not empty.data


@pytest.fixture
def small_receive_buffer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A 48 KiB receive buffer that wraps after 28 KiB; returns a list counting views detached."""
    return shrink_receive_buffer(monkeypatch, 48 * 1024, 20 * 1024)


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_two_downloads_read_in_odd_sizes_through_a_wrapping_buffer_are_byte_exact(
    server: str, small_receive_buffer: list[int], frame_path: str, request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    expected = hashlib.sha256(docroot_content("big.bin")[:PREFIX]).hexdigest()
    with tls_connection(info) as conn:
        first = conn.getresponse(conn.request("GET", "/big.bin"))
        second = conn.getresponse(conn.request("GET", "/big.bin"))
        digests = [hashlib.sha256(), hashlib.sha256()]
        totals = [0, 0]
        # Reads that split frames and runs: the first response is read in
        # big steps (it drains the socket while the second holds views),
        # the second in small ones that leave parts of pieces behind.
        sizes = [70_001, 4_099]
        for _ in range(100_000):  # bounded: far more than the reads needed
            if totals[0] >= PREFIX and totals[1] >= PREFIX:
                break
            for index, response in enumerate((first, second)):
                wanted = min(sizes[index], PREFIX - totals[index])
                if not wanted:
                    continue
                chunk = response.read(wanted)
                assert chunk, "the body ended early"
                digests[index].update(chunk)
                totals[index] += len(chunk)
        assert totals == [PREFIX, PREFIX]
        assert [digest.hexdigest() for digest in digests] == [expected, expected]
        first.close()
        second.close()
    if frame_path == "fast":
        # The buffer did wrap with views still held: the copy-out path ran.
        assert any(small_receive_buffer)
    else:
        # h2's path (and the public mode) hand the core bytes: nothing
        # ever needs copying out.
        assert not any(small_receive_buffer)


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_a_download_read_whole_through_a_wrapping_buffer_is_byte_exact(
    server: str, small_receive_buffer: list[int], request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    body = docroot_content("big.bin")
    with tls_connection(info) as conn:
        response = conn.getresponse(conn.request("GET", "/big.bin"))
        assert hashlib.sha256(response.read()).digest() == hashlib.sha256(body).digest()
