"""Request bodies on an HTTP/2 session: DATA sent as the flow-control windows allow.

:class:`SessionUpload` is part of the session (the locking argument is in
:mod:`hyper.http20.session`): an upload takes the state lock per block of
the body, so frames keep their order and other threads (readers, other
uploads) get a turn between blocks; the body itself is read outside the
lock, since a file may be slow. RFC 9113 section 6.9: DATA may not exceed
the stream's or the connection's send window; when both are shut the upload
waits (bounded by the write timeout) for WINDOW_UPDATE.
"""

from __future__ import annotations

from ..common.body import RequestBody
from ..common.file_body import direct_read_start
from ..exceptions import InvalidStreamID
from .session_file_upload import SessionFileUpload
from .session_upload_turns import SEND_BATCH as SEND_BATCH  # where tests and tools look for it
from .streams import StreamState


class SessionUpload(SessionFileUpload):
    """The upload operations of :class:`~hyper.http20.session.H2Session`."""

    def _stream_locked(self, stream_id: int) -> StreamState:
        """The state of a stream opened on this session. Caller holds the state lock.

        Raises :class:`InvalidStreamID` when it is gone (its response was
        closed or forgotten, possibly by another thread).
        """
        stream = self._core.streams.get(stream_id)
        if stream is None:
            raise InvalidStreamID(f"stream {stream_id} was closed", stream_id)
        return stream

    def send_body(self, stream_id: int, body: RequestBody, end_stream: bool = True) -> None:
        """Send (more of) a request body as the windows allow, then END_STREAM if ``end_stream``.

        Blocks until the body is sent, the server answers in full and stops
        the upload, or an error. The body of a stream is counted across every
        call against the ``content-length`` its HEADERS declared (see
        :meth:`open_stream`): a block that would go beyond it is refused
        before it is sent, and a body that ends short of it fails at
        ``end_stream``; either resets the stream and raises
        :class:`BodyLengthError`. Raises :class:`InvalidStreamID` when the
        caller already ended the request (END_STREAM went out) or its stream
        was reset after an earlier failure; returns quietly when the server
        stopped the upload (RFC 9113 section 8.1).
        """
        core = self._core
        with self._cond:  # the reader may be removing or resetting the stream right now
            stream = self._stream_locked(stream_id)
            if self._upload_should_stop(stream):
                return
            counter = stream.upload
            step = self._frame_payload_locked()
        # A plain binary file is read straight into the frames that carry
        # it (hyper.common.file_body), when runs are framed at all; checked
        # outside the lock (a few system calls on the file).
        start = None
        if body.file is not None and step is not None and core.framed_runs_available():
            start = direct_read_start(body.file)
        try:
            if start is not None and step is not None:
                if not self._send_file(stream_id, stream, body.file, start, counter, step):
                    return
            else:
                for block in body.blocks():  # read outside the lock: files may be slow
                    # The state lock, per block: the count, the windows,
                    # queuing DATA and its send keep frame order; readers
                    # get a turn between blocks.
                    with self._cond:
                        if self._upload_should_stop(stream):
                            return
                        # Before any of the block goes out: bytes beyond the
                        # declared content-length would make the server fail
                        # the request (RFC 9113 section 8.1.1), so none are sent.
                        counter.add(block.nbytes)
                        sent_all, step = self._send_view_locked(stream_id, stream, block, step)
                        if not sent_all:
                            return
                    # The block is on the wire: let it go before the next is
                    # asked for (a generator may refill the same bytearray).
                    del block
            if end_stream:
                with self._cond:  # the count is the stream's, shared by every send
                    counter.check_complete()
        except BaseException:
            with self._cond:  # the RST_STREAM is queued and sent in order, waiters woken
                if not stream.request_ended:
                    core.reset(stream_id, 0x8)  # CANCEL (RFC 9113 section 7)
                    self._flush_quietly_locked()
                self._cond.notify_all()
                self._poke_reader_locked()  # a freed slot: the reader may wait for it
            raise
        if not end_stream:
            return
        with self._cond:  # END_STREAM is queued and sent in order
            if not self._upload_should_stop(stream):
                core.end_body(stream_id)
                self._flush_locked()
                # Ending our side can close the stream (the response was
                # complete): a slot the reader may be waiting for.
                self._poke_reader_locked()
