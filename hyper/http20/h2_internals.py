"""The fence: every private name of h2, hpack and hyperframe hyper touches, in one place.

hyper's fast paths (see :mod:`hyper.http20.h2_adapters` and
:mod:`hyper.http20.hpack_cache`) do h2's own bookkeeping without h2's
generic machinery, and a few RFC 9113 adaptations replace h2 behaviour.
Both need names h2, hpack and hyperframe do not promise to keep: state
machine tables, window managers, the frame buffer, the dispatch table, the
HPACK header table. Only this module names them.

At import the module checks that those names exist and behave as hyper
expects (:func:`self_test` drives a small in-memory client and server
through every primitive below and compares the outcome with h2's public
API). If anything is missing or differs, or the environment variable
``HYPER_FAST_PATHS`` is ``0``, the fast paths are off: connections then use
only h2's public API (correct, slower), and the reason is logged once on
the ``hyper`` logger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack
import hyperframe.exceptions
import hyperframe.frame

# The one switch of every fast path, shared with the session and the TLS reader.
from ..common.sockets import FAST_PATHS_ENV_VAR, fast_paths_forced_off

# The fence's other modules, re-exported: the per-stream primitives of the fast
# paths, and the HPACK table and decoder the memos build on.
from .h2_internals_hpack import _LITERAL_DECODER as _LITERAL_DECODER
from .h2_internals_hpack import CountingHeaderTable as CountingHeaderTable
from .h2_internals_hpack import HuffmanMemoDecoder as HuffmanMemoDecoder
from .h2_internals_hpack import TableChange as TableChange
from .h2_internals_hpack import _huffman_memo as _huffman_memo
from .h2_internals_hpack import _huffman_memo_literal_decoder as _huffman_memo_literal_decoder
from .h2_internals_hpack import size_update_pending as size_update_pending
from .h2_internals_receive import receive_plain_data as receive_plain_data
from .h2_internals_receive import receive_plain_headers as receive_plain_headers
from .h2_internals_receive import receiving_stream as receiving_stream
from .h2_internals_runs import consume_plain_data_run as consume_plain_data_run
from .h2_internals_runs import runs_problem
from .h2_internals_steps import STEPS_PROBLEM as STEPS_PROBLEM
from .h2_internals_steps import consume_plain_data as consume_plain_data
from .h2_internals_steps import open_request_stream as open_request_stream
from .h2_internals_steps import take_send_credit as take_send_credit

log = logging.getLogger("hyper")

#: Set to ``0`` (or ``off``, ``false``, ``no``) to force the fast paths off.
ENV_VAR = FAST_PATHS_ENV_VAR

# The private imports. A missing module or name must not break hyper's
# import: it turns the fast paths off (the self-test reports it).
IMPORT_PROBLEM: str | None = None
try:
    from h2.connection import (  # not part of h2's documented API
        ConnectionInputs,
        ConnectionState,
        H2ConnectionStateMachine,
        _decode_headers,
    )
    from h2.frame_buffer import FrameBuffer as _FrameBufferBase
    from h2.stream import StreamClosedBy, StreamState
    from hpack.table import HeaderTable as _HeaderTableBase
except ImportError as exc:  # pragma: no cover - only with an incompatible h2/hpack
    IMPORT_PROBLEM = f"cannot import an internal: {exc}"
    _FrameBufferBase = object  # type: ignore[assignment,misc]
    _HeaderTableBase = object  # type: ignore[assignment,misc]


# -- the switch -------------------------------------------------------------------

_enabled = False
_problem: str | None = "not checked yet"


def fast_paths_enabled() -> bool:
    """True when new connections may use the fast paths and the RFC adaptations."""
    return _enabled


def fast_paths_problem() -> str | None:
    """Why the fast paths are off (``None`` when they are on)."""
    return _problem


def evaluate() -> str | None:
    """Decide (again) whether the fast paths are on; log the reason once when they are not.

    Runs at import. Returns the reason they are off, or ``None``. Only
    connections created afterwards follow the decision.
    """
    global _enabled, _problem
    if fast_paths_forced_off():
        problem: str | None = f"forced off by {ENV_VAR}={os.environ[ENV_VAR]}"
        level = logging.INFO
    else:
        problem = self_test() or runs_problem()
        level = logging.WARNING
    _enabled, _problem = problem is None, problem
    if problem is not None:
        log.log(level, "hyper's HTTP/2 fast paths are off (%s); using h2's public API", problem)
    return problem


# -- connection-level adaptations ---------------------------------------------------


class _GracefulGoawayStateMachine(H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY keeps it open.

    h2 4.x rejects every frame after GOAWAY, but RFC 9113 section 6.8 lets
    the server finish the streams up to ``last_stream_id`` (nginx does,
    after keepalive_requests). hyper's core stops opening streams itself.
    """

    if IMPORT_PROBLEM is None:
        _transitions = {
            **H2ConnectionStateMachine._transitions,
            (ConnectionState.CLIENT_OPEN, ConnectionInputs.RECV_GOAWAY): (None, ConnectionState.CLIENT_OPEN),
        }


