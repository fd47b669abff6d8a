"""The incremental request form over HTTP/2: ``putrequest``, ``endheaders``, ``send``.

:class:`H2IncrementalRequests` is mixed into :class:`~hyper.HTTP20Connection`
(``putheader`` and the per-thread request in progress come from
:class:`~hyper.common.request.IncrementalRequests`, shared with HTTP/1.1).
Nothing is sent and no stream id is taken on the wire before
``endheaders()``, so other threads' requests go on while one thread
assembles its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.body import BodyType, RequestBody, prepare_body
from ..common.request import IncrementalRequests, PendingRequest, declared_length, request_line
from ..common.stream_ids import checked_stream_id
from .response import public_stream_ids
from .stream_ids import StreamHandle, StreamRegistry

if TYPE_CHECKING:
    from ..common.request import HeadersType
    from ..headers import HTTPHeaderMap


class H2IncrementalRequests(IncrementalRequests):
    """``putrequest``/``endheaders``/``send`` for HTTP20Connection, which supplies the request steps."""

    # Set by HTTP20Connection.__init__.
    secure: bool
    authority: str
    _registry: StreamRegistry

    if TYPE_CHECKING:
        # The steps of a request, shared with request(), in HTTP20Connection.
        def _prepare(self, headers: HeadersType) -> HTTPHeaderMap: ...

        def _send_headers(
            self,
            method: str,
            path: str,
            header_map: HTTPHeaderMap,
            end_stream: bool,
            public_id: int | None = None,
            declared: int | None = None,
        ) -> tuple[int, StreamHandle]: ...

        def _latest_of_this_thread(self) -> int: ...

        def _handle(self, stream_id: int) -> StreamHandle: ...

    def putrequest(self, method: str, selector: str, **kwargs: Any) -> int:
        """Start a request to be completed with putheader/endheaders/send.

        Returns the stream id the request will use. Nothing is sent and
        nothing is held until :meth:`endheaders`: other threads' requests go
        on meanwhile, and a request abandoned before ``endheaders()`` costs
        nothing (the wire stream id is taken when the HEADERS leave). A
        second ``putrequest()`` in the same thread before ``endheaders()``
        abandons the first: nothing of it was sent and its id is never used.
        """
        # One parse of the URL: request_line() checks its origin and returns the path.
        method, path = request_line(method, selector, secure=self.secure, authority=self.authority)
        # Only this thread ever sees its pending request, and nothing of it has
        # left yet, so replacing it needs no lock and leaves nothing behind.
        header_map = self._prepare(None)
        stream_id = self._registry.take_id()
        self._local.pending = PendingRequest(method, path, header_map, stream_id)
        return stream_id

    def endheaders(
        self, message_body: BodyType = None, final: bool = False, stream_id: int | None = None
    ) -> None:
        """Send the request's HEADERS, then ``message_body`` if given.

        With ``final`` the request is complete (END_STREAM goes with the
        HEADERS, or after ``message_body``); without it, more body may follow
        with :meth:`send`, the last part with ``final=True``. The stream's
        wire id is taken only now. If the headers cannot be sent (a refused
        field, a connection that failed), the request is abandoned: start
        again with :meth:`putrequest`.

        ``content-length`` is added from ``message_body`` only with ``final``
        (only then is it the whole body). A ``content-length`` put with
        :meth:`putheader` holds for the whole body, every :meth:`send`
        included: bytes beyond it are refused before they are sent, and a
        body that ends short of it fails at ``final``; either raises
        :class:`~hyper.exceptions.BodyLengthError` and resets the stream.
        """
        pending = self._pending(stream_id)
        # The request leaves this thread's hands whatever happens next.
        self._local.pending = None
        headers = pending.headers
        body = prepare_body(message_body) if message_body is not None else None
        # Without final, more body may follow with send(): message_body's
        # length is not the request's, and declaring it would make the rest
        # a protocol error (RFC 9113 section 8.1.1) that costs the server
        # the whole connection's streams.
        if final and body is not None and body.length is not None and b"content-length" not in headers:
            headers[b"content-length"] = body.length
        # The caller's content-length (checked, else InvalidHeader before
        # anything is sent) or ours; None when the length is not known.
        declared = declared_length(headers, RequestBody(None, iter(())), pending.method, True)
        # A declared length with no body to match it must fail at final, not
        # leave as HEADERS that end a malformed request.
        end_stream = final and body is None and not declared
        _, handle = self._send_headers(
            pending.method,
            pending.target,
            headers,
            end_stream,
            public_id=pending.stream_id,
            declared=declared,
        )
        if body is None and final and not end_stream:
            body = prepare_body(None)
        if body is not None:
            self._send_data(pending.stream_id, handle, body, final)

    def send(self, data: BodyType, final: bool = False, stream_id: int | None = None) -> None:
        """Send (more) body data on a stream whose headers went out with endheaders.

        Without ``stream_id``, the stream of this thread's latest request
        (never another thread's, sent in between). ``final=True`` ends the
        request.

        Raises :class:`~hyper.exceptions.InvalidStreamID` when the request
        was already ended (by ``final=True`` here or in :meth:`endheaders`,
        or a :meth:`request`), or its stream was reset after a failed send
        or a closed response: the bytes would go nowhere. Raises
        :class:`~hyper.exceptions.BodyLengthError` (and resets the stream)
        when the body would exceed a declared ``content-length``, before
        the excess is sent, or ends short of it at ``final``. When the
        server already answered and stopped the upload (RFC 9113 section
        8.1), the rest is dropped quietly: read the response.
        """
        if stream_id is None:
            stream_id = self._latest_of_this_thread()
        handle = self._handle(checked_stream_id(stream_id))
        self._send_data(stream_id, handle, prepare_body(data), final)

    def _send_data(self, stream_id: int, handle: StreamHandle, body: RequestBody, final: bool) -> None:
        with public_stream_ids(handle.wire_id, stream_id):
            handle.session.send_body(handle.wire_id, body, end_stream=final)
