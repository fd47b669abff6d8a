"""Opening TCP and TLS connections, and bounded waits on sockets.

Every failure comes out as a ``hyper`` exception with the ``socket`` or
``ssl`` error chained.
"""

from __future__ import annotations

import select
import socket
import ssl

from ..exceptions import ConnectError, ConnectTimeout, TLSError

_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
_POLL_OUT = select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL


def connect_tcp(host: str, port: int, timeout: float | None) -> socket.socket:
    """Open a TCP connection (IPv4 or IPv6) with Nagle's algorithm off."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise ConnectTimeout(f"connecting to {host}:{port} timed out after {timeout} s") from exc
    except OSError as exc:
        raise ConnectError(f"could not connect to {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not a TCP socket (tests may hand us a socketpair)
    return sock


def wrap_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    server_hostname: str,
    timeout: float | None,
) -> ssl.SSLSocket:
    """Do the TLS handshake on ``sock``, within ``timeout``; close it on failure."""
    sock.settimeout(timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=server_hostname)
    except TimeoutError as exc:
        sock.close()
        raise ConnectTimeout(f"TLS handshake with {server_hostname} timed out after {timeout} s") from exc
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise TLSError(f"certificate of {server_hostname} not trusted: {exc.verify_message}") from exc
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {server_hostname} failed: {exc}") from exc
    return tls


def wait_for_socket(
    sock: socket.socket,
    read: bool,
    write: bool,
    timeout: float | None,
    wake: socket.socket | None = None,
) -> tuple[bool, bool]:
    """Wait until ``sock`` is readable and/or writable.

    Returns ``(readable, writable)``; with a ``wake`` socket, returns
    ``(readable, woken)`` instead, ``woken`` meaning ``wake`` became readable.
    Errors and hang-ups count as ready, so the following call sees them.
    ``timeout`` ``None`` waits without limit (callers always pass a bound).
    """
    poller = select.poll()
    mask = (_POLL_IN if read else 0) | (_POLL_OUT if write else 0)
    poller.register(sock.fileno(), mask)
    wake_fd = -1
    if wake is not None:
        wake_fd = wake.fileno()
        poller.register(wake_fd, _POLL_IN)
    millis = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    readable = writable = woken = False
    for ready_fd, flags in poller.poll(millis):
        if ready_fd == wake_fd:
            woken = True
            continue
        if flags & _POLL_IN & mask:
            readable = True
        if flags & _POLL_OUT & mask:
            writable = True
    return (readable, woken) if wake is not None else (readable, writable)
