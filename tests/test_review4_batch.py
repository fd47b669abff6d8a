"""Review 4 of ``conn.batch()``: a dead session's leftover frames must not fail the block's end.

The batchfix merge made leaving a batch whose session died raise nothing:
held HEADERS that can go nowhere are dropped. But the core may also hold
frames of its own that could not leave before the socket closed: the ACK of
a PING (RFC 9113 section 6.7) or of a SETTINGS frame (section 6.5.3) that
arrived in the same read as the server's GOAWAY and FIN. The block's end
then tried to send those on the closed socket, and raised the dead
session's error from the ``with`` statement, losing the ids of the requests
the block had already made on the new connection.

Orders are forced with events and with the GOAWAY and FIN sent in one
segment (``MSG_MORE``), never with sleeps.
"""

from __future__ import annotations

from collections.abc import Callable

import hyperframe.frame
import pytest

from tests.batch_scripts import (
    MSG_MORE,
    assert_next_request_moves_and_held_one_is_dropped,
    send_goaway_and_fin,
)
from tests.scripted import Peer

pytestmark = pytest.mark.skipif(MSG_MORE is None, reason="needs MSG_MORE to join the GOAWAY and the FIN")


def ping_frame() -> bytes:
    frame = hyperframe.frame.PingFrame(0)
    frame.opaque_data = b"review-4"
    return frame.serialize()


def settings_frame() -> bytes:
    frame = hyperframe.frame.SettingsFrame(0)
    frame.settings = {hyperframe.frame.SettingsFrame.MAX_CONCURRENT_STREAMS: 50}
    return frame.serialize()


def goodbye_asking_for_an_ack(make_frame: Callable[[], bytes]) -> Callable[[Peer], None]:
    """A goodbye that first asks for an ACK: the frame, GOAWAY naming no stream and FIN, in one segment."""

    def goodbye(peer: Peer) -> None:
        send_goaway_and_fin(peer, before=make_frame())

    return goodbye


#: Each test runs once per frame that asks for an ACK.
asks_for_an_ack = pytest.mark.parametrize(
    "make_frame", [ping_frame, settings_frame], ids=["ping", "settings"]
)


@asks_for_an_ack
def test_block_ends_cleanly_when_the_dead_session_owed_an_ack(make_frame: Callable[[], bytes]) -> None:
    # The server sends a frame the client must acknowledge, then GOAWAY and
    # FIN, all in one segment, after the batch's first request was held.
    # The second request reads all of it: the session dies with the ACK
    # still queued, the request goes on a new connection. Leaving the block
    # must raise nothing (the first request fails retryably on its own).
    goodbye = goodbye_asking_for_an_ack(make_frame)
    assert_next_request_moves_and_held_one_is_dropped(goodbye, dying_socket_closed=True)


@asks_for_an_ack
def test_held_request_awaited_inside_the_block_fails_retryably(make_frame: Callable[[], bytes]) -> None:
    # As above, but the caller asks for the held request's response inside
    # the block, after the session died. The request was never sent and the
    # GOAWAY named no stream (RFC 9113 section 6.8): the response must raise
    # the retryable ConnectionTerminated, as it does after the block, not
    # the dead socket's non-retryable error from an attempt to send the
    # queued ACK on the closed socket.
    goodbye = goodbye_asking_for_an_ack(make_frame)
    assert_next_request_moves_and_held_one_is_dropped(
        goodbye, dying_socket_closed=True, awaited_inside_the_block=True
    )