def _quiet_repr(frame: hyperframe.frame.Frame) -> str:
    return f"{type(frame).__bases__[0].__name__}(stream_id={frame.stream_id}, flags={sorted(frame.flags)})"


# h2 calls repr() on every frame it receives, for a trace log that is off by
# default; hyperframe's repr hex-dumps payloads, which cost a tenth of a
# download. Frames handed to h2 by SlowFrameBuffer are of these subclasses.
_QUIET_FRAMES: dict[type[hyperframe.frame.Frame], type[hyperframe.frame.Frame]] = {
    cls: type(cls.__name__, (cls,), {"__repr__": _quiet_repr, "__slots__": ()})
    for cls in (*hyperframe.frame.FRAMES.values(), hyperframe.frame.ExtensionFrame)
}


def _keep_outbound_data() -> None:
    """Stands in for h2's clear_outbound_data_buffer (see :func:`install_adaptations`)."""


def install_adaptations(conn: h2.connection.H2Connection) -> None:
    """Give a fresh client connection hyper's GOAWAY handling and cheap frame reprs."""
    conn.state_machine = _GracefulGoawayStateMachine()
    table = conn._frame_dispatch_table
    for original, quiet in _QUIET_FRAMES.items():
        if original in table:
            table[quiet] = table[original]
    # h2 empties its output buffer when a GOAWAY arrives, as if the connection
    # were over; it is not (RFC 9113 6.8: streams up to last_stream_id go
    # on), so SETTINGS/PING ACKs and WINDOW_UPDATEs queued in the same read
    # must still go out.
    conn.clear_outbound_data_buffer = _keep_outbound_data  # type: ignore[method-assign]
    # DATA on a closed stream (RFC 9113 section 5.1): h2 counts it against
    # the connection window and credits it back by its own rule; hyper's
    # window manager hears of it instead (the splitter reports it, see
    # FrameSplitter._swallowed_data) and decides, so credit goes out once.
    if _CLOSED_STREAM_DATA_HOOK:
        conn._handle_data_on_closed_stream = _uncredited_closed_stream_data  # type: ignore[method-assign]


def _closed_stream_data_hook() -> bool:
    """h2 answers DATA on a closed stream in the method the replacement below stands for.

    Checked by signature (h2 3.x to 4.x); without it h2's own rule stays and
    the core mirrors its credit (see ConnectionCredit.credited_by_h2).
    """
    method = getattr(h2.connection.H2Connection, "_handle_data_on_closed_stream", None)
    code = getattr(method, "__code__", None)
    return (
        code is not None
        and code.co_varnames[: code.co_argcount] == ("self", "events", "exc", "frame")
        and isinstance(getattr(h2.exceptions.StreamClosedError(1), "_events", None), list)
    )


_CLOSED_STREAM_DATA_HOOK = _closed_stream_data_hook()


def _uncredited_closed_stream_data(
    events: list[h2.events.Event], exc: h2.exceptions.StreamClosedError, frame: Any
) -> tuple[list[hyperframe.frame.Frame], list[h2.events.Event]]:
    """h2's answer to DATA on a closed stream, minus its own connection credit.

    What h2 does (RFC 9113 section 5.1: RST_STREAM(STREAM_CLOSED) back, and
    the events h2 attached to the error) without ``process_bytes``: the
    bytes stay counted against the window until hyper's window manager
    gives them back. A plain function on the instance: no reference cycle.
    """
    reset = hyperframe.frame.RstStreamFrame(exc.stream_id)
    reset.error_code = exc.error_code
    return [reset], events + exc._events


def release_connection(conn: h2.connection.H2Connection) -> None:
    """Break h2's self-reference once a connection's socket is closed.

    h2's connection keeps a table of its own bound methods, a reference
    cycle: without this, a finished connection (and every closed-stream
    record it holds, tens of thousands after a long run) lives until the
    cyclic garbage collector happens to run. Nothing is received after the
    socket closed, so the table is not needed any more. Where h2 has no such
    table, there is nothing to break.
    """
    if isinstance(getattr(conn, "_frame_dispatch_table", None), dict):
        conn._frame_dispatch_table = {}
    # A dead connection can still be garbage in some other cycle (a stored
    # exception's traceback, say): what it holds is mostly its stream records,
    # one per stream it ever carried, so those go now whatever else lingers.
    # Later calls on it (a late reset, a credit) find no stream, which the
    # core already treats as "closed meanwhile".
    for records in ("streams", "_closed_streams"):
        table = getattr(conn, records, None)
        if isinstance(table, dict):
            table.clear()


def install_coders(
    conn: h2.connection.H2Connection,
    encoder: hpack.Encoder,
    make_decoder: Callable[[int, int], hpack.Decoder],
) -> None:
    """Replace the connection's HPACK coders (before any header block went either way).

    ``make_decoder(max_header_list_size, max_allowed_table_size)`` gets the
    limits of the decoder it replaces.
    """
    old = conn.decoder
    conn.encoder = encoder
    conn.decoder = make_decoder(old.max_header_list_size, old.max_allowed_table_size)


