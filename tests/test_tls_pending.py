"""``tls_read.pending_counter``: the SSL object's C ``pending`` only where it answers as the public one.

The session asks how many decrypted bytes TLS holds after most reads (to
stop a drain at the end of the server's write). Where the C read is used,
it asks the SSL object directly; the answers must be those of
``SSLSocket.pending`` at every point of a read, and every other socket
(cleartext, a subclass, ``HYPER_FAST_PATHS=0``) keeps its public method.
"""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from hyper.common import tls_read
from tests import test_tls_read
from tests.test_tls_read import _OwnSSLSocket

#: The TLS server of tests/test_tls_read.py (100000 bytes, then a ragged EOF), as a fixture here too.
tls_pair = test_tls_read.tls_pair


def test_cleartext_has_no_counter() -> None:
    plain_a, plain_b = socket.socketpair()
    with plain_a, plain_b:
        assert tls_read.pending_counter(plain_a) is None


@pytest.mark.parametrize("fast", [True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"])
def test_the_counter_answers_as_the_public_pending_throughout_a_read(
    fast: bool, tls_pair: tuple[ssl.SSLContext, int, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, port, _ = tls_pair
    if fast:
        monkeypatch.delenv("HYPER_FAST_PATHS", raising=False)  # the CI run sets it to 0
    else:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), 10), server_hostname="localhost"
    ) as tls:
        pending = tls_read.pending_counter(tls)
        assert pending is not None
        # The C method only with the fast paths on; otherwise the socket's own.
        assert (pending == tls.pending) != fast
        read, _ = tls_read.buffer_reader(tls)
        buffer = bytearray(100)
        view = memoryview(buffer)
        received = 0
        seen_held = False
        while True:
            # Small reads leave most of each 16 KiB record decrypted in TLS.
            try:
                got = read(len(buffer), view)
            except ssl.SSLEOFError:
                break  # the server's ragged EOF, with the C read
            if not got:
                break
            received += got
            assert pending() == tls.pending()
            seen_held = seen_held or pending() > 0
        assert received == 100000 and seen_held
        assert pending() == tls.pending() == 0


def test_a_subclass_keeps_its_public_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPER_FAST_PATHS", raising=False)
    own = ssl.create_default_context()
    own.sslsocket_class = _OwnSSLSocket
    with own.wrap_socket(socket.socket(), server_hostname="localhost") as unconnected:
        assert tls_read.pending_counter(unconnected) == unconnected.pending
    with ssl.create_default_context().wrap_socket(
        socket.socket(), server_hostname="localhost"
    ) as unconnected:
        # No SSL object yet: the public method (which answers 0).
        assert tls_read.pending_counter(unconnected) == unconnected.pending
