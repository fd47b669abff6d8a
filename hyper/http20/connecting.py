"""The sessions under an :class:`~hyper.HTTP20Connection`: opening one, or adopting a connected socket.

:class:`SessionOpening` is mixed into the connection class. It opens the
session a request goes on (TLS with ALPN ``h2``, or cleartext with prior
knowledge, through a proxy tunnel when asked), replaces a session that ended
cleanly (``SessionSet`` decides when), starts the keep-alive, and offers the
documented-internal calls :class:`~hyper.HTTPConnection`'s negotiation
(:mod:`hyper.negotiation`) uses to hand over a socket it connected itself:

* :meth:`SessionOpening.adopt`: a TLS socket on which ALPN selected ``h2``;
* :meth:`SessionOpening.new_core` and :meth:`SessionOpening.adopt_upgraded`:
  a cleartext socket after ``101 Switching Protocols`` answered an
  ``Upgrade: h2c`` request, whose response arrives on stream 1.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import TYPE_CHECKING

from ..common.proxy import ProxyConfig
from ..common.transport import open_transport
from ..common.url import host_literal, origin_of
from ..exceptions import TLSError
from ..limits import Limits
from ..tls import H2_ALPN, init_context
from .core import H2Core
from .keepalive import Keepalive
from .session import H2Session
from .sessions import SessionSet
from .window import BaseFlowControlManager

if TYPE_CHECKING:
    from .stream_ids import StreamHandle

log = logging.getLogger("hyper")


class SessionOpening:
    """Opening and adopting the HTTP/2 sessions of a connection (mixed into HTTP20Connection).

    Reads the connection's settings when a session is opened, not before,
    so a setting changed on the connection holds for its next session.
    """

    # Set by HTTP20Connection.__init__ (see its docstring for each).
    host: str
    port: int
    secure: bool
    ssl_context: ssl.SSLContext | None
    force_proto: str | None
    connect_timeout: float | None
    read_timeout: float | None
    window_manager: type[BaseFlowControlManager]
    limits: Limits
    enable_push: bool
    keepalive: float | None
    keepalive_timeout: float | None
    coalesce_requests: bool
    authority: str
    proxy: ProxyConfig | None
    negotiated_protocol: str | None
    _stream_window: int
    _connection_window: int
    _scheme: str
    _sessions: SessionSet

    if TYPE_CHECKING:
        # HTTP20Connection records the stream an upgraded request went on.
        def _register(
            self, session: H2Session, wire_id: int, public_id: int | None = None, target: str = ""
        ) -> tuple[int, StreamHandle]: ...

    def connect(self) -> None:
        """Open the connection now instead of at the first request."""
        self._current_session()

    def _current_session(self) -> H2Session:
        return self._sessions.usable(self._open_session)

    def _open_session(self) -> H2Session:
        # The core first: once the socket is open, nothing may raise before
        # the session owns (and on failure closes) it.
        core = self.new_core()
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
        session = H2Session(sock, core, self.read_timeout, self.read_timeout, coalesce=self.coalesce_requests)
        try:
            session.start(received)
        except BaseException:
            session.close()
            raise
        self._start_keepalive(session)
        return session

    def new_core(self) -> H2Core:
        """A protocol core configured as this connection's sessions are (windows, limits, push).

        For the h2c upgrade: :class:`~hyper.HTTPConnection` has it prepare
        the ``HTTP2-Settings`` of the offer (:meth:`H2Core.initiate_upgrade`),
        then passes it back to :meth:`adopt_upgraded`.
        """
        return H2Core(
            window_manager=self.window_manager,
            stream_window=self._stream_window,
            connection_window=self._connection_window,
            limits=self.limits,
            enable_push=self.enable_push,
            origin=origin_of(self._scheme, self.authority),
        )

    # -- adopting a socket another layer connected (for hyper.HTTPConnection) ---------

    def adopt(
        self, sock: socket.socket, received: bytes = b"", negotiated_protocol: str | None = None
    ) -> None:
        """Speak HTTP/2 on a TLS socket :class:`~hyper.HTTPConnection` connected and negotiated.

        ALPN selected ``h2`` (``negotiated_protocol``), or ``force_proto``
        asked for HTTP/2 whatever it selected. ``received`` holds bytes the
        server already sent on it. If the
        session cannot start, the socket is closed and the error raised.
        Later sessions (after a GOAWAY or :meth:`close`) are opened as usual.
        """
        self._adopt(sock, received, negotiated_protocol, None)

    def adopt_upgraded(self, sock: socket.socket, received: bytes, core: H2Core, target: str) -> int:
        """Speak HTTP/2 on a cleartext socket after ``101 Switching Protocols`` (the h2c upgrade).

        ``core`` is the one :meth:`new_core` made and whose
        :meth:`~hyper.http20.core.H2Core.initiate_upgrade` gave the offer's
        ``HTTP2-Settings``; ``received`` holds the bytes after the 101. The
        request that carried ``Upgrade: h2c`` (sent to ``target``) is stream
        1 (RFC 7540 section 3.2); the returned id is its public id, for
        ``getresponse()``. Later sessions use prior knowledge in cleartext.
        """
        session = self._adopt(sock, received, None, core)
        return self._register(session, 1, target=target)[0]

    def _adopt(
        self, sock: socket.socket, received: bytes, negotiated_protocol: str | None, upgraded: H2Core | None
    ) -> H2Session:
        """Start a session on ``sock`` (an upgraded one with ``upgraded``) and make it the current one."""
        core = upgraded or self.new_core()
        session = H2Session(sock, core, self.read_timeout, self.read_timeout, coalesce=self.coalesce_requests)
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
        return session

    def _start_keepalive(self, session: H2Session) -> None:
        if self.keepalive is not None and self.keepalive_timeout is not None:
            try:
                Keepalive(session, self.keepalive, self.keepalive_timeout).start()
            except BaseException:
                session.close()
                raise
