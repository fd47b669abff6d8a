"""HTTP20Push: a response the server pushed, and the request it promised to answer."""

from __future__ import annotations

import threading

from ..headers import HTTPHeaderMap
from ..limits import Limits
from .pushes import PushPromise
from .response import HTTP20Response, await_response
from .session import H2Session


class HTTP20Push:
    """A server push (RFC 9113 section 8.4): the promised request and, on demand, its response.

    Pushes come from :meth:`HTTP20Connection.get_pushes
    <hyper.HTTP20Connection.get_pushes>`. ``scheme``, ``method``,
    ``authority`` and ``path`` describe the request the server answers
    (always this connection's origin: pushes for any other are refused);
    ``request_headers`` holds its other fields. Take the response with
    :meth:`getresponse`, or refuse it with :meth:`cancel`. A push nobody takes
    holds its data (at most one stream window) until the connection closes.
    """

    def __init__(
        self,
        session: H2Session,
        promise: PushPromise,
        parent_stream_id: int,
        read_timeout: float | None,
        limits: Limits,
    ) -> None:
        self._session = session
        self._wire_id = promise.stream_id
        self._read_timeout = read_timeout
        self._limits = limits
        self._response: HTTP20Response | None = None
        # Makes "wait for the response and keep it" one step: two threads
        # calling getresponse() get the same response, not two objects
        # splitting one body. Held across the (bounded) wait for the
        # headers, never with the session's state lock held.
        self._taking = threading.Lock()
        pseudo = {name: value for name, value in promise.request_headers if name.startswith(b":")}
        #: ``'https'`` or ``'http'``.
        self.scheme = pseudo[b":scheme"].decode("latin-1")
        #: ``'GET'`` or ``'HEAD'``: only safe, cacheable requests are pushed.
        self.method = pseudo[b":method"].decode("latin-1")
        #: The promised request's authority (this connection's).
        self.authority = pseudo[b":authority"].decode("latin-1")
        #: The promised request's path, with its query.
        self.path = pseudo[b":path"].decode("latin-1")
        #: The promised request's other header fields.
        self.request_headers = HTTPHeaderMap.from_wire(
            [(name, value) for name, value in promise.request_headers if not name.startswith(b":")]
        )
        #: The id of the stream the response arrives on (an even number,
        #: counted like the connection's request stream ids).
        self.stream_id = promise.stream_id + session.id_base
        #: The id of the request stream the server made this promise on.
        self.parent_stream_id = parent_stream_id

    def getresponse(self) -> HTTP20Response:
        """Wait (bounded by the read timeout) for the pushed response, and return it.

        Every call, from any thread, returns the same response object.
        """
        with self._taking:
            if self._response is None:
                self._response = await_response(
                    self._session, self._wire_id, self._read_timeout, self._limits, public_id=self.stream_id
                )
                self._response.record_request(self.scheme, self.authority, self.path)
            return self._response

    get_response = getresponse

    def cancel(self) -> None:
        """Refuse the push: RST_STREAM (CANCEL) unless it already finished, and drop its data."""
        self._session.discard(self._wire_id)

    def __repr__(self) -> str:
        target = f"{self.scheme}://{self.authority}{self.path}"
        return f"<HTTP20Push {self.method} {target} stream {self.stream_id}>"
