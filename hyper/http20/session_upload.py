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
from ..exceptions import InvalidStreamID, WriteTimeout, fresh
from .session_reader import SessionReader
from .streams import RequestState, StreamState
from .upload_frames import run_frame_payload

#: Body bytes queued per lock hold while uploading, so readers get a turn.
#: Also the most one run of DATA frames holds (hyper.http20.data_frames keeps
#: a buffer that size per connection): a file body's blocks are this size
#: anyway (hyper.common.body.READ_BLOCK).
SEND_BATCH = 256 * 1024

#: SETTINGS_MAX_FRAME_SIZE (RFC 9113 section 6.5.2) and its initial value.
_MAX_FRAME_SIZE = 0x5
_DEFAULT_MAX_FRAME_SIZE = 16384


class SessionUpload(SessionReader):
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
        try:
            for block in body.blocks():  # read outside the lock: files may be slow
                view = block
                # The state lock, per block: the count, the windows, queuing
                # DATA and its send keep frame order; readers get a turn
                # between blocks.
                with self._cond:
                    if self._upload_should_stop(stream):
                        return
                    # Before any of the block goes out: bytes beyond the
                    # declared content-length would make the server fail the
                    # request (RFC 9113 section 8.1.1), so none are sent.
                    counter.add(block.nbytes)
                    while view.nbytes:
                        if self._upload_should_stop(stream):
                            return
                        sent = self._queue_data_locked(stream_id, view[:SEND_BATCH], step)
                        if sent:
                            view = view[sent:]
                            self._flush_locked()
                            continue
                        # Both windows shut (RFC 9113 section 6.9): wait for
                        # WINDOW_UPDATE, or for the server to end the stream.
                        self._wait_locked(
                            lambda: core.send_window(stream_id) > 0 or stream.request_ended,
                            lambda: core.stream_failure(stream),
                            self.write_timeout,
                            lambda: WriteTimeout(
                                f"server kept the flow-control window of stream {stream_id} "
                                f"closed for {self.write_timeout} s"
                            ),
                            stream_id,
                        )
                        # The wait read frames: a SETTINGS among them may
                        # have changed the frame size limit.
                        step = self._frame_payload_locked()
                # The block is on the wire: let its views go before the next
                # is asked for (a generator may refill the same bytearray).
                del block, view
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

    def _frame_payload_locked(self) -> int | None:
        """The DATA payload per frame of an upload run, or ``None`` for the core's own framing.

        Caller holds the state lock. Only a choice of efficiency: the core
        caps every frame at the peer's SETTINGS_MAX_FRAME_SIZE in force
        (RFC 9113 section 4.2), so a value read before a SETTINGS change
        still sends correct frames. Hence read once per :meth:`send_body`
        and after each wait, not per frame (it costs a dict of settings).
        """
        max_frame = self._core.remote_settings().get(_MAX_FRAME_SIZE, _DEFAULT_MAX_FRAME_SIZE)
        return run_frame_payload(max_frame)

    def _queue_data_locked(self, stream_id: int, data: memoryview, step: int | None) -> int:
        """Queue as much of ``data`` as the windows allow, in frames of ``step`` bytes; return how much.

        Caller holds the state lock. The core never queues more than the
        stream's and the connection's send windows allow (RFC 9113 section
        6.9.1) nor frames above the peer's SETTINGS_MAX_FRAME_SIZE (section
        4.2); here only the payload per frame is chosen
        (:mod:`hyper.http20.upload_frames`).
        """
        # The core queues min(windows, len(data)) in frames of ``step``
        # bytes (capped at the frame limit in force): one window debit and
        # one buffer for the run on its fast path (hyper.http20.data_frames),
        # which the flush that follows sends before the next run is framed.
        # None: the core's own frame sizes.
        return self._core.send_body(stream_id, data, step)

    def _upload_should_stop(self, stream: StreamState) -> bool:
        """True when the server stopped the upload; raises when it may not go on.

        Caller holds the state lock.
        """
        error = self._core.stream_failure(stream)
        if error is not None:
            raise fresh(error)
        if stream.request is RequestState.SENDING:
            return False
        # A server that answered in full may end our side early (RFC 9113
        # section 8.1): the rest of the body is not sent, quietly.
        if stream.request is RequestState.STOPPED:
            return True
        # The caller ended the request itself (final=True), or an earlier
        # failed send reset it: more body is the caller's mistake, and the
        # bytes would go nowhere, so say so.
        how = (
            "ended (final=True)"
            if stream.request is RequestState.DONE
            else "reset (a send failed, or the response was closed)"
        )
        raise InvalidStreamID(
            f"the request body of stream {stream.stream_id} was already {how}: nothing more can be sent",
            stream.stream_id,
        )
