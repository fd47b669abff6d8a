"""HTTP20Response: one stream's response, pulling its body through the connection."""

from __future__ import annotations

import http
import re
import time
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any

from ..common.closing import ClosesOnExit
from ..common.reading import DecodedBodyReader
from ..common.sockets import fast_paths_forced_off
from ..exceptions import ConnectionClosed, HyperError, HyperTimeout, ProtocolError, ReadTimeout
from ..headers import HTTPHeaderMap
from ..limits import Limits
from .session import BodyPiece, H2Session

_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
# Every :status the core lets through (RFC 9113 section 8.3.2; hyper's core
# takes 100-599) -> its int and reason phrase: one lookup per response
# instead of a length check, isdigit(), int() and the phrase lookup. Any
# other value is parsed as before (_parsed_status).
_STATUSES = {str(code).encode("ascii"): (code, _REASONS.get(code, "")) for code in range(100, 600)}

#: The response's own short paths (header names the core checked looked up
#: as they are, a whole held body read in one step) are on: off with
#: ``HYPER_FAST_PATHS=0``, like every fast path (see hyper.http20.h2_internals).
FAST_PATHS = not fast_paths_forced_off()


class HTTP20Response(DecodedBodyReader, ClosesOnExit):
    """The response to one request sent over an :class:`~hyper.HTTP20Connection`.

    ``status`` (int), ``reason`` (the standard phrase) and ``headers`` are set
    when the object is made; the body is read on demand with :meth:`read` or
    :meth:`read_chunked`, and ``trailers`` fill in once the body has been read
    to its end. Closing a response before its end resets its stream without
    harming the connection's other streams; reading it after that raises
    :class:`~hyper.ConnectionClosed` (only a body read to its end reads as
    ``b''``).
    """

    #: The protocol version of the response, always ``"HTTP/2"``.
    version = "HTTP/2"

    def __init__(
        self,
        session: H2Session,
        stream_id: int,
        raw_headers: list[tuple[bytes, bytes]],
        limits: Limits | None = None,
        deadline_at: float | None = None,
        public_id: int | None = None,
        held: BodyPiece | None = None,
        *,
        names_checked: bool = False,
    ) -> None:
        # names_checked: every header name is known to be lower case (hyper's
        # core checked the block, RFC 9113 section 8.2.1), so lookups need not
        # lower-case each one. Only await_response() says so.
        self._session = session
        # The wire id names the stream to the session; the public id (the
        # connection's, handed to the application) names it to the user.
        self._stream_id = stream_id
        self._public_id = stream_id if public_id is None else public_id
        self._limits = limits or Limits()
        self._deadline_at = deadline_at
        # The core checked the block: :status comes first, once, and is the
        # only pseudo-header.
        status = raw_headers[0][1] if raw_headers and raw_headers[0][0] == b":status" else None
        #: The response header fields (pseudo-headers such as ``:status`` removed).
        self.headers = HTTPHeaderMap.from_wire(
            raw_headers[1:] if status is not None else raw_headers,
            lower_case=names_checked and FAST_PATHS,
        )
        known = _STATUSES.get(status) if type(status) is bytes else None
        if known is None and (known := _parsed_status(status)) is None:
            raise ProtocolError(f"stream {stream_id}: invalid or missing :status {status!r}")
        #: The status code, e.g. ``200``.
        self.status = known[0]
        #: The standard reason phrase for ``status`` (HTTP/2 sends none).
        self.reason = known[1]
        # The trailers map is made when first asked for (most responses
        # never are), by _trailer_map(): one atomic step, so two threads
        # asking at once share one map.
        # The whole body, when the session handed it over with the headers
        # (its bytes and trailers; the stream is already finished with):
        # reads take it from here, with no session call. _held_at (a class
        # default until a read takes part of it) is how much was taken.
        self._held = held
        # _decoder and _decode_choice (DecodedBodyReader), _raw_done,
        # _complete and _closed start as the class defaults below: one
        # attribute store fewer each per response.

    # The raw body was taken to its end or the response closed; the body
    # was read to its end (as opposed to closed part-way); closed.
    _raw_done = False
    _complete = False
    _closed = False
    _held_at = 0
    # What the session handed over whole (see __init__), or None.
    _held: BodyPiece | None = None

    @property
    def stream_id(self) -> int:
        """The stream id of this response, as the connection's ``request()`` returned it."""
        return self._public_id

    @property
    def trailers(self) -> HTTPHeaderMap:
        """Trailing header fields; empty until the body has been read to its end."""
        # One map for the response's life: a reference taken before the end
        # sees the trailers once they arrive.
        return self._trailer_map()

    def _trailer_map(self) -> HTTPHeaderMap:
        """The response's one trailers map, made on first use.

        ``dict.setdefault`` with a str key is one atomic step (CPython runs
        it whole; a free-threaded build locks the dict for it): a thread
        asking for trailers while another adds them at the body's end gets
        the same map, never a second one whose fields would be lost.
        """
        trailers: HTTPHeaderMap | None = self.__dict__.get("_trailers")
        if trailers is None:
            trailers = self.__dict__.setdefault("_trailers", HTTPHeaderMap.from_wire([]))
        return trailers

    @property
    def closed(self) -> bool:
        """True once the body was read to its end or :meth:`close` was called."""
        return self._closed

    # -- reading (read/read_chunked come from DecodedBodyReader) ------------

    def _read_held_whole(self, decode_content: bool) -> bytes | None:
        """``read()`` of the whole body in one step, when it came with the headers; else ``None``.

        Asked by :meth:`~hyper.common.reading.DecodedBodyReader.read` (for
        ``amt=None``) while ``_held`` is set. When nothing of the held body
        was taken and it needs no decoding, read() of all of it is those
        bytes, as the general loop returns them (after one _pull_held()
        call, or joined from its pieces for a body over DECODE_STEP).
        """
        held = self._held
        if held is None or self._held_at != 0 or not FAST_PATHS:
            return None
        if self._decode_choice is None:
            # The first read: what _decoder_for() decides, without its calls
            # when there is nothing to decode (no content-encoding at all,
            # most bodies, or decode_content=False). A coding to set up
            # goes to the general read, which makes the decoder.
            if decode_content:
                headers = self.headers
                if not headers._names_lower:
                    if b"content-encoding" in headers:
                        return None
                else:
                    # ``b"content-encoding" in headers`` for checked (lower
                    # case) names, without the call: asked once per response.
                    for name, _ in headers._fields:
                        if name == b"content-encoding":
                            return None
            self._decode_choice = decode_content
        elif self._decoder is not None:
            return None  # an earlier read chose to decode: the general loop does
        self._held = None
        trailers = held[1]
        if trailers:
            self._body_complete(trailers)
        else:
            # What _body_complete() does when no trailers came (the usual
            # case), without the call: the body is complete and taken.
            self._raw_done = self._complete = self._closed = self._body_ended = True
        return held[0]

    # -- the raw body -------------------------------------------------------

    def _pull(self, max_bytes: int | None) -> bytes:
        """Raw body bytes: waits for some, returns ``b''`` only at the end."""
        if self._body_ended:
            return b""  # taken to its end: nothing to wait for, no session call
        # What public_stream_ids does, inline: this runs once per read.
        try:
            return self._pull_raw(max_bytes)
        except HyperError as exc:
            _rename_stream(exc, self._stream_id, self._public_id)
            raise

    def _pull_raw(self, max_bytes: int | None) -> bytes:
        if self._held is not None:
            return self._pull_held(max_bytes)
        if self._raw_done:
            if self._complete:
                return b""
            raise ConnectionClosed(f"response on stream {self._public_id} was closed before its end")
        if self._deadline_at is None:
            # The usual case: the read timeout bounds the wait, and its error
            # (with its message) is only made if it expires.
            timeout: float | None = self._session.read_timeout
            on_timeout: Callable[[], HyperTimeout] = self._no_data_in_time
        else:
            timeout, on_timeout = wait_limit(
                self._session.read_timeout, self._deadline_at, f"no data on stream {self._public_id}"
            )
        piece = self._session.read_body(self._stream_id, max_bytes, timeout, on_timeout)
        if piece is None:
            raise ConnectionClosed(f"response on stream {self._public_id} was closed")
        data, trailers = piece
        if trailers is not None:
            self._body_complete(trailers)
        return data

    def _pull_held(self, max_bytes: int | None) -> bytes:
        """Up to ``max_bytes`` of the body the session handed over whole, as read_body would give them."""
        data, trailers = self._held  # type: ignore[misc]  # the caller checked it is there
        start = self._held_at
        if max_bytes is None or start + max_bytes >= len(data):
            # The rest of it: the body is complete, as when read_body returns its end.
            self._held = None
            self._body_complete(trailers or [])
            return data if start == 0 else data[start:]
        self._held_at = start + max_bytes
        return data[start : start + max_bytes]

    def _body_complete(self, trailers: list[tuple[bytes, bytes]]) -> None:
        # The body is complete and fully taken; the session is done with the
        # stream, so the caller's next read needs no lock and no wait.
        self._raw_done = True
        self._complete = True
        self._closed = True
        self._body_ended = True
        if trailers:
            received = self._trailer_map()
            for name, value in trailers:
                received.add(name, value)

    def _no_data_in_time(self) -> HyperTimeout:
        # As wait_limit() words it without a deadline.
        what = f"no data on stream {self._public_id}"
        return ReadTimeout(f"{what} within the read timeout of {self._session.read_timeout} s")

    # -- closing ------------------------------------------------------------

    def close(self) -> None:
        """Stop reading: an unfinished stream is reset, the connection lives on."""
        if self._closed:
            return
        self._closed = True
        self._raw_done = True
        if self._held is not None:
            # The session already finished with the stream: only the bytes go.
            self._held = None
            return
        self._session.discard(self._stream_id)

    def fileno(self) -> int:
        """The connection socket's file descriptor (shared by all its streams)."""
        return self._session.fileno()

    def __repr__(self) -> str:
        return f"<HTTP20Response stream={self._public_id} status={self.status}>"


