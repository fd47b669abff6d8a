"""Header blocks the server sends on streams h2 has already forgotten.

h2 drops a closed stream from its table whenever it counts open streams
(every new request does), and then reads HEADERS on that stream as the
server opening a stream of its own: with push off (our
MAX_CONCURRENT_STREAMS is 0) that is TooManyStreamsError, a connection
error, raised before the block is even decoded. But a response or trailers
may still be in flight when we reset a stream (a response closed early, a
timed-out wait, :meth:`~hyper.HTTP20Connection.close` forgetting untaken
ids), and RFC 9113 section 5.1 says such frames are ignored. The frame
splitter (:class:`hyper.http20.h2_adapters.FrameSplitter`) asks
:func:`h2_forgot` before giving h2 a HEADERS frame and hands the block to
the fence (:func:`~hyper.http20.h2_internals.absorb_headers_on_forgotten_stream`)
instead; in the public-API mode :class:`ForgottenBlock` first collects the
block from its HEADERS and CONTINUATION frames, as h2's frame buffer would.
"""

from __future__ import annotations

import h2.connection
import h2.exceptions
import hyperframe.exceptions
import hyperframe.frame

from . import h2_internals as fence

_FRAME_HEADER = 9
_CONTINUATION_FRAME = 0x9
_END_HEADERS = 0x4
#: CONTINUATION frames one header block may have, as h2's frame buffer allows.
_CONTINUATION_BACKLOG = 64


def h2_forgot(conn: h2.connection.H2Connection, stream_id: int, internal: bool) -> bool:
    """``stream_id`` is one of our streams that h2 closed and dropped from its table.

    Streams h2 still holds, closed or not, it handles itself (a frame on a
    stream we reset is answered with RST_STREAM). ``internal``: the
    connection was built with the fenced internals, which may be asked
    directly; otherwise only h2's public API is used.
    """
    if not stream_id % 2 or stream_id > conn.highest_outbound_stream_id:
        return False  # not a stream we opened: h2's rules apply
    if internal:
        return not fence.has_stream(conn, stream_id)
    # Public API: h2 refuses to report the window of a stream it dropped
    # (and reports it for every stream it still holds).
    try:
        conn.local_flow_control_window(stream_id)
    except h2.exceptions.StreamClosedError:
        return True
    except h2.exceptions.ProtocolError:
        return False
    return False


class ForgottenBlock:
    """Public mode: one header block on a forgotten stream, collected frame by frame.

    Parses each frame with hyperframe (padding and priority stripped), joins
    the CONTINUATIONs and refuses any other frame in between (RFC 9113
    section 6.10), as h2's frame buffer would for a block it is given.
    """

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        #: The header block's fragments, in order.
        self._fragments: list[bytes] = []
        #: The frames as received, for h2 should the fence be unable to take the block.
        self.raw_frames: list[bytes] = []

    def add(self, whole: bytes, kind: int, flags: int, stream_id: int) -> bytes | None:
        """Add one whole frame; the complete block once END_HEADERS came, else ``None``.

        Raises :class:`h2.exceptions.ProtocolError` for a frame that may not
        come now, or a malformed one.
        """
        if self.raw_frames and (kind != _CONTINUATION_FRAME or stream_id != self.stream_id):
            raise h2.exceptions.ProtocolError(
                f"expected a CONTINUATION frame on stream {self.stream_id}, "
                f"got frame type {kind} on stream {stream_id}"
            )
        if len(self.raw_frames) > _CONTINUATION_BACKLOG:
            raise h2.exceptions.ProtocolError("too many CONTINUATION frames in one header block")
        self.raw_frames.append(whole)
        try:
            frame, _ = hyperframe.frame.Frame.parse_frame_header(memoryview(whole[:_FRAME_HEADER]))
            frame.parse_body(memoryview(whole[_FRAME_HEADER:]))
        except hyperframe.exceptions.HyperframeError as exc:
            raise h2.exceptions.ProtocolError(f"malformed header frame on stream {stream_id}: {exc}") from exc
        # Only HEADERS starts a block (the splitter's check) and only
        # CONTINUATION goes on (checked above).
        assert isinstance(frame, (hyperframe.frame.HeadersFrame, hyperframe.frame.ContinuationFrame))
        self._fragments.append(bytes(frame.data))
        if not flags & _END_HEADERS:
            return None  # more CONTINUATIONs to come
        return b"".join(self._fragments)
