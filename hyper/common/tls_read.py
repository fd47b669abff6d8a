"""Reading a socket into a buffer with as few Python frames as possible: the one ssl private.

A download is thousands of TLS records, and for each one
:meth:`ssl.SSLSocket.recv_into` spends two Python frames (``recv_into``,
then ``read``) before it reaches the C method that decrypts, the SSL
object's ``read(n, buffer)``. This module, and only this one, names that
private (``SSLSocket._sslobj``): :func:`buffer_reader` hands the session the
C method itself when the socket is a plain :class:`ssl.SSLSocket` whose SSL
object has it, and the public ``recv_into`` otherwise (cleartext sockets,
subclasses that override reading, a Python without the private, or
``HYPER_FAST_PATHS=0``).

Both readers have the same contract, ``read(nbytes, buffer) -> int``:
bytes read (``0`` at a clean end of the stream), :class:`ssl.SSLWantReadError`
or :class:`BlockingIOError` when a non-blocking socket has nothing yet.
The C method raises :class:`ssl.SSLEOFError` where ``SSLSocket.read``
turns an unannounced EOF into ``0`` (``suppress_ragged_eofs``, the
default), so :func:`buffer_reader` also says whether the caller must do that.

:func:`pending_counter` does the same for ``pending()`` (how many decrypted
bytes TLS holds), asked after most reads: ``SSLSocket.pending`` is two
Python frames (``pending``, then a ``_checkClosed`` that does nothing)
before the SSL object's C ``pending``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

from .sockets import fast_paths_forced_off

#: ``read(nbytes, buffer)``: bytes read into ``buffer``, ``0`` at EOF.
BufferReader = Callable[[int, Any], int]


def _public_reader(sock: socket.socket) -> BufferReader:
    recv_into = sock.recv_into

    def read(nbytes: int, buffer: Any) -> int:
        return recv_into(buffer, nbytes)

    return read


def direct_read(sock: socket.socket) -> BufferReader | None:
    """The SSL object's own ``read(nbytes, buffer)`` for ``sock``, or ``None`` if not usable.

    Usable only when nothing between would change what ``recv_into`` does:
    an exact :class:`ssl.SSLSocket` (the class :meth:`ssl.SSLContext.wrap_socket`
    makes unless ``sslsocket_class`` is changed) with its stdlib ``recv_into``
    and ``read``, wrapped (``_sslobj`` set) and not unwrapped since.
    """
    if type(sock) is not ssl.SSLSocket or fast_paths_forced_off():
        return None
    sslobj = getattr(sock, "_sslobj", None)
    read = getattr(sslobj, "read", None)
    if sslobj is None or not callable(read):
        return None
    return read  # type: ignore[no-any-return]


def buffer_reader(sock: socket.socket) -> tuple[BufferReader, bool]:
    """How to read ``sock`` into a buffer: ``(read, ragged_eof_is_eof)``.

    ``read(nbytes, buffer)`` is the SSL object's C method when
    :func:`direct_read` allows it, else the socket's public ``recv_into``.
    ``ragged_eof_is_eof`` is True when the caller must treat
    :class:`ssl.SSLEOFError` as a clean end of the stream, as
    ``SSLSocket.read`` would have (only with the C method and
    ``suppress_ragged_eofs``).
    """
    direct = direct_read(sock)
    if direct is None:
        return _public_reader(sock), False
    return direct, bool(getattr(sock, "suppress_ragged_eofs", True))


def pending_counter(sock: socket.socket) -> Callable[[], int] | None:
    """How to ask ``sock`` how many decrypted bytes TLS holds; ``None`` in cleartext.

    The SSL object's C ``pending`` where :func:`direct_read` allows the C
    read (the same checks: an exact, wrapped :class:`ssl.SSLSocket`, fast
    paths on): ``SSLSocket.pending`` returns just that while the socket is
    wrapped, and a session never unwraps its socket. Otherwise the socket's
    public ``pending`` (``None`` when it has none: a cleartext socket).
    """
    public: Callable[[], int] | None = getattr(sock, "pending", None)
    if public is None or direct_read(sock) is None:
        return public
    # direct_read() checked _sslobj and its read; its pending() is asked the same way.
    pending = getattr(getattr(sock, "_sslobj", None), "pending", None)
    return pending if callable(pending) else public