def _parsed_status(status: Any) -> tuple[int, str] | None:
    """``(code, reason)`` of a :status outside ``_STATUSES``; ``None`` unless three digits."""
    if status is None or len(status) != 3 or not status.isdigit():
        return None
    code = int(status)
    return code, _REASONS.get(code, "")


class public_stream_ids:  # noqa: N801 - used as a function, as when it was a @contextmanager
    """Errors about wire stream ``wire_id`` leave with ``stream_id`` set to ``public_id``.

    ``with public_stream_ids(wire_id, public_id): ...``. The core names
    streams by wire id; the application knows the ids the connection handed
    out, which differ once a putrequest() or a reconnect came in between. A
    class rather than a ``@contextmanager`` generator: it runs per request.
    """

    __slots__ = ("_wire_id", "_public_id")

    def __init__(self, wire_id: int, public_id: int | None) -> None:
        self._wire_id = wire_id
        self._public_id = public_id

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, HyperError):
            _rename_stream(exc, self._wire_id, self._public_id)
        # None: the exception, if any, goes on as it is.


def _rename_stream(exc: HyperError, wire_id: int, public_id: int | None) -> None:
    """Make ``exc``, about wire stream ``wire_id``, name the stream by ``public_id``."""
    if public_id is not None and public_id != wire_id and getattr(exc, "stream_id", None) == wire_id:
        # Each raise is a fresh copy (exceptions.fresh): changing it is safe.
        exc.stream_id = public_id  # type: ignore[attr-defined]
        if exc.args and isinstance(exc.args[0], str):
            message = re.sub(rf"\bstream {wire_id}\b", f"stream {public_id}", exc.args[0])
            exc.args = (message, *exc.args[1:])


