"""Review 4 of record-filling upload frames: the server's SETTINGS change in the middle of an upload.

RFC 9113 section 6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change moves every
open stream's send window by the difference, and may leave it negative; the
sender then sends nothing on that stream until WINDOW_UPDATE brings it above
zero. Section 4.2: a smaller SETTINGS_MAX_FRAME_SIZE bounds every frame sent
after it. The server's own h2 checks every DATA frame against both windows
and its frame size limit in force (failing the script on any excess), and the
body must arrive byte-exact.

The change is made while the client is stalled on a shut stream window, and
the new credit is given only once the client acknowledged the SETTINGS, so
what the client may send at each step is fixed: no timing involved.
"""

from __future__ import annotations

import io

import h2.events
import h2.settings

from hyper import HTTP20Connection
from tests.scripted import Peer, ScriptedServer

#: A body whose bytes differ from one position to the next, so a lost,
#: repeated or reordered piece shows.
BODY = bytes((i * 11 + i // 253) % 256 for i in range(400_009))

FIRST_WINDOW = 50_000
SMALLER_WINDOW = 20_000  # the open stream's window goes to 0 + 20,000 - 50,000 = -30,000
FIRST_MAX_FRAME = 40_000
SECOND_MAX_FRAME = 16_384


def test_settings_shrinking_window_and_frame_size_mid_upload() -> None:
    frames_before: list[int] = []
    frames_after: list[int] = []
    received = bytearray()

    def script(peer: Peer) -> None:
        # h2 never applies its initial SETTINGS to its own frame parser.
        peer.h2.max_inbound_frame_size = peer.h2.incoming_buffer.max_frame_size = FIRST_MAX_FRAME
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"hello")
        request = peer.wait_request()
        sid = request.stream_id
        # The connection window wide open: the stream's window paces the upload.
        peer.h2.increment_flow_control_window(1 << 30)
        peer.flush()

        def take_data(until: int, into: list[int]) -> bool:
            """Read DATA of the upload until ``until`` bytes in all; True at END_STREAM."""
            while len(received) < until:
                event = peer.wait_for(
                    lambda e: (
                        isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded)) and e.stream_id == sid
                    ),
                    timeout=10,
                )
                if isinstance(event, h2.events.StreamEnded):
                    return True
                into.append(len(event.data))
                received.extend(event.data)
            return False

        # 1. The whole first window: the client then waits for credit.
        assert not take_data(FIRST_WINDOW, frames_before)
        # 2. Shrink the initial window (the stream's goes to -30,000) and the
        # frame size limit; h2 applies both on our side once the client ACKs.
        peer.h2.update_settings(
            {
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: SMALLER_WINDOW,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: SECOND_MAX_FRAME,
            }
        )
        peer.flush()
        peer.wait_for(lambda e: isinstance(e, h2.events.SettingsAcknowledged), timeout=10)
        # 3. 30,000 of credit only brings the window back to zero: nothing may
        # come (our h2 fails the connection on any DATA beyond it). 25,000
        # more lets exactly 25,000 through, in frames within the new limit.
        peer.h2.increment_flow_control_window(30_000, stream_id=sid)
        peer.flush()
        peer.h2.increment_flow_control_window(25_000, stream_id=sid)
        peer.flush()
        assert not take_data(FIRST_WINDOW + 25_000, frames_after)
        # 4. The rest, with ample credit.
        peer.h2.increment_flow_control_window(1 << 24, stream_id=sid)
        peer.flush()
        assert take_data(len(BODY) + 1, frames_after)
        peer.respond(sid, body=b"ok")
        peer.drain_until_closed()

    settings = {
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: FIRST_WINDOW,
        h2.settings.SettingCodes.MAX_FRAME_SIZE: FIRST_MAX_FRAME,
    }
    with ScriptedServer(script, settings=settings) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"hello"
            response = conn.getresponse(conn.request("POST", "/", body=io.BytesIO(BODY)))
            assert response.read() == b"ok"
    assert bytes(received) == BODY
    assert sum(frames_before) == FIRST_WINDOW
    assert max(frames_before) <= FIRST_MAX_FRAME
    assert max(frames_after) <= SECOND_MAX_FRAME
    assert frames_after[-1] == 0  # END_STREAM on an empty DATA frame, after the body
