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
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
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
from ..common.transport import open_transport
from ..common.url import origin_of, request_target
from ..exceptions import (
    HyperError,
    InvalidStreamID,
    ReadTimeout,
    TLSError,
    fresh,
)
from ..headers import HTTPHeaderMap
from ..limits import Limits
from ..tls import init_context
from .core import DEFAULT_CONNECTION_WINDOW, DEFAULT_STREAM_WINDOW, H2Core, StreamState
from .fields import build_request_headers
from .keepalive import Keepalive
from .push import HTTP20Push
from .response import HTTP20Response, await_response, public_stream_ids
from .session import H2Session
from .settings import LegacySettingsGuard, RemoteSettings
from .window import BaseFlowControlManager, FlowControlManager

log = logging.getLogger("hyper")

# Each new session's pushed-stream ids start 2**31 above the previous one's.
_IDS_PER_SESSION = 2**31

# A session found unusable (GOAWAY just read) is replaced; bounded retries.
_SESSION_ATTEMPTS = 3


@dataclass
class _Stream:
    """Where a public stream id lives: the session and wire id its HEADERS went out on."""

    session: H2Session
    wire_id: int
    #: ``time.monotonic()`` by which the whole exchange must be done, if bounded.
    deadline_at: float | None = None
    #: A thread is taking (or took) the response: nobody else may.
    claimed: bool = False


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
        by default :func:`hyper.tls.init_context`.
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

        # Guards the fields below; never held while waiting on the network.
        self._lock = threading.Lock()
        self._session: H2Session | None = None
        # Held while opening a connection (network waits), never with _lock.
        self._connect_lock = threading.Lock()
        # Sessions replaced after a graceful GOAWAY that still finish streams.
        self._draining: list[H2Session] = []
        self._streams: dict[int, _Stream] = {}
        self._untaken: OrderedDict[int, None] = OrderedDict()
        self._next_id_base = 0
        # Public stream ids are the connection's own (odd, increasing, never
        # repeated across reconnects), separate from the wire ids of the
        # session that carries them: putrequest() hands one out before any
        # wire id exists, and takes no wire id (nor any lock) until
        # endheaders() sends the HEADERS. Wire ids reach the wire in order
        # because each is taken and sent under its session's state lock.
        self._next_public_id = 1
        # With push on: request streams whose pushes get_pushes() may still
        # ask for (their handles outlive the taken response). Pruned as it grows.
        self._push_parents: dict[int, _Stream] = {}
        self._push_parents_limit = 64
        self._local = threading.local()

    # -- connecting ----------------------------------------------------------

    def connect(self) -> None:
        """Open the connection now instead of at the first request."""
        self._current_session()

    def _current_session(self) -> H2Session:
        session = self._usable_session()
        if session is not None:
            return session
        # Connecting waits on the network, so it happens under its own lock:
        # other threads may keep using the state guarded by self._lock.
        with self._connect_lock:
            session = self._usable_session()  # another thread may have connected
            if session is not None:
                return session
            new = self._open_session()
            self._install(new)
        self._close_drained()
        return new

    def _install(self, new: H2Session) -> None:
        """Make ``new`` the current session; the old one drains its streams."""
        with self._lock:  # guards _session, _draining and the id base together
            old, self._session = self._session, new
            if old is not None:
                self._draining.append(old)
            # Pushed-stream ids of each new connection start above every
            # earlier one, so they never repeat.
            new.id_base = self._next_id_base
            self._next_id_base += _IDS_PER_SESSION

    def _usable_session(self) -> H2Session | None:
        """The open session, None if a new one is due; raises if it broke."""
        # self._lock only guards which session is current; the session's own
        # state is read under its state lock (session.refusal()), never while
        # holding self._lock: an upload may hold that state lock for as long
        # as the socket takes to drain, and self._lock must stay short.
        with self._lock:  # which session is current
            session = self._session
        if session is None:
            return None
        refusal, cleanly = session.refusal()
        if refusal is None:
            return session
        if not cleanly:
            # Broken, not ended: say so until the caller close()s.
            raise fresh(refusal)
        return None

    def _close_drained(self) -> None:
        """Close replaced sessions with no stream left to finish."""
        with self._lock:  # guards the list only
            draining = list(self._draining)
        # Outside self._lock: has_streams() takes each session's state lock.
        drained = [old for old in draining if not old.has_streams()]
        if not drained:
            return
        with self._lock:  # the list again: another thread may have added to it
            self._draining = [old for old in self._draining if old not in drained]
        for finished in drained:
            finished.close()

    def _open_session(self) -> H2Session:
        # The core first: once the socket is open, nothing may raise before
        # the session owns (and on failure closes) it.
        core = self._new_core()
        sock, received = open_transport(
            self.host,
            self.port,
            ssl_context=(self.ssl_context or init_context()) if self.secure else None,
            proxy=self.proxy,
            tunnel=True,
            connect_timeout=self.connect_timeout,
        )
        if isinstance(sock, ssl.SSLSocket):
            selected = sock.selected_alpn_protocol()
            self.negotiated_protocol = selected
            if selected != "h2" and self.force_proto is None:
                sock.close()
                raise TLSError(
                    f"{self.host}:{self.port} did not select HTTP/2 in ALPN "
                    f"(it selected {selected!r}); pass force_proto='h2' to try anyway",
                    selected_protocol=selected,
                )
        log.debug(
            "connected to %s:%d (%s, protocol %s)",
            self.host,
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
        with self._connect_lock:  # no thread may be installing its own session meanwhile
            self._install(session)
        if upgraded is None:
            return None
        return self._register(session, 1)[0]

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
        stream_id, handle = self._send_headers(method, path, header_map, end_stream)
        if not end_stream:
            try:
                with public_stream_ids(handle.wire_id, stream_id):
                    handle.session.send_body(handle.wire_id, prepared, declared)
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
    ) -> tuple[int, _Stream]:
        """Send HEADERS on a usable session; register them under ``public_id`` (a new id if None)."""
        fields = build_request_headers(method, path, self.authority, self._scheme, header_map.items())
        attempt = 1
        while True:
            session = self._current_session()
            wire_id = self._open_stream_on(session, fields, end_stream, attempt == _SESSION_ATTEMPTS)
            if wire_id is not None:
                return self._register(session, wire_id, public_id)
            attempt += 1

    def _open_stream_on(
        self, session: H2Session, fields: list[tuple[bytes, bytes]], end_stream: bool, last_try: bool
    ) -> int | None:
        """Send HEADERS on ``session``; None if it turned out to be unusable."""
        core = session.core
        # The session's state lock: taking the wire id and sending the HEADERS
        # in one hold is what keeps stream ids increasing on the wire.
        with session.cond:
            # Read what already arrived: a GOAWAY or the server's SETTINGS
            # must be known before we open a stream.
            session.poll_locked()
            if not session.usable_locked() and not last_try:
                return None
            session.wait_for(
                core.can_open_stream,
                core.accepting_streams,
                self.read_timeout,
                lambda: ReadTimeout(
                    f"no stream slot freed within {self.read_timeout} s "
                    f"(server allows {core.max_concurrent_streams} at once)"
                ),
            )
            wire_id = core.open_stream(fields, end_stream)
            session.flush_locked()
        return wire_id

    def _register(
        self, session: H2Session, wire_id: int, public_id: int | None = None
    ) -> tuple[int, _Stream]:
        """Record that HEADERS went out as ``wire_id`` on ``session``; return the public id."""
        deadline_at = None if self.deadline is None else time.monotonic() + self.deadline
        handle = _Stream(session, wire_id, deadline_at)
        # self._lock guards the id counter and the maps from public ids,
        # which every thread's getresponse(), send() and get_pushes() read.
        with self._lock:
            if public_id is None:
                public_id = self._take_public_id_locked()
            self._streams[public_id] = handle
            self._untaken[public_id] = None
            prune = False
            if self.enable_push:
                self._push_parents[public_id] = handle
                prune = len(self._push_parents) > self._push_parents_limit
        # Per thread, no lock: the defaults of send() and get_pushes() must
        # name the calling thread's request, not whichever thread sent last.
        self._local.latest = public_id
        if prune:
            self._prune_push_parents()
        return public_id, handle

    def _latest_of_this_thread(self) -> int:
        latest: int | None = getattr(self._local, "latest", None)
        if latest is None:
            raise InvalidStreamID("no request was sent from this thread yet", None)
        return latest

    def _take_public_id_locked(self) -> int:
        public_id = self._next_public_id
        self._next_public_id += 2  # odd, like client-initiated wire ids
        return public_id

    def _prune_push_parents(self) -> None:
        """Forget request streams that can have no push left to hand out."""
        with self._lock:  # a snapshot of the map; checked without it
            candidates = list(self._push_parents.items())
        # Outside self._lock: may_have_pushes() takes the session's state lock.
        done = {
            public_id
            for public_id, handle in candidates
            if not handle.session.may_have_pushes(handle.wire_id)
        }
        with self._lock:  # the map, written by every thread's request
            for public_id in done:
                self._push_parents.pop(public_id, None)
            self._push_parents_limit = max(64, 2 * len(self._push_parents))

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
        with self._lock:  # guards the public id counter
            stream_id = self._take_public_id_locked()
        self._local.pending = PendingRequest(method, path, header_map, stream_id)
        return stream_id

    def endheaders(
        self, message_body: BodyType = None, final: bool = False, stream_id: int | None = None
    ) -> None:
        """Send the headers; with ``final`` (or a ``message_body``) finish the request too.

        If the headers cannot be sent (refused fields, a connection that
        failed), the request is abandoned: start again with :meth:`putrequest`.
        """
        pending = self._pending(stream_id)
        # The request leaves this thread's hands whatever happens next.
        self._local.pending = None
        body = prepare_body(message_body) if message_body is not None else None
        end_stream = final and body is None
        if body is not None and body.length is not None and b"content-length" not in pending.headers:
            pending.headers[b"content-length"] = body.length
        _, handle = self._send_headers(
            pending.method, pending.target, pending.headers, end_stream, public_id=pending.stream_id
        )
        if body is not None:
            self._send_data(pending.stream_id, handle, body, final)

    def send(self, data: BodyType, final: bool = False, stream_id: int | None = None) -> None:
        """Send (more) body data on a stream whose headers went out with endheaders.

        Without ``stream_id``, the stream of this thread's latest request
        (never another thread's, sent in between).
        """
        if stream_id is None:
            stream_id = self._latest_of_this_thread()
        handle = self._handle(stream_id)
        self._send_data(stream_id, handle, prepare_body(data), final)

    def _send_data(self, stream_id: int, handle: _Stream, body: RequestBody, final: bool) -> None:
        with public_stream_ids(handle.wire_id, stream_id):
            handle.session.send_body(handle.wire_id, body, None, end_stream=final)

    # -- responses ------------------------------------------------------------

    def getresponse(self, stream_id: int | None = None) -> HTTP20Response:
        """Wait for and return the response on ``stream_id``.

        Without an id, the response of the oldest stream whose response was
        not yet taken. Responses may be taken in any order.
        """
        # self._lock makes "pick the stream and claim it" one step: two
        # threads asking for the same (or the oldest) response never both
        # get it, which would split its body between them.
        with self._lock:
            if stream_id is None:
                if not self._untaken:
                    raise InvalidStreamID("no request is waiting for its response", None)
                stream_id = next(iter(self._untaken))
            handle = self._streams.get(stream_id)
            if handle is None:
                raise InvalidStreamID(f"no request was sent on stream {stream_id}", stream_id)
            if handle.claimed:
                raise InvalidStreamID(f"the response on stream {stream_id} was already taken", stream_id)
            handle.claimed = True
            self._untaken.pop(stream_id, None)
        try:
            response = self._wait_response(stream_id, handle)
        except BaseException:
            # A timed-out or failed stream is reset and forgotten, so its data
            # stops counting against the connection's window.
            self._forget(stream_id, handle)
            raise
        with self._lock:  # the map from public ids: the response now holds the stream
            self._streams.pop(stream_id, None)
        return response

    get_response = getresponse

    def _wait_response(self, stream_id: int, handle: _Stream) -> HTTP20Response:
        return await_response(
            handle.session,
            handle.wire_id,
            self.read_timeout,
            self.limits,
            handle.deadline_at,
            public_id=stream_id,
        )

    def _forget(self, stream_id: int, handle: _Stream) -> None:
        with self._lock:  # the maps from public ids
            self._streams.pop(stream_id, None)
            self._untaken.pop(stream_id, None)
        session = handle.session
        with session.cond:  # the session's stream table, and the RST_STREAM queued
            session.discard_locked(handle.wire_id)

    def _handle(self, stream_id: int) -> _Stream:
        with self._lock:  # the map from public ids
            handle = self._streams.get(stream_id)
        if handle is None:
            raise InvalidStreamID(f"no request was sent on stream {stream_id}", stream_id)
        return handle

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
        # self._lock guards the public-id maps every thread's request writes.
        with self._lock:
            handle = self._push_parents.get(stream_id)
            known = stream_id < self._next_public_id and stream_id % 2 == 1
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
        core = session.core
        while True:
            # The state lock: the core's push list and the parent's state,
            # which the reader changes; released while the caller holds a push.
            with session.cond:
                session.poll_locked()
                promises = core.take_pushes(wire_id)
                parent = core.streams.get(wire_id)
                more_to_come = (
                    capture_all and parent is not None and not parent.ended and parent.error is None
                )
                if not promises and more_to_come and parent is not None:
                    self._wait_for_push(session, wire_id, parent)
                    continue
            # Yielded without the lock: the caller may read responses meanwhile.
            for promise in promises:
                yield HTTP20Push(session, promise, stream_id, self.read_timeout, self.limits)
            if not more_to_come:
                return

    def _wait_for_push(self, session: H2Session, wire_id: int, parent: StreamState) -> None:
        """Wait until a push for ``wire_id`` arrives or that stream's response ends."""
        core = session.core
        session.wait_for(
            # A reset page ends the iteration (with the pushes made so far);
            # only a failed connection is an error here.
            lambda: (
                parent.ended
                or parent.error is not None
                or any(push.parent_id == wire_id for push in core.pushes)
            ),
            lambda: core.stream_failure(parent),
            self.read_timeout,
            lambda: ReadTimeout(f"no push and no end of stream {wire_id} within {self.read_timeout} s"),
        )

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
        with self._lock:  # detach everything at once; the sessions close outside it
            session, self._session = self._session, None
            draining, self._draining = self._draining, []
            self._streams.clear()
            self._untaken.clear()
            self._push_parents.clear()
        for old in draining:
            old.close(error)
        if session is not None:
            session.close(error)
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
