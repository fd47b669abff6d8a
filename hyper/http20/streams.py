"""What one HTTP/2 stream has sent and received: an explicit state per side.

A request stream has two halves (RFC 9113 section 5.1): ours, which sends
the request, and the server's, which sends the response. Each half moves
through a small table of states, h11-style, instead of a bag of booleans:
the code asks ``stream.response is ResponseState.COMPLETE`` rather than
``ended and headers is not None``. Two things stay beside the table because
they are not steps of the exchange but verdicts on it: the stream's
``error`` (a failure the waiters get) and ``discarded`` (the application is
done with it). h2 has already checked the order of frames (section 5.1), so
a pair the table does not list cannot come from the wire; it leaves the
state as it is.

Sans-I/O and lock-free: the core changes these under the session's state lock.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from ..common.body import LengthCounter
from ..exceptions import HyperError
from .window import BaseFlowControlManager


class _FastHashEnum(enum.Enum):
    """An enum hashed by identity, as its members compare.

    ``Enum.__hash__`` is Python code (it hashes the member's name); the
    transition tables below are looked up with a pair of these several
    times per request, where that call was a tenth of a small response's
    bookkeeping. Members are singletons compared by identity, so the
    identity hash is as sound.
    """

    __hash__ = object.__hash__


class RequestState(_FastHashEnum):
    """Our half of a stream."""

    #: HEADERS went out; DATA may follow.
    SENDING = "sending"
    #: END_STREAM sent: the caller finished the request; more body is its mistake.
    DONE = "done"
    #: We reset the stream (the upload failed or was cancelled): nothing more goes out.
    RESET = "reset"
    #: The server reset the stream while we were sending: it wants no more
    #: body (RFC 9113 section 8.1 lets it answer before the request ends).
    STOPPED = "stopped"


class ResponseState(_FastHashEnum):
    """The server's half of a stream."""

    #: No final response yet (1xx responses may come, RFC 9113 section 8.1).
    AWAITING_HEADERS = "awaiting headers"
    #: The final response headers are in; body and trailers may follow.
    RECEIVING_BODY = "receiving body"
    #: END_STREAM after the final headers: the whole response has arrived.
    COMPLETE = "complete"
    #: END_STREAM with no valid final response (its header block was malformed).
    ENDED_UNANSWERED = "ended unanswered"


class RequestEvent(_FastHashEnum):
    """What moves our half: we end it, we reset the stream, or the server does."""

    END_STREAM = "end stream"
    RESET = "reset"
    SERVER_RESET = "server reset"


class ResponseEvent(_FastHashEnum):
    """What moves the server's half."""

    #: Valid final response headers (:status 2xx-5xx).
    FINAL_HEADERS = "final headers"
    #: END_STREAM seen on the server's side.
    END_STREAM = "end stream"


_REQUEST_TRANSITIONS: dict[tuple[RequestState, RequestEvent], RequestState] = {
    (RequestState.SENDING, RequestEvent.END_STREAM): RequestState.DONE,
    (RequestState.SENDING, RequestEvent.RESET): RequestState.RESET,
    (RequestState.SENDING, RequestEvent.SERVER_RESET): RequestState.STOPPED,
}

_RESPONSE_TRANSITIONS: dict[tuple[ResponseState, ResponseEvent], ResponseState] = {
    (ResponseState.AWAITING_HEADERS, ResponseEvent.FINAL_HEADERS): ResponseState.RECEIVING_BODY,
    (ResponseState.RECEIVING_BODY, ResponseEvent.END_STREAM): ResponseState.COMPLETE,
    # The header block was malformed (the stream failed), then END_STREAM came.
    (ResponseState.AWAITING_HEADERS, ResponseEvent.END_STREAM): ResponseState.ENDED_UNANSWERED,
}

_ENDED = (ResponseState.COMPLETE, ResponseState.ENDED_UNANSWERED)


@dataclass(init=False)
class StreamState:
    """What one request stream has sent and received so far.

    The fields are declared below with their defaults; ``__init__`` is
    written out (one is made per request): the generated one would call
    ``__post_init__`` for the derived fields too.
    """

    stream_id: int
    #: Decides when this stream's receive window is credited back.
    window: BaseFlowControlManager
    #: Our half; see :class:`RequestState`.
    request: RequestState = RequestState.SENDING
    #: The server's half; see :class:`ResponseState`.
    response: ResponseState = ResponseState.AWAITING_HEADERS
    #: Final response headers, ``None`` until they arrive.
    headers: list[tuple[bytes, bytes]] | None = None
    #: How many 1xx responses came before the final one (bounded by Limits).
    informational: int = 0
    trailers: list[tuple[bytes, bytes]] | None = None
    #: Body pieces received and not yet taken (bytes, or views of a larger piece).
    data: deque[bytes | memoryview] = field(default_factory=deque)
    #: Flow-controlled bytes received and not yet consumed (padding excluded).
    buffered: int = 0
    #: The application is done with the response: further data is dropped.
    discarded: bool = False
    #: Why this stream failed, if it did.
    error: HyperError | None = None
    #: The request was HEAD: any response DATA is malformed.
    head: bool = False
    # What the hot paths ask for every frame and every read, kept as plain
    # fields (a property call per question cost ~10 % of a download's CPU).
    # Derived from the two states above and updated only by the transitions.
    #: Our side is done sending (END_STREAM sent, or the stream was reset).
    request_ended: bool = field(init=False)
    #: The request body sent so far, against its declared ``content-length``
    #: (if any), across every ``send()`` of the request.
    upload: LengthCounter = field(default_factory=lambda: LengthCounter(None))
    #: The server ended its side (END_STREAM seen).
    ended: bool = field(init=False, default=False)
    #: The whole response has arrived (it may still be unread).
    complete: bool = field(init=False, default=False)
    #: The server promised a push on this stream (PUSH_PROMISE), accepted or
    #: refused: it began processing the request (the class default until set).
    promised: bool = field(init=False, default=False)

    def __init__(
        self,
        stream_id: int,
        window: BaseFlowControlManager,
        request: RequestState = RequestState.SENDING,
        response: ResponseState = ResponseState.AWAITING_HEADERS,
        headers: list[tuple[bytes, bytes]] | None = None,
        informational: int = 0,
        trailers: list[tuple[bytes, bytes]] | None = None,
        data: deque[bytes | memoryview] | None = None,
        buffered: int = 0,
        discarded: bool = False,
        error: HyperError | None = None,
        head: bool = False,
        upload: LengthCounter | None = None,
    ) -> None:
        # The generated __init__'s parameters, in the fields' order.
        self.stream_id = stream_id
        self.window = window
        self.request = request
        self.response = response
        self.headers = headers
        self.informational = informational
        self.trailers = trailers
        self.data = deque() if data is None else data
        self.buffered = buffered
        self.discarded = discarded
        self.error = error
        self.head = head
        self.upload = LengthCounter(None) if upload is None else upload
        # The derived fields, from the two states (the transitions keep them so).
        self.request_ended = request is not RequestState.SENDING
        self.ended = response in _ENDED
        self.complete = response is ResponseState.COMPLETE

    # -- transitions ----------------------------------------------------------------

    def request_event(self, event: RequestEvent) -> None:
        """Move our half on ``event`` (pairs the table does not list change nothing)."""
        self.request = _REQUEST_TRANSITIONS.get((self.request, event), self.request)
        self.request_ended = self.request is not RequestState.SENDING

    def response_event(self, event: ResponseEvent) -> None:
        """Move the server's half on ``event`` (pairs the table does not list change nothing)."""
        self.response = _RESPONSE_TRANSITIONS.get((self.response, event), self.response)
        self.ended = self.response in _ENDED
        self.complete = self.response is ResponseState.COMPLETE

    def final_headers(self, fields: list[tuple[bytes, bytes]]) -> None:
        """The final response headers arrived, checked."""
        self.headers = fields
        self.response_event(ResponseEvent.FINAL_HEADERS)

    # -- questions ------------------------------------------------------------------

    @property
    def has_data(self) -> bool:
        """Body bytes are buffered, not yet taken."""
        return bool(self.data)

    @property
    def may_get_pushes(self) -> bool:
        """Pushes may still be promised on this stream (its response has not ended or failed)."""
        return not self.ended and self.error is None

    @property
    def live(self) -> bool:
        """Frames for this stream still matter: it was neither discarded nor failed."""
        return not self.discarded and self.error is None

    def cannot_have_body(self) -> bool:
        """A response to HEAD, or a 204/304, carries no content (RFC 9110 section 6.4.1)."""
        if self.head:
            return True
        headers = self.headers
        return headers is not None and headers[0][1] in (b"204", b"304")
