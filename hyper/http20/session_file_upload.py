"""File bodies uploaded by reading them straight into their DATA frames, outside the state lock.

A plain binary file (:func:`hyper.common.file_body.direct_read_start`) is
not read into a block and then copied behind each frame header: each run
is read with one ``os.preadv`` into the payload slots of a buffer laid out
as DATA frames (:func:`hyper.http20.data_frames.payload_slots`), and the
core writes the headers into the gaps (:meth:`CoreFileRuns.send_framed_run
<hyper.http20.core_file_runs.CoreFileRuns.send_framed_run>`). One kernel
copy per byte, as with ``read()``, and none in user space.

Locking: how much to read is decided under the session's state lock (the
windows, the declared length), the read itself happens without it (a file
on a slow file system must not stall readers and other uploads), and the
frames are debited, queued and sent under it again, in one hold that also
decides the next read. The buffer belongs to this upload alone, so nothing
another thread does can touch it while it is read into; a window that
shrank meanwhile (another upload on the connection took the connection's
credit, or a SETTINGS lowered the stream's, RFC 9113 section 6.9.2) only
means fewer of the bytes read go out in this turn: the rest is sent the way
every other body is, waiting for credit as it must.

The declared ``content-length`` bounds every read (RFC 9113 section 8.1.1:
a byte beyond it would make the server fail the request): a read never
asks for more than what is left of it, and the read that reaches it asks
for one byte more; getting that byte means the file grew, and that whole
run is refused before any of it is sent (:class:`BodyLengthError`, as a
block that would overrun is for every other body). A file that shrank ends
early: every byte read is sent, and the session's length check resets the
stream instead of ending it.
"""

from __future__ import annotations

from typing import Any

from ..common.body import LengthCounter
from ..common.file_body import file_size_from, leave_position, read_into
from ..exceptions import BodyLengthError
from .data_frames import framed_size, payload_slots, reusable
from .session_upload_turns import SEND_BATCH, SessionUploadTurns
from .streams import StreamState
from .upload_frames import TLS_RECORD_PLAINTEXT


def _closed_mid_upload() -> ValueError:
    """What ``read()`` of a file closed meanwhile raises, for the in-place path to raise the same."""
    return ValueError("I/O operation on closed file (the request body was closed mid-upload)")


