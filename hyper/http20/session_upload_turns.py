"""The steps of an upload's turn under the session's state lock: queue, send, wait for credit.

Shared by every kind of request body (:mod:`hyper.http20.session_upload`)
and by file bodies read in place (:mod:`hyper.http20.session_file_upload`).
Every method here is called with the state lock held (see
:mod:`hyper.http20.session`); a wait gives it up while it sleeps.
RFC 9113 section 6.9: DATA may not exceed the stream's or the connection's
send window; when both are shut the upload waits (bounded by the write
timeout) for WINDOW_UPDATE.
"""

from __future__ import annotations

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


class SessionUploadTurns(SessionReader):
    """The locked steps of uploading (a base of :class:`~hyper.http20.session.H2Session`)."""

    def _send_view_locked(
        self, stream_id: int, stream: StreamState, view: memoryview, step: int | None
    ) -> tuple[bool, int | None]:
        """Queue and send all of ``view``, waiting for credit as needed; caller holds the state lock.

        Returns whether all of it went (False: the server stopped the
        upload) and the frame payload to use from now on (re-read after a
        wait, which may have read a SETTINGS).
        """
        while view.nbytes:
            if self._upload_should_stop(stream):
                return False, step
            sent = self._queue_data_locked(stream_id, view[:SEND_BATCH], step)
            if sent:
                view = view[sent:]
                self._flush_locked()
                continue
            self._wait_for_credit_locked(stream_id, stream)
            # The wait read frames: a SETTINGS among them may have changed
            # the frame size limit.
            step = self._frame_payload_locked()
        return True, step

    def _wait_for_credit_locked(self, stream_id: int, stream: StreamState) -> None:
        """Both windows are shut (RFC 9113 section 6.9): wait for WINDOW_UPDATE or the end of the stream.

        Caller holds the state lock (the wait gives it up while it sleeps).
        Bounded by the write timeout.
        """
        core = self._core
        self._wait_locked(
            lambda: core.send_window(stream_id) > 0 or stream.request_ended,
            lambda: core.stream_failure(stream),
            self.write_timeout,
            lambda: WriteTimeout(
                f"server kept the flow-control window of stream {stream_id} closed for {self.write_timeout} s"
            ),
            stream_id,
        )

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
