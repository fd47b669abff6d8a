"""HTTP20Connection: the public face of an HTTP/2 connection.

A thin layer over :class:`~hyper.http20.session.H2Session`: it parses the
address, builds request headers, maps stream ids to responses and hands
each step to a session. The rest is mixed in, one job per module:

* :mod:`~hyper.http20.connecting`: opening a session (TLS with ALPN ``h2``,
  or cleartext with prior knowledge), a new one when the old one ended
  cleanly (e.g. after a graceful GOAWAY), and adopting a socket
  :class:`~hyper.HTTPConnection` negotiated;
* :mod:`~hyper.http20.incremental`: ``putrequest``/``endheaders``/``send``;
* :mod:`~hyper.http20.push_ping_settings`: server push, PING and the
  server's SETTINGS;
* :mod:`~hyper.http20.resending`: sending again, from ``getresponse()``, a
  request the server refused unprocessed (RFC 9113 sections 6.8 and 8.7);
* :mod:`~hyper.http20.request_memo`: the fields of requests with no body,
  built once and remembered.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

from ..common.body import BodyType, prepare_body
from ..common.closing import ClosesOnExit
from ..common.options import connection_options, keepalive_options
from ..common.request import (  # noqa: F401 - TimeoutType: documented here
    HeadersType,
    TimeoutType,
    bodiless_length,
    declared_length,
    is_empty,
    request_line,
    to_header_map,
)
from ..common.sockets import fast_paths_forced_off
from ..common.stream_ids import checked_stream_id
from ..exceptions import HyperError, InvalidStreamID
from ..headers import HTTPHeaderMap
from ..limits import Limits
from .connecting import SessionOpening
from .core import DEFAULT_CONNECTION_WINDOW, DEFAULT_STREAM_WINDOW
from .fields import build_request_headers
from .incremental import H2IncrementalRequests
from .push_ping_settings import PushPingSettings
from .request_memo import RememberedRequest, RequestFieldsMemo
from .resending import RefusedResends, resendable_body
from .response import HTTP20Response, await_response, public_stream_ids
from .session import H2Session
from .sessions import SessionSet
from .stream_ids import StreamHandle, StreamRegistry
from .window import BaseFlowControlManager, FlowControlManager

log = logging.getLogger("hyper")

# A session found unusable (GOAWAY just read) is replaced; bounded retries.
# Each try is on a newer session than the last (the set only moves
# forward), so threads sharing a connection to a server that retires it
# every few requests (nginx's keepalive_requests) may each lose a few races
# to the others and still get through; the bound stops only a server that
# refuses every new connection, at a cost of that many connects.
_SESSION_ATTEMPTS = 8
#: Requests with caller fields are remembered (see _caller_request_fields);
#: off with ``HYPER_FAST_PATHS=0``, like every fast path.
_CALLER_FIELDS_MEMO = not fast_paths_forced_off()


class HTTP20Connection(
    SessionOpening, H2IncrementalRequests, PushPingSettings, RefusedResends, RequestFieldsMemo, ClosesOnExit
):
    """One HTTP/2 connection, shared safely by any number of threads.

    :param host: ``'host'``, ``'host:port'`` or ``'[v6addr]:port'``.
    :param port: overrides a port in ``host``; the default is 443.
    :param secure: TLS or not; by default TLS when the port is 443 or an
        ``ssl_context`` is given, cleartext HTTP/2 (prior knowledge) otherwise.
    :param window_manager: a :class:`~hyper.http20.window.BaseFlowControlManager`
        subclass deciding when receive windows are credited back.
    :param enable_push: accept server push (see :meth:`get_pushes`); off by
        default, and then a PUSH_PROMISE is a protocol error.
    :param ssl_context: used exactly as given (it should offer ALPN ``h2``);
        by default ``init_context(alpn=H2_ALPN)`` (:func:`hyper.tls.init_context`),
        which offers only ``h2``.
    :param force_proto: skip the ALPN check and speak HTTP/2 whatever the
        server selected (for servers without ALPN).
    :param proxy_host: an HTTP proxy, ``'host'`` or ``'host:port'`` (port
        8080 when not given); the connection goes through a ``CONNECT``
        tunnel to the target, TLS and ALPN inside it.
    :param proxy_port: overrides a port in ``proxy_host``.
    :param proxy_headers: header fields sent on the CONNECT request, e.g.
        ``{'proxy-authorization': 'Basic ...'}``.
    :param timeout: seconds, or ``(connect, read)``; bounds every blocking
        wait (the read timeout also bounds sends). ``None`` waits forever.
    :param deadline: overall bound in seconds on each exchange, from sending
        its headers to reading the end of its body (``ReadTimeout`` when
        exceeded); the read timeout still bounds each single wait.
    :param limits: a :class:`~hyper.Limits`: bounds on header size, decoded
        body size, stacked codings, floods and buffering.
    :param stream_window: the receive window per stream, in bytes.
    :param connection_window: the receive window of the whole connection.
    :param keepalive: seconds without hearing from the server after which a
        background thread sends PING; ``None`` (the default) for none.
    :param keepalive_timeout: seconds to wait for that PING's ACK before the
        connection is declared dead (:class:`~hyper.ConnectionTerminated` for
        every waiter; the next request reconnects). By default the read
        timeout, or ``keepalive`` when there is none.
    :param proxy_from_env: without ``proxy_host``, take the proxy from
        ``HTTPS_PROXY`` (TLS) or ``HTTP_PROXY`` (cleartext), unless
        ``NO_PROXY`` matches the host.
    :param coalesce_requests: let a burst of requests (one thread's requests
        with no response read in between) leave in one write: :meth:`request`
        still returns at once, and the HEADERS of the burst's later requests
        leave at the latest when the thread next waits, or about one GIL
        switch interval later (a background thread sends them). ``False``
        writes every request before :meth:`request` returns, as hyper 0.7
        did; so does ``HYPER_FAST_PATHS=0``. See :doc:`advanced`.
    :param retry_refused: when the server says it did not process a request
        (a GOAWAY whose last stream id is below it, RFC 9113 section 6.8, or
        RST_STREAM REFUSED_STREAM, section 8.7) and nothing of a response
        came, :meth:`getresponse` sends it again, on a new connection if
        need be, under the same stream id, at most three times; only
        requests with no body or a ``bytes``/``str`` body. ``False``: the
        retryable error is raised at once. See :doc:`advanced`.
    """

    #: The protocol this connection speaks.
    version = "HTTP/2"

    def __init__(
        self,
        host: str,
        port: int | None = None,
        secure: bool | None = None,
        window_manager: type[BaseFlowControlManager] | None = None,
        enable_push: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_headers: HeadersType = None,
        force_proto: str | None = None,
        timeout: TimeoutType = None,
        *,
        limits: Limits | None = None,
        deadline: float | None = None,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        keepalive: float | None = None,
        keepalive_timeout: float | None = None,
        proxy_from_env: bool = False,
        coalesce_requests: bool = True,
        retry_refused: bool = True,
        **kwargs: Any,
    ) -> None:
        options = connection_options(
            "HTTP20Connection",
            host,
            port,
            secure,
            ssl_context,
            proxy_host,
            proxy_port,
            proxy_headers,
            timeout,
            limits=limits,
            deadline=deadline,
            proxy_from_env=proxy_from_env,
            bare_port="443",
            unknown=kwargs,
        )
        self.host, self.port, self.secure = options.host, options.port, options.secure
        self.ssl_context = ssl_context
        self.force_proto = force_proto
        self.connect_timeout, self.read_timeout = options.connect_timeout, options.read_timeout
        self.window_manager = window_manager or FlowControlManager
        #: The bounds on what a server may make this connection do.
        self.limits = options.limits
        #: Overall bound (seconds) on one exchange, from sending its headers
        #: to the end of its body; ``None`` for none. Cuts off a server that
        #: dribbles a byte just often enough to beat the read timeout.
        self.deadline = options.deadline
        #: Server push is accepted (see :meth:`get_pushes`).
        self.enable_push = enable_push
        #: Idle seconds before a keep-alive PING (``None``: no keep-alive); and
        #: how long its ACK is waited for.
        self.keepalive, self.keepalive_timeout = keepalive_options(
            keepalive, keepalive_timeout, self.read_timeout
        )
        #: Bursts of requests leave in one write (see ``coalesce_requests``);
        #: read when a session is opened.
        self.coalesce_requests = bool(coalesce_requests)
        #: Requests the server refused unprocessed are sent again (see ``retry_refused``).
        self.retry_refused = bool(retry_refused)
        self._stream_window = stream_window
        self._connection_window = connection_window
        self.authority = options.authority
        self._scheme = options.scheme
        #: The ALPN protocol of the current socket (``None`` in cleartext).
        self.negotiated_protocol: str | None = None
        #: The proxy in use (host, port, headers), or ``None``. Every socket
        #: goes through a CONNECT tunnel, TLS or cleartext.
        self.proxy = options.proxy

        # The current session and the replaced ones still finishing streams.
        self._sessions = SessionSet()
        # Public stream ids and where each stream lives (see stream_ids.py).
        self._registry = StreamRegistry()
        # Per thread: its pending putrequest() and its latest request's id.
        self._local = threading.local()
        # Requests with no body -> their fields, declared length and path (request_memo.py).
        self._plain_requests: dict[tuple[Any, ...], RememberedRequest] = {}

    # -- sending requests -----------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: BodyType = None,
        headers: HeadersType = None,
    ) -> int:
        """Send a request and return its stream id, without waiting for the response.

        ``body`` may be bytes, str (sent as UTF-8), a file-like object or an
        iterable of bytes; a body is sent before this returns, as fast as the
        server's flow-control windows allow, with bounded memory.
        ``content-length`` is added when the body's length can be known; a
        caller's own value is sent as given and enforced. A request started
        with :meth:`putrequest` in this thread and not yet sent is abandoned.
        """
        if body is None and headers is None:
            # No body and no caller field: the fields depend only on the
            # method, URL, authority and scheme (and whether the connection
            # is secure, which decides the origin an absolute URL must name),
            # so they are built once per such request and reused. The key
            # holds the caller's own str arguments, so a request seen before
            # needs neither the method check nor the URL parse (their
            # answers for these exact strings were remembered with it).
            if type(method) is str and type(url) is str:
                key: tuple[Any, ...] = (method, url, self.authority, self.secure, self._scheme)
                known = self._plain_requests.get(key)
                if known is None:
                    checked, path = request_line(method, url, secure=self.secure, authority=self.authority)
                    known = self._plain_request_fields(key, checked, path)
            else:
                checked, path = request_line(method, url, secure=self.secure, authority=self.authority)
                key = (checked, path, self.authority, self.secure, self._scheme, None)
                known = self._plain_requests.get(key)
                if known is None:
                    known = self._plain_request_fields(key, checked, path)
            # This thread's unfinished putrequest() sent nothing: drop it, so an
            # exception between putrequest() and endheaders() cannot wedge the thread.
            self._local.pending = None
            fields, declared, path = known
            stream_id, _ = self._open_with_fields(list(fields), path, True, None, declared, fields)
            return stream_id
        if body is None and type(headers) is dict and _CALLER_FIELDS_MEMO:
            # No body and a plain dict of str fields (what most programs
            # pass, the same dict request after request): remembered as
            # above, with the fields in the key. None: not one the memo
            # takes; the general path below sends it.
            remembered = self._caller_request_fields(method, url, headers)
            if remembered is not None:
                self._local.pending = None  # as above
                fields, declared, path = remembered
                stream_id, _ = self._open_with_fields(list(fields), path, True, None, declared, fields)
                return stream_id
        # One parse of the URL: request_line() checks its origin and returns the path.
        method, path = request_line(method, url, secure=self.secure, authority=self.authority)
        # As above: the thread's unfinished putrequest() is dropped.
        self._local.pending = None
        header_map = self._prepare(headers)
        prepared = prepare_body(body)
        declared = declared_length(header_map, prepared, method, body is None)
        end_stream = is_empty(prepared, declared)
        stream_id, handle = self._send_headers(method, path, header_map, end_stream, declared=declared)
        if not end_stream:
            try:
                with public_stream_ids(handle.wire_id, stream_id):
                    handle.session.send_body(handle.wire_id, prepared)
            except BaseException:
                self._forget(stream_id, handle)
                raise
            # Sent whole: it may be sent again if refused (resending.py), when
            # it is bytes or str. Set only now, so a refusal that comes during
            # the upload is never answered by a resend racing it. One
            # attribute store: a thread already waiting sees it or not.
            plan = handle.resend
            if plan is not None:
                again = resendable_body(body)
                if again is not None:
                    handle.resend = (plan[0], plan[1], plan[2], again)
        return stream_id

    def _send_headers(
        self,
        method: str,
        path: str,
        header_map: HTTPHeaderMap,
        end_stream: bool,
        public_id: int | None = None,
        declared: int | None = None,
    ) -> tuple[int, StreamHandle]:
        """Send HEADERS on a usable session; register them under ``public_id`` (a new id if None).

        ``declared``: the content-length in ``header_map``, which the body
        (every part of it) is held to.
        """
        # The map's own list, not a copy: the map is this request's alone
        # (built for it, or a pending request no other thread sees).
        fields = build_request_headers(method, path, self.authority, self._scheme, header_map._field_list())
        return self._open_with_fields(fields, path, end_stream, public_id, declared)

    def _open_with_fields(
        self,
        fields: list[tuple[bytes, bytes]],
        path: str,
        end_stream: bool,
        public_id: int | None,
        declared: int | None,
        kept: tuple[tuple[bytes, bytes], ...] | None = None,
    ) -> tuple[int, StreamHandle]:
        """Send HEADERS of ``fields`` on a usable session; as :meth:`_send_headers` describes.

        ``kept``: ``fields`` as a tuple, when the caller has one (remembered
        requests): what a resend sends (resending.py).
        """
        # The first attempt inline (the usual outcome: the current session
        # takes the stream); _usable_session_stream tries again elsewhere.
        session = self._current_session()
        wire_id = session.open_stream(fields, end_stream, may_refuse=True, declared_length=declared)
        if wire_id is None:
            session, wire_id = self._usable_session_stream(fields, end_stream, declared, attempt=2)
        resend = None
        if self.retry_refused:
            # What a resend needs (resending.py); a body is added by request()
            # once it is sent whole. A tuple: never changed after this.
            resend = (kept if kept is not None else tuple(fields), end_stream, declared, None)
        return self._register(session, wire_id, public_id, target=path, resend=resend)

    def _usable_session_stream(
        self, fields: list[tuple[bytes, bytes]], end_stream: bool, declared: int | None, attempt: int = 1
    ) -> tuple[H2Session, int]:
        """Send HEADERS of ``fields`` on a usable session; that session and the wire id.

        ``attempt``: how many sessions were tried before, plus one (see
        :data:`_SESSION_ATTEMPTS`).
        """
        while True:
            session = self._current_session()
            # The last attempt may not be refused: its session's error is the caller's.
            wire_id = session.open_stream(
                fields, end_stream, may_refuse=attempt != _SESSION_ATTEMPTS, declared_length=declared
            )
            if wire_id is not None:
                return session, wire_id
            attempt += 1  # the session turned out unusable (e.g. a GOAWAY just read)

    def _register(
        self,
        session: H2Session,
        wire_id: int,
        public_id: int | None = None,
        target: str = "",
        resend: Any = None,
    ) -> tuple[int, StreamHandle]:
        """Record that HEADERS went out as ``wire_id`` on ``session``; return the public id."""
        deadline_at = None if self.deadline is None else time.monotonic() + self.deadline
        handle = StreamHandle(session, wire_id, deadline_at, target, resend)
        public_id = self._registry.register(handle, public_id, track_pushes=self.enable_push)
        # Per thread, no lock: the defaults of send() and get_pushes() must
        # name the calling thread's request, not whichever thread sent last.
        self._local.latest = public_id
        return public_id, handle

    def _latest_of_this_thread(self) -> int:
        latest: int | None = getattr(self._local, "latest", None)
        if latest is None:
            raise InvalidStreamID("no request was sent from this thread yet", None)
        return latest

    # -- responses ------------------------------------------------------------

    def getresponse(self, stream_id: int | None = None) -> HTTP20Response:
        """Wait for and return the response on ``stream_id``.

        Without an id, the response of the oldest stream whose response was
        not yet taken. Responses may be taken in any order.
        """
        if stream_id is not None and type(stream_id) is not int:
            stream_id = checked_stream_id(stream_id)  # a subclass passes, anything else raises
        stream_id, handle = self._registry.claim(stream_id)
        resends = 0
        while True:
            try:
                # Looked up in this module at each call (tests spy on it).
                response = await_response(
                    handle.session,
                    handle.wire_id,
                    self.read_timeout,
                    self.limits,
                    handle.deadline_at,
                    public_id=stream_id,
                )
                break
            except HyperError as error:
                # Refused unprocessed (RFC 9113 sections 6.8, 8.7) and sendable
                # again: sent again under the same id (resending.py), bounded.
                if not self._may_resend(handle, error, resends):
                    self._forget(stream_id, handle)
                    raise
                resent = self._resend(stream_id, handle)  # forgets the stream if it raises
                if resent is None:
                    raise  # the connection was closed meanwhile: the refusal stands
                handle = resent
                resends += 1
            except BaseException:
                # A timed-out or failed stream is reset and forgotten, so its data
                # stops counting against the connection's window.
                self._forget(stream_id, handle)
                raise
        self._registry.release(stream_id)  # the response now holds the stream
        response.record_request(self._scheme, self.authority, handle.target)
        return response

    get_response = getresponse

    def _forget(self, stream_id: int, handle: StreamHandle) -> None:
        self._registry.forget(stream_id)
        handle.session.discard(handle.wire_id)

    def _handle(self, stream_id: int) -> StreamHandle:
        return self._registry.handle(stream_id)

    # -- closing ----------------------------------------------------------------

    def close(self, error: int = 0, *, error_code: int | None = None) -> None:
        """Send GOAWAY and close the socket. A later request reconnects.

        ``error`` is the GOAWAY error code; ``error_code`` is hyper 0.7's name for it.
        """
        if error_code is not None:
            error = error_code
        # The registry first: a stream registered after this belongs either
        # to a session detached below (its response raises ConnectionClosed)
        # or to one opened after the detach, whose handle must survive.
        self._registry.clear()
        sessions = self._sessions.detach_all()
        for session in sessions:
            session.close(error)
        if sessions:
            log.debug("connection to %s closed", self.authority)

    def __repr__(self) -> str:
        return f"<HTTP20Connection {self._scheme}://{self.authority}>"