def await_response(
    session: H2Session,
    stream_id: int,
    read_timeout: float | None,
    limits: Limits,
    deadline_at: float | None = None,
    public_id: int | None = None,
) -> HTTP20Response:
    """Wait (bounded) for the response headers of wire stream ``stream_id`` and wrap them.

    ``public_id`` is the id the application knows the stream by. A response
    refused by its own checks discards its stream before raising.
    """
    shown = stream_id if public_id is None else public_id
    timeout: float | None = read_timeout
    on_timeout: Callable[[], HyperTimeout]
    if deadline_at is None:
        # The usual case: the message is only written if the wait expires.
        on_timeout = partial(_no_response_in_time, shown, read_timeout)
    else:
        timeout, on_timeout = wait_limit(read_timeout, deadline_at, f"no response on stream {shown}")
    try:
        # With the headers, the whole body when it is already here (small
        # responses usually arrive in one read): reading it then needs no
        # second session call.
        raw_headers, held = session.await_response_start(stream_id, timeout, on_timeout)
    except HyperError as exc:
        _rename_stream(exc, stream_id, public_id)
        raise
    try:
        # The core checked the block (fields.response_header_problem):
        # its names are lower case.
        return HTTP20Response(
            session, stream_id, raw_headers, limits, deadline_at, public_id, held, names_checked=True
        )
    except HyperError:
        session.discard(stream_id)
        raise


def _no_response_in_time(shown: int, read_timeout: float | None) -> HyperTimeout:
    # As wait_limit() words it without a deadline.
    return ReadTimeout(f"no response on stream {shown} within the read timeout of {read_timeout} s")


def wait_limit(
    read_timeout: float | None, deadline_at: float | None, what: str
) -> tuple[float | None, Callable[[], HyperTimeout]]:
    """The bound of one wait, and the error when it expires.

    The read timeout, or less when the exchange's overall deadline (a
    ``time.monotonic()`` value) comes first. ``what`` starts the message.
    """
    if deadline_at is not None:
        remaining = max(0.0, deadline_at - time.monotonic())
        if read_timeout is None or remaining < read_timeout:
            return remaining, lambda: ReadTimeout(f"{what}: the exchange's overall deadline passed")
    return read_timeout, lambda: ReadTimeout(f"{what} within the read timeout of {read_timeout} s")


def __getattr__(name: str) -> Any:
    """hyper 0.7 compatibility: ``from hyper.http20.response import HTTP20Push``.

    0.7 kept the push class in this module. It lives in
    :mod:`hyper.http20.push` now, which imports this module, so it is
    looked up lazily here (an import at the top would be circular).
    """
    if name == "HTTP20Push":
        from .push import HTTP20Push

        return HTTP20Push
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
