"""Opening TCP and TLS connections, and bounded waits on sockets.

Every failure comes out as a ``hyper`` exception with the ``socket`` or
``ssl`` error chained.

Portability: waits use :func:`select.poll` where the platform has it (Linux,
macOS, the BSDs) and fall back to :func:`select.select` where it does not
(Windows). Both give the same results: a bounded wait, and errors or hang-ups
reported as "ready" so that the next ``recv``/``send`` raises or sees EOF.
The choice is made once, when this module is imported. The test suite runs
its core files a second time with ``select.poll`` hidden during that import
(``HYPER_TEST_NO_POLL=1``, see ``tests/conftest.py`` and
``tools/run-tests.sh``) so the fallback is exercised on Linux CI too.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from typing import Any

from ..exceptions import ConnectError, ConnectTimeout, TLSError
from .hints import tls_failure_hint, with_hint
from .url import host_literal

#: Whether ``select.poll`` exists here. Windows has no poll(); hyper must
#: still import and work there, so nothing below touches ``select.POLL*``
#: unless this is true.
HAVE_POLL = hasattr(select, "poll")

if HAVE_POLL:
    # Errors, hang-ups and invalid descriptors are always reported by poll();
    # listing them in both masks makes them count as "ready" for either
    # direction, so the caller's next recv()/send() surfaces the failure.
    _POLL_IN = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
    _POLL_OUT = select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL


def connect_tcp(host: str, port: int, timeout: float | None) -> socket.socket:
    """Open a TCP connection (IPv4 or IPv6) with Nagle's algorithm off.

    ``host`` is a name or an address without brackets; messages show an
    IPv6 address in brackets (``[::1]:8443``), as in a URL.
    """
    shown = f"{host_literal(host)}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise ConnectTimeout(f"connecting to {shown} timed out after {timeout} s") from exc
    except OSError as exc:
        raise ConnectError(f"could not connect to {shown}: {exc}") from exc
    disable_nagle(sock)
    return sock


def disable_nagle(sock: socket.socket) -> bool:
    """Turn Nagle's algorithm off on ``sock``; return whether that worked.

    HTTP/2 writes small frames (SETTINGS acks, WINDOW_UPDATE, PING) that
    must not wait for an ACK of earlier data, so hyper asks for
    ``TCP_NODELAY``. A platform without the option, or a socket that is not
    TCP (tests hand us socketpairs), keeps the default: slower, still correct.
    """
    option = getattr(socket, "TCP_NODELAY", None)
    level = getattr(socket, "IPPROTO_TCP", None)
    if option is None or level is None:
        return False
    try:
        sock.setsockopt(level, option, 1)
    except OSError:
        return False
    return True


def wrap_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    server_hostname: str,
    timeout: float | None,
    port: int | None = None,
) -> ssl.SSLSocket:
    """Do the TLS handshake on ``sock``, within ``timeout``; close it on failure.

    ``port`` (the target's, which through a proxy tunnel is not the
    socket's peer) is only for messages: ``host:port``, an IPv6 address in
    brackets. A failure says what probably went wrong when it can tell
    (:func:`hyper.common.hints.tls_failure_hint`): how to pass a CA for an
    untrusted certificate, ``http://`` for a server that answered in
    cleartext.
    """
    shown = host_literal(server_hostname) if port is None else f"{host_literal(server_hostname)}:{port}"
    sock.settimeout(timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=server_hostname)
    except TimeoutError as exc:
        sock.close()
        raise ConnectTimeout(f"TLS handshake with {shown} timed out after {timeout} s") from exc
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        message = f"certificate of {shown} not trusted: {exc.verify_message}"
        raise TLSError(with_hint(message, tls_failure_hint(exc))) from exc
    except ssl.SSLError as exc:
        sock.close()
        message = f"TLS handshake with {shown} failed: {exc}"
        raise TLSError(with_hint(message, tls_failure_hint(exc))) from exc
    except OSError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {shown} failed: {exc}") from exc
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
    if HAVE_POLL:
        readable, writable, woken = _wait_with_poll(sock, read, write, timeout, wake)
    else:
        readable, writable, woken = _wait_with_select(sock, read, write, timeout, wake)
    return (readable, woken) if wake is not None else (readable, writable)


def _wait_with_poll(
    sock: socket.socket,
    read: bool,
    write: bool,
    timeout: float | None,
    wake: socket.socket | None,
) -> tuple[bool, bool, bool]:
    """poll() version of :func:`wait_for_socket`: ``(readable, writable, woken)``."""
    poller = select.poll()
    mask = (_POLL_IN if read else 0) | (_POLL_OUT if write else 0)
    poller.register(sock.fileno(), mask)
    wake_fd = -1
    if wake is not None:
        wake_fd = wake.fileno()
        poller.register(wake_fd, _POLL_IN)
    # poll() takes whole milliseconds: round up so a short positive wait
    # never becomes a zero-length (non-blocking) one.
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
    return readable, writable, woken


def _wait_with_select(
    sock: socket.socket,
    read: bool,
    write: bool,
    timeout: float | None,
    wake: socket.socket | None,
) -> tuple[bool, bool, bool]:
    """select() version of :func:`wait_for_socket`: ``(readable, writable, woken)``.

    select() has no hang-up or error flags: a peer's FIN or RST makes the
    socket readable (recv() then returns b"" or raises), and an error makes
    it writable as well. The exceptional set adds what Windows reports only
    there (a failed connect, out-of-band data); anything in it counts as
    ready for every direction asked for, like POLLERR does with poll().
    """
    fd = sock.fileno()
    readers = [fd] if read else []
    writers = [fd] if write else []
    wake_fd = -1
    if wake is not None:
        wake_fd = wake.fileno()
        readers.append(wake_fd)
    # Windows' select() refuses three empty lists; the caller always asks
    # for something, but keep the socket in the exceptional set regardless.
    wait = None if timeout is None else max(0.0, timeout)
    ready_read, ready_write, ready_error = select.select(readers, writers, [fd], wait)
    failed = fd in ready_error
    readable = read and (fd in ready_read or failed)
    writable = write and (fd in ready_write or failed)
    woken = wake_fd in ready_read
    return readable, writable, woken


#: The one switch of every fast path in hyper (see hyper.http20.h2_internals).
FAST_PATHS_ENV_VAR = "HYPER_FAST_PATHS"


def fast_paths_forced_off() -> bool:
    """True when ``HYPER_FAST_PATHS`` turns hyper's fast paths off (read at each call)."""
    return os.environ.get(FAST_PATHS_ENV_VAR, "").strip().lower() in ("0", "off", "false", "no")


class ReadWatcher:
    """:func:`wait_for_socket` for reading ``sock`` (or ``wake``), with one poll object kept.

    A reader waits for the same two sockets again and again (once per
    sequential request): making a poll object and registering both
    descriptors each time cost more than the wait's system call. This keeps
    one, registered once. The sockets must stay open while
    :meth:`wait_for_socket` runs (the session guarantees it: nobody closes
    them under its reader), and a closed socket must not be waited for again
    (its descriptor number may be reused). Without poll(), or with
    ``HYPER_FAST_PATHS=0``, each wait is a plain :func:`wait_for_socket`.
    The method has that function's name, which is what a stack shows.
    """

    __slots__ = ("_sock", "_wake", "_poller", "_wake_fd")

    def __init__(self, sock: socket.socket, wake: socket.socket) -> None:
        self._sock = sock
        self._wake = wake
        self._poller: Any = None
        self._wake_fd = -1
        if HAVE_POLL and not fast_paths_forced_off():
            self._poller = select.poll()
            self._poller.register(sock.fileno(), _POLL_IN)
            self._wake_fd = wake.fileno()
            self._poller.register(self._wake_fd, _POLL_IN)

    @property
    def kept(self) -> bool:
        """True when a poll object is kept (False: each wait is a :func:`wait_for_socket`)."""
        return self._poller is not None

    def wait_for_socket(self, timeout: float | None) -> tuple[bool, bool]:
        """``(readable, woken)`` as :func:`wait_for_socket` with a ``wake`` socket returns it."""
        poller = self._poller
        if poller is None:
            return wait_for_socket(self._sock, read=True, write=False, timeout=timeout, wake=self._wake)
        # Whole milliseconds, rounded up (as _wait_with_poll does).
        millis = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        readable = woken = False
        wake_fd = self._wake_fd
        for ready_fd, _flags in poller.poll(millis):
            # Only the two descriptors are registered, each for input (and
            # the errors and hang-ups poll() always reports, which count as
            # ready: the following read sees them).
            if ready_fd == wake_fd:
                woken = True
            else:
                readable = True
        return readable, woken
