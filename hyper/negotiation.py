"""Choosing the protocol of a connection: ALPN over TLS, the ``h2c`` upgrade in cleartext.

:class:`~hyper.HTTPConnection` decides when to negotiate and which
connection gets the result; this module does the two negotiations
themselves, through the connections' public (or documented-internal) calls,
never their private ones:

* TLS: one handshake offering ALPN ``h2`` and ``http/1.1``
  (:func:`connect_offering_alpn`); the socket then goes to the chosen
  connection's ``adopt()``.
* Cleartext: the first request goes out as HTTP/1.1 carrying ``Upgrade: h2c``
  and ``HTTP2-Settings`` (RFC 7540 section 3.2; RFC 9113 deprecated the
  upgrade but servers such as hypercorn and nghttpd still take it). On
  ``101 Switching Protocols`` the socket, and the bytes after the 101, become
  an HTTP/2 connection whose stream 1 carries that request's response
  (:func:`request_with_h2c_upgrade`).
"""

from __future__ import annotations

import logging
import ssl

from .common.proxy import ProxyConfig, connect_authority
from .common.request import HeadersType, to_header_map
from .common.transport import open_transport
from .common.url import request_target
from .http11.connection import HTTP11Connection
from .http20.connection import HTTP20Connection

log = logging.getLogger("hyper")

#: ALPN protocols :class:`~hyper.HTTPConnection` offers, most preferred first.
NEGOTIATED_ALPN: tuple[str, ...] = ("h2", "http/1.1")


def connect_offering_alpn(
    host: str,
    port: int,
    context: ssl.SSLContext,
    proxy: ProxyConfig | None,
    connect_timeout: float | None,
) -> tuple[ssl.SSLSocket, str | None]:
    """Connect with TLS (through a ``CONNECT`` tunnel if proxied); return the socket and the ALPN choice.

    ``context`` should offer :data:`NEGOTIATED_ALPN` (a caller's own context
    is used as given). Logs the ``connected to`` line the connection classes
    log when they open their own sockets.
    """
    sock, _ = open_transport(
        host, port, ssl_context=context, proxy=proxy, tunnel=True, connect_timeout=connect_timeout
    )
    assert isinstance(sock, ssl.SSLSocket)  # a context was given
    selected = sock.selected_alpn_protocol()
    log.debug(
        "connected to %s (TLS, protocol %s)", connect_authority(host, port), selected or "not negotiated"
    )
    return sock, selected


def request_with_h2c_upgrade(
    h1: HTTP11Connection, h2: HTTP20Connection, method: str, url: str, headers: HeadersType
) -> tuple[int, bool, bytes]:
    """Send a body-less request over ``h1`` offering ``Upgrade: h2c``; return its id, whether h2 took over,
    and the ``HTTP2-Settings`` value the offer carried.

    On ``101`` the socket leaves ``h1`` for ``h2`` and the id is ``h2``'s
    (the response arrives on stream 1); otherwise the id is ``h1``'s and
    the response is an ordinary HTTP/1.1 one. A server that speaks HTTP/2
    with prior knowledge only makes ``h1`` raise
    :class:`~hyper.http11.wire.PriorKnowledgeOnly`.
    """
    core = h2.new_core()
    # The client's SETTINGS go in HTTP2-Settings; h2 treats them as sent.
    settings = core.initiate_upgrade(head=method.upper() == "HEAD")
    header_map = to_header_map(headers)
    # RFC 7540 section 3.2: both names listed in Connection, so a proxy drops them.
    header_map.add(b"connection", b"Upgrade, HTTP2-Settings")
    header_map[b"upgrade"] = b"h2c"
    header_map[b"http2-settings"] = settings
    stream_id = h1.request_offering_upgrade(method, url, header_map)
    switched = h1.detach_if_switched(stream_id)
    if switched is None:
        return stream_id, False, settings  # the server answered in HTTP/1.1
    sock, received = switched
    return h2.adopt_upgraded(sock, received, core, request_target(url)[0]), True, settings


def adopt_negotiated(
    chosen: HTTP20Connection | HTTP11Connection, sock: ssl.SSLSocket, selected: str | None
) -> None:
    """``chosen`` speaks on the socket ALPN negotiated (closed if that fails)."""
    try:
        chosen.adopt(sock, negotiated_protocol=selected)
    except BaseException:
        sock.close()
        raise