class SessionFileUpload(SessionUploadTurns):
    """Uploading a plain binary file in place (a base of :class:`~hyper.http20.session.H2Session`)."""

    def _send_file(
        self,
        stream_id: int,
        stream: StreamState,
        fileobj: Any,
        start: tuple[int, int],
        counter: LengthCounter,
        step: int,
    ) -> bool:
        """Send ``fileobj`` from ``start`` (descriptor, position) to its end, in frames of ``step`` bytes.

        Call without the state lock. Returns True when the file's end was
        reached (the caller checks the length and ends the stream), False
        when the server stopped the upload. Raises
        :class:`BodyLengthError` when the file holds more than the declared
        length, before any of the run that found it out is sent. However it
        ends, the file object is left where ``read()`` of the same bytes
        would have left it: just after the last byte read.
        """
        fd, position = start
        buffer: bytearray | None = None  # this upload's framed run, reused while no view of it is alive
        probe = bytearray(1)  # the byte after the declared length, if the file has one
        try:
            with self._cond:  # the windows and the count are read under the lock
                turn = self._next_read_locked(stream_id, stream, counter, step)
            while turn is not None:
                want, step = turn
                # The count is read here without the lock: only this
                # stream's sender (this thread) changes it.
                # This read reaches the declared length: one byte more is
                # asked for, into the probe, to see whether the file grew.
                last = counter.declared is not None and counter.sent + want == counter.declared
                size = framed_size(want, step)
                reused = reusable(buffer, size)
                if reused is None:
                    # Room for the largest run this upload may still read
                    # (a small file gets a small buffer), kept for the next runs.
                    most = SEND_BATCH if counter.declared is None else counter.declared - counter.sent
                    reused = bytearray(max(size, framed_size(min(most, SEND_BATCH), step)))
                buffer = reused
                slots: list[Any] = payload_slots(buffer, want, step)
                if last:
                    slots.append(memoryview(probe))
                # Outside the lock: the buffer is this upload's own, and
                # nothing of it is queued (reusable() said no view lives).
                try:
                    count = read_into(fd, slots, position)
                except OSError:
                    if fileobj.closed:
                        raise _closed_mid_upload() from None  # EBADF: as read() would say it
                    raise
                finally:
                    del slots  # no view of the buffer outlives its turn
                if fileobj.closed:
                    # Closed by another thread before or during this read:
                    # the descriptor number may already name another file
                    # (a new open() takes the lowest free number), so none
                    # of what was read is the body's. A close after this
                    # check cannot have changed what this read got.
                    raise _closed_mid_upload()
                read_at = position
                position += count
                if count > want:
                    # More bytes than content-length declared (section
                    # 8.1.1): none of this run goes out.
                    raise BodyLengthError(
                        f"body is longer than its content-length of {counter.declared} bytes",
                        expected=counter.declared or 0,
                        actual=counter.sent + max(file_size_from(fd, read_at), count),
                    )
                if not count:
                    return True  # the end of the file: the caller checks the length
                # The state lock: the count, the windows, queuing the run
                # and its send keep frame order (as for every body).
                with self._cond:
                    if self._upload_should_stop(stream):
                        return False
                    counter.add(count)  # within the declared length: ``want`` was bounded by it
                    if not self._send_run_locked(stream_id, stream, buffer, count, step):
                        return False
                    if last and count == want:
                        return True  # all declared bytes sent, and the probe found the end
                    turn = self._next_read_locked(stream_id, stream, counter, step)
            return False
        finally:
            leave_position(fileobj, position)

    def _next_read_locked(
        self, stream_id: int, stream: StreamState, counter: LengthCounter, step: int
    ) -> tuple[int, int] | None:
        """How many bytes to read next, and the frame payload to lay them out in; None when stopped.

        Caller holds the state lock. At most what both send windows allow
        now (RFC 9113 section 6.9.1; waits for credit when they are shut),
        one batch, and what is left of the declared length (0 when nothing
        is: the read then only looks for a byte beyond it).
        """
        core = self._core
        while True:
            if self._upload_should_stop(stream):
                return None
            left = SEND_BATCH
            if counter.declared is not None:
                left = min(left, counter.declared - counter.sent)
                if left <= 0:
                    return 0, step
            window = core.send_window(stream_id)
            if window > 0:
                return min(window, left), step
            self._wait_for_credit_locked(stream_id, stream)
            # The wait read frames: a SETTINGS among them may have changed
            # the frame size limit. Frames of 16,384 bytes are always
            # allowed (section 4.2), should the new limit be one that the
            # core frames itself.
            step = self._frame_payload_locked() or TLS_RECORD_PLAINTEXT

    def _send_run_locked(
        self, stream_id: int, stream: StreamState, buffer: bytearray, count: int, step: int
    ) -> bool:
        """Queue and send the ``count`` bytes read into ``buffer``; False when the server stopped the upload.

        Caller holds the state lock. The core frames in place as much as
        the windows allow now; what it could not (a window that shrank
        since the read was sized, or a frame size limit lowered below
        ``step``, or h2 in a state its fast path leaves to h2) goes through
        the core's ordinary path, slot by slot, waiting for credit.
        """
        queued = self._core.send_framed_run(stream_id, buffer, count, step)
        if queued:
            self._flush_locked()  # the frames are a view of ``buffer``: sent before it is read into again
        done = queued or 0
        if done == count:
            return True
        frame_payload = self._frame_payload_locked()
        for slot in payload_slots(buffer, count, step):
            if done >= slot.nbytes:
                done -= slot.nbytes  # this slot went out in the run
                continue
            sent_all, frame_payload = self._send_view_locked(stream_id, stream, slot[done:], frame_payload)
            done = 0
            if not sent_all:
                return False
        return True