def set_header_list_limit(conn: h2.connection.H2Connection, size: int) -> None:
    """Apply our MAX_HEADER_LIST_SIZE to the decoder now; h2 does so only on the ACK."""
    conn.decoder.max_header_list_size = size


def mark_head_request(conn: h2.connection.H2Connection, stream_id: int) -> None:
    """Tell h2 the request of ``stream_id`` was HEAD (its response has no body).

    For stream 1 of an ``Upgrade: h2c`` connection, whose request went as
    HTTP/1.1: h2 learns the method only from HEADERS it sends itself. Done in
    both modes: without it, a HEAD response's content-length would fail the
    connection.
    """
    stream = getattr(conn, "streams", {}).get(stream_id)
    if stream is not None:
        stream.request_method = b"HEAD"


# -- receiving ----------------------------------------------------------------------


class SlowFrameBuffer(_FrameBufferBase):
    """h2's frame buffer, fed one whole frame at a time; it keeps h2's CONTINUATION handling."""

    def feed(self, frame: Any) -> hyperframe.frame.Frame | None:
        """Parse one whole frame; ``None`` for the start of a header block or an ignored frame."""
        self.add_data(frame)
        try:
            parsed = next(self, None)
        except hyperframe.exceptions.InvalidPaddingError as exc:
            # h2's own receive_data converts this one; our frame loop must too.
            raise h2.exceptions.ProtocolError(f"frame with invalid padding: {exc}") from exc
        if parsed is not None:
            parsed.__class__ = _QUIET_FRAMES.get(parsed.__class__, parsed.__class__)
        return parsed

    @property
    def headers_pending(self) -> bool:
        """A header block is open: only its CONTINUATION frames may come next."""
        return bool(self._headers_buffer)


def receive_frame(conn: h2.connection.H2Connection, frame: hyperframe.frame.Frame) -> list[h2.events.Event]:
    """h2's processing of one parsed frame, without receive_data's connection teardown on error."""
    return conn._receive_frame(frame)


def has_stream(conn: h2.connection.H2Connection, stream_id: int) -> bool:
    """h2 still keeps state for ``stream_id``."""
    return stream_id in conn.streams


def reset_closed_stream(conn: h2.connection.H2Connection, stream_id: int) -> None:
    """Send RST_STREAM(PROTOCOL_ERROR) for a stream h2 left half-done when it raised.

    Marked as reset by us, so h2 answers later frames on it with
    RST_STREAM(STREAM_CLOSED), as for any stream we reset (RFC 9113 5.1).
    """
    stream = conn.streams.get(stream_id)
    if stream is None:
        return
    stream.state_machine.state = StreamState.CLOSED
    stream.state_machine.stream_closed_by = StreamClosedBy.SEND_RST_STREAM
    frame = hyperframe.frame.RstStreamFrame(stream_id)
    frame.error_code = h2.errors.ErrorCodes.PROTOCOL_ERROR
    conn._prepare_for_sending([frame])


def absorb_headers_on_forgotten_stream(
    conn: h2.connection.H2Connection, stream_id: int, block: bytes
) -> bool:
    """Take a header block that arrived on one of our streams h2 has closed and dropped.

    h2 drops closed streams from its table whenever it counts open ones, and
    then reads HEADERS on such a stream as the server opening a stream of its
    own: with push off (our MAX_CONCURRENT_STREAMS 0) that is
    TooManyStreamsError, a connection error, before it even decodes the
    block. But after we reset a stream the server may still send on it
    (RFC 9113 section 5.1: frames in flight after RST_STREAM are ignored,
    section 5.4.2), so here the block is decoded, to keep the HPACK state
    in step with the server's (RFC 9113 section 4.3), and then dropped.

    h2 still remembers how recent streams closed: HEADERS on a stream the
    server itself ended (END_STREAM seen, RFC 9113 section 5.1 "closed")
    raise :class:`h2.exceptions.StreamClosedError`, the connection error
    h2 raises for a stream it still holds. A stream closed by RST_STREAM, or
    closed so long ago that h2 forgot how, is ignored.

    Returns False, having changed nothing, when h2's internals are not as
    expected; the caller then gives the frame to h2 (a connection error).
    Used in both modes: no public h2 API decodes a header block.
    """
    if IMPORT_PROBLEM is not None:
        return False  # pragma: no cover - only with an incompatible h2/hpack
    decoder = getattr(conn, "decoder", None)
    closed_by = getattr(conn, "_stream_closed_by", None)
    if not isinstance(decoder, hpack.Decoder) or not callable(closed_by):
        return False
    # h2's own decode, with its translation of HPACK errors (the core makes
    # those a COMPRESSION_ERROR): the dynamic table changes exactly as if h2
    # had taken the block.
    _decode_headers(decoder, block)
    if closed_by(stream_id) in (StreamClosedBy.RECV_END_STREAM, StreamClosedBy.SEND_END_STREAM):
        error = h2.exceptions.StreamClosedError(stream_id)
        error.args = (f"HEADERS on stream {stream_id}, which the server had already ended",)
        raise error
    return True


from .h2_internals_check import self_test  # noqa: E402  (the check needs the names above)

evaluate()
