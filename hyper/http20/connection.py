"""HTTP20Connection: the public face of an HTTP/2 connection.

A thin layer over :class:`~hyper.http20.session.H2Session`: it parses the
address, opens the socket (TLS with ALPN ``h2``, or cleartext with prior
knowledge), builds request headers, maps stream ids to responses and opens a
new session when the old one ended cleanly (e.g. after a graceful GOAWAY).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ..common.body import BodyType, RequestBody, prepare_body
from ..common.decoding import ACCEPT_ENCODING
from ..common.options import connection_options, keepalive_options
from ..common.request import (  # noqa: F401 - HeadersType, TimeoutType: documented here
    HeadersType,
    IncrementalRequests,
    PendingRequest,
    TimeoutType,
    declared_length,
    is_empty,
    request_line,
    to_header_map,
)
from ..common.stream_ids import checked_stream_id
from ..common.transport import open_transport
from ..common.url import host_literal, origin_of, request_target
from ..exceptions import (
    HyperError,
    InvalidStreamID,
    TLSError,
)
from ..headers import HTTPHeaderMap
from ..limits import Limits
from ..tls import H2_ALPN, init_context
from .core import DEFAULT_CONNECTION_WINDOW, DEFAULT_STREAM_WINDOW, H2Core
from .fields import build_request_headers
from .keepalive import Keepalive
from .push import HTTP20Push
from .response import HTTP20Response, await_response, public_stream_ids
from .session import H2Session
from .sessions import SessionSet
from .settings import LegacySettingsGuard, RemoteSettings
from .stream_ids import StreamHandle, StreamRegistry
from .window import BaseFlowControlManager, FlowControlManager

log = logging.getLogger("hyper")

# A session found unusable (GOAWAY just read) is replaced; bounded retries.
_SESSION_ATTEMPTS = 3


class HTTP20Connection(IncrementalRequests):
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

    # -- connecting ----------------------------------------------------------

    def connect(self) -> None:
        """Open the connection now instead of at the first request."""
        self._current_session()

    def _current_session(self) -> H2Session:
        return self._sessions.usable(self._open_session)

    def _open_session(self) -> H2Session:
        # The core first: once the socket is open, nothing may raise before
        # the session owns (and on failure closes) it.
        core = self._new_core()
        try:
            sock, received = open_transport(
                self.host,
                self.port,
                ssl_context=(self.ssl_context or init_context(alpn=H2_ALPN)) if self.secure else None,
                proxy=self.proxy,
                tunnel=True,
                connect_timeout=self.connect_timeout,
            )
        except BaseException:
            # h2's state is a reference cycle until released: without this a
            # failed connect (a server restarting, say) leaves it to the
            # cyclic garbage collector.
            core.release()
            raise
        if isinstance(sock, ssl.SSLSocket):
            selected = sock.selected_alpn_protocol()
            self.negotiated_protocol = selected
            if selected != "h2" and self.force_proto is None:
                sock.close()
                core.release()
                raise TLSError(
                    f"{host_literal(self.host)}:{self.port} did not select HTTP/2 in ALPN "
                    f"(it selected {selected!r}); pass force_proto='h2' to try anyway",
                    selected_protocol=selected,
                )
        log.debug(
            "connected to %s:%d (%s, protocol %s)",
            host_literal(self.host),
            self.port,
            "TLS" if self.secure else "cleartext",
            self.negotiated_protocol or "h2 prior knowledge",
        )
        # H2Session closes the socket itself if its own setup fails.
        session = H2Session(sock, core, self.read_timeout, self.read_timeout)
        try:
            session.start(received)
        except BaseException:
            session.close()
            raise
        self._start_keepalive(session)
        return session

    def _new_core(self) -> H2Core:
        return H2Core(
            window_manager=self.window_manager,
            stream_window=self._stream_window,
            connection_window=self._connection_window,
            limits=self.limits,
            enable_push=self.enable_push,
            origin=origin_of(self._scheme, self.authority),
        )

    # -- adopting a socket (used by hyper.HTTPConnection) ---------------------------

    def _adopt(
        self,
        sock: socket.socket,
        received: bytes = b"",
        negotiated_protocol: str | None = None,
        upgraded: H2Core | None = None,
        target: str = "",
    ) -> int | None:
        """Speak HTTP/2 on a socket another layer connected (ALPN or h2c upgrade).

        ``received`` holds bytes the server already sent. With ``upgraded``
        (a core prepared by :meth:`H2Core.initiate_upgrade`), stream 1 is the
        request that carried ``Upgrade: h2c``; its public id is returned so
        ``getresponse()`` finds its response. Later connections (after
        GOAWAY or close()) are opened as usual, with prior knowledge in
        cleartext.
        """
        core = upgraded or self._new_core()
        session = H2Session(sock, core, self.read_timeout, self.read_timeout)
        try:
            if upgraded is not None:
                session.start_upgraded(received)
            else:
                session.start(received)
        except BaseException:
            session.close()
            raise
        self._start_keepalive(session)
        self.negotiated_protocol = negotiated_protocol
        self._sessions.adopt(session)
        if upgraded is None:
            return None
        return self._register(session, 1, target=target)[0]

    def _start_keepalive(self, session: H2Session) -> None:
        if self.keepalive is not None and self.keepalive_timeout is not None:
            try:
                Keepalive(session, self.keepalive, self.keepalive_timeout).start()
            except BaseException:
                session.close()
                raise

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
        method, url = request_line(method, url, secure=self.secure, authority=self.authority)
        # This thread's unfinished putrequest() sent nothing: drop it, so an
        # exception between putrequest() and endheaders() cannot wedge the thread.
        self._local.pending = None
        path, header_map = self._prepare(method, url, headers)
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
        return stream_id

    def _prepare(self, method: str, url: str, headers: HeadersType) -> tuple[str, HTTPHeaderMap]:
        path, _, authority = request_target(url)
        header_map = to_header_map(headers)
        if authority is not None and b"host" not in header_map:
            header_map[b"host"] = authority
        if b"accept-encoding" not in header_map:
            header_map[b"accept-encoding"] = ACCEPT_ENCODING
        return path, header_map

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
        fields = build_request_headers(method, path, self.authority, self._scheme, header_map.items())
        attempt = 1
        while True:
            session = self._current_session()
            wire_id = self._open_stream_on(
                session, fields, end_stream, attempt == _SESSION_ATTEMPTS, declared
            )
            if wire_id is not None:
                return self._register(session, wire_id, public_id, target=path)
            attempt += 1

    def _open_stream_on(
        self,
        session: H2Session,
        fields: list[tuple[bytes, bytes]],
        end_stream: bool,
        last_try: bool,
        declared: int | None = None,
    ) -> int | None:
        """Send HEADERS on ``session``; None if it turned out to be unusable."""
        return session.open_stream(fields, end_stream, may_refuse=not last_try, declared_length=declared)

    def _register(
        self, session: H2Session, wire_id: int, public_id: int | None = None, target: str = ""
    ) -> tuple[int, StreamHandle]:
        """Record that HEADERS went out as ``wire_id`` on ``session``; return the public id."""
        deadline_at = None if self.deadline is None else time.monotonic() + self.deadline
        handle = StreamHandle(session, wire_id, deadline_at, target=target)
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

    # -- the incremental form ---------------------------------------------------

    def putrequest(self, method: str, selector: str, **kwargs: Any) -> int:
        """Start a request to be completed with putheader/endheaders/send.

        Returns the stream id the request will use. Nothing is sent and
        nothing is held until :meth:`endheaders`: other threads' requests go
        on meanwhile, and a request abandoned before ``endheaders()`` costs
        nothing (the wire stream id is taken when the HEADERS leave). A
        second ``putrequest()`` in the same thread before ``endheaders()``
        abandons the first: nothing of it was sent and its id is never used.
        """
        method, selector = request_line(method, selector, secure=self.secure, authority=self.authority)
        # Only this thread ever sees its pending request, and nothing of it has
        # left yet, so replacing it needs no lock and leaves nothing behind.
        path, header_map = self._prepare(method, selector, None)
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

    # -- responses ------------------------------------------------------------

    def getresponse(self, stream_id: int | None = None) -> HTTP20Response:
        """Wait for and return the response on ``stream_id``.

        Without an id, the response of the oldest stream whose response was
        not yet taken. Responses may be taken in any order.
        """
        if stream_id is not None:
            stream_id = checked_stream_id(stream_id)
        stream_id, handle = self._registry.claim(stream_id)
        try:
            response = self._wait_response(stream_id, handle)
        except BaseException:
            # A timed-out or failed stream is reset and forgotten, so its data
            # stops counting against the connection's window.
            self._forget(stream_id, handle)
            raise
        self._registry.forget(stream_id)  # the response now holds the stream
        response._record_request(self._scheme, self.authority, handle.target)
        return response

    get_response = getresponse

    def _wait_response(self, stream_id: int, handle: StreamHandle) -> HTTP20Response:
        return await_response(
            handle.session,
            handle.wire_id,
            self.read_timeout,
            self.limits,
            handle.deadline_at,
            public_id=stream_id,
        )

    def _forget(self, stream_id: int, handle: StreamHandle) -> None:
        self._registry.forget(stream_id)
        handle.session.discard(handle.wire_id)

    def _handle(self, stream_id: int) -> StreamHandle:
        return self._registry.handle(stream_id)

    # -- server push and ping -----------------------------------------------------

    def get_pushes(self, stream_id: int | None = None, capture_all: bool = False) -> Iterator[HTTP20Push]:
        """The server pushes promised on a request stream, as :class:`~hyper.HTTP20Push` objects.

        ``stream_id`` is the request's stream (by default the most recent
        request sent from this thread). Each push is returned once, whichever call takes it. With
        ``capture_all`` the iterator also waits (each wait bounded by the read
        timeout) for pushes still to come, until that request's response has
        fully arrived; otherwise it returns the pushes received so far.
        """
        if not self.enable_push:
            raise HyperError("server push is disabled on this connection; pass enable_push=True")
        if stream_id is None:
            stream_id = self._latest_of_this_thread()
        stream_id = checked_stream_id(stream_id)
        handle, known = self._registry.push_parent(stream_id)
        if handle is None:
            if known:
                # An older request whose pushes were all handed out (or that
                # never got any): nothing more can come for it.
                return iter(())
            raise InvalidStreamID(f"no request was sent on stream {stream_id} of this connection", stream_id)
        return self._pushes_of(handle.session, handle.wire_id, stream_id, capture_all)

    def _pushes_of(
        self, session: H2Session, wire_id: int, stream_id: int, capture_all: bool
    ) -> Iterator[HTTP20Push]:
        while True:
            # Taken (and waited for) under the session's state lock; yielded
            # without it, so the caller may read responses meanwhile.
            promises, more_to_come = session.take_pushes(wire_id, capture_all, self.read_timeout)
            for promise in promises:
                yield HTTP20Push(session, promise, stream_id, self.read_timeout, self.limits)
            if not more_to_come:
                return

    def ping(self, opaque_data: bytes | str | None = None) -> float:
        """Send PING and wait (bounded by the read timeout) for its ACK; return the round trip in seconds.

        ``opaque_data`` is the 8-byte payload (``str`` is encoded as UTF-8, as
        hyper 0.7 did); by default a random one, so concurrent pings from
        several threads never answer each other.
        """
        # hyper 0.7 took str too (apns2's heartbeat sends '-' * 8), as UTF-8.
        if isinstance(opaque_data, str):
            opaque_data = opaque_data.encode("utf-8")
        elif opaque_data is not None and not isinstance(opaque_data, (bytes, bytearray, memoryview)):
            # bytes(8) would silently make eight zero bytes.
            raise TypeError(f"PING data must be bytes or str, not {type(opaque_data).__name__}")
        payload = os.urandom(8) if opaque_data is None else bytes(opaque_data)
        if len(payload) != 8:
            raise ValueError(f"PING data must be exactly 8 bytes, not {len(payload)}")
        return self._current_session().ping(payload, self.read_timeout)

    # -- the server's SETTINGS, and hyper 0.7's _conn ----------------------------

    @property
    def remote_settings(self) -> RemoteSettings:
        """The server's current SETTINGS, as a read-only snapshot.

        Connects first if needed and waits (bounded by the read timeout) for
        the server's first SETTINGS frame. The server may change them later:
        read again rather than keeping the snapshot.
        """
        return RemoteSettings.from_codes(self._current_session().remote_settings(self.read_timeout))

    @property
    def max_concurrent_streams(self) -> int:
        """How many streams the server lets this connection have open at once (see :attr:`remote_settings`).

        h2 reports ``2**32 + 1`` when the server set no limit.
        """
        return self.remote_settings.max_concurrent_streams

    @property
    def _conn(self) -> LegacySettingsGuard:
        """hyper 0.7 compatibility: ``with conn._conn as h2conn: h2conn.remote_settings``.

        apns2 reads the server's stream limit this way. New code should use
        :attr:`remote_settings` or :attr:`max_concurrent_streams`.
        """
        return LegacySettingsGuard(lambda: self.remote_settings)

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

    def __enter__(self) -> HTTP20Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HTTP20Connection {self._scheme}://{self.authority}>"
