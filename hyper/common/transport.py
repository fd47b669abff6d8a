"""Opening the byte stream a connection speaks over: TCP, proxy tunnel, TLS.

All three connection classes open their sockets here, so a proxy, a timeout
or a TLS failure behaves the same whichever protocol runs on top.
"""

from __future__ import annotations

import logging
import socket
import ssl

from ..exceptions import ProxyError
from .proxy import ProxyConfig, connect_authority, open_tunnel
from .sockets import connect_tcp, wrap_tls

log = logging.getLogger("hyper")


def open_transport(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    proxy: ProxyConfig | None,
    tunnel: bool,
    connect_timeout: float | None,
) -> tuple[socket.socket, bytes]:
    """Connect to ``host:port`` and return the socket and any early bytes.

    :param ssl_context: do the TLS handshake with it (ALPN as it offers);
        ``None`` for cleartext.
    :param proxy: connect to this proxy instead of the target.
    :param tunnel: with a proxy, ask it for a CONNECT tunnel to the target
        (always done for TLS); without, the caller speaks to the proxy itself.
    :param connect_timeout: bounds the TCP connect, the CONNECT exchange and
        the TLS handshake, each.
    :returns: the connected socket (an :class:`ssl.SSLSocket` with TLS) and
        the bytes the target sent through a fresh tunnel before we spoke
        (only possible in cleartext; normally empty).
    """
    early = b""
    if proxy is None:
        sock = connect_tcp(host, port, connect_timeout)
    else:
        sock = connect_tcp(proxy.host, proxy.port, connect_timeout)
        if tunnel or ssl_context is not None:
            early = open_tunnel(sock, proxy, host, port, connect_timeout)
            log.debug("tunnel to %s open through proxy %s", connect_authority(host, port), proxy.address)
    if ssl_context is not None:
        if early:
            sock.close()
            raise ProxyError(
                f"proxy {proxy.address if proxy else ''} sent {len(early)} bytes before the TLS handshake"
            )
        sock = wrap_tls(sock, ssl_context, host, connect_timeout, port=port)
    return sock, early
