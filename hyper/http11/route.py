"""How an :class:`~hyper.HTTP11Connection`'s requests reach the server: the socket and the request head.

:class:`RouteToServer` is mixed into the connection class. It opens a socket
to the server, directly or through an HTTP proxy (a ``CONNECT`` tunnel for
TLS), TLS offering ALPN ``http/1.1``; and it shapes each request head for
that route: the ``Host`` field, ``accept-encoding``, and for a cleartext
proxy (no tunnel) the absolute-form target with the proxy's header fields
(RFC 9112 section 3.2.2). It touches no shared state: the connection's
channel takes the socket (:meth:`RouteToServer._open_wire`) under its lock.
"""

from __future__ import annotations

import logging
import socket
import ssl

import h11

from ..common.decoding import ACCEPT_ENCODING
from ..common.proxy import ProxyConfig
from ..common.request import HeadersType, to_header_map
from ..common.transport import open_transport
from ..common.url import request_target
from ..exceptions import InvalidHeader, TLSError
from ..headers import HTTPHeaderMap
from ..limits import Limits
from ..tls import init_context
from .wire import Wire

log = logging.getLogger("hyper")

#: ALPN protocols offered by :class:`~hyper.HTTP11Connection`.
HTTP11_ALPN: tuple[str, ...] = ("http/1.1",)


class RouteToServer:
    """Opening sockets and shaping request heads for HTTP11Connection (mixed into it)."""

    # Set by HTTP11Connection.__init__ (see its docstring for each).
    host: str
    port: int
    secure: bool
    ssl_context: ssl.SSLContext | None
    connect_timeout: float | None
    limits: Limits
    authority: str
    proxy: ProxyConfig | None
    negotiated_protocol: str | None

    def _open_wire(self) -> Wire:
        """A new socket to the server (through the proxy, TLS with ALPN ``http/1.1`` if secure)."""
        context = None
        if self.secure:
            context = self.ssl_context or init_context(alpn=HTTP11_ALPN)
        sock, early = open_transport(
            self.host,
            self.port,
            ssl_context=context,
            proxy=self.proxy,
            tunnel=False,
            connect_timeout=self.connect_timeout,
        )
        if isinstance(sock, ssl.SSLSocket):
            selected = sock.selected_alpn_protocol()
            if selected not in (None, "http/1.1", "http/1.0"):
                sock.close()
                raise TLSError(
                    f"{self.authority} selected {selected!r} in ALPN, not HTTP/1.1 "
                    "(use hyper.HTTPConnection to speak whatever the server selects)",
                    selected_protocol=selected,
                )
            self.negotiated_protocol = selected
        log.debug("connected to %s (HTTP/1.1, %s)", self.authority, "TLS" if self.secure else "cleartext")
        return self._new_wire(sock, early)

    def _new_wire(self, sock: socket.socket, early: bytes) -> Wire:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=self.limits.max_header_list_size)
        return Wire(sock, conn, early)

    def _prepare(self, method: str, url: str, headers: HeadersType) -> tuple[str, HTTPHeaderMap]:
        """The request target for this route and the head fields (``headers`` plus the defaults)."""
        if not method or any(c in method for c in " \r\n\x00\t"):
            raise InvalidHeader(f"invalid method {method!r}")
        path, _, authority = request_target(url)
        header_map = to_header_map(headers)
        if b"host" not in header_map:
            header_map[b"host"] = authority if authority is not None else self.authority
        if b"accept-encoding" not in header_map:
            header_map[b"accept-encoding"] = ACCEPT_ENCODING
        target = path
        if self.proxy is not None and not self.secure and path != "*":
            # No tunnel in cleartext: the proxy needs the absolute form.
            host = header_map.get_first(b"host") or self.authority.encode("ascii")
            target = f"http://{host.decode('latin-1')}{path}"
            for name, value in self.proxy.headers.items():
                if name not in header_map:
                    header_map.add(name, value)
        return target, header_map
