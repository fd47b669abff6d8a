"""One HTTP/1.1 socket and the exchanges on it: state, socket I/O, error translation.

:class:`Wire` is a socket with its ``h11`` state; :class:`Exchange` is one
request and what has arrived of its response. The functions here do the
socket work that needs no lock or connection policy (non-blocking sends that
notice an early answer, idle checks) and turn ``h11``'s complaints into
``hyper`` exceptions. :mod:`hyper.http11.connection` decides what to do.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field

import h11

from ..common.hints import cleartext_reply_hint, with_hint
from ..common.sockets import wait_for_socket
from ..exceptions import (
    BodyLengthError,
    ConnectionTerminated,
    HyperError,
    ProtocolError,
    WriteTimeout,
)

log = logging.getLogger("hyper")

#: How much one ``recv`` asks for.
RECV_SIZE = 64 * 1024
# RFC 9113 counts 32 bytes of overhead per field; HTTP/1.1 heads are measured the same way.
_FIELD_OVERHEAD = 32


class StaleConnection(Exception):
    """A reused connection was closed by the server before it answered."""


class EarlyResponse(Exception):
    """The server started answering while we were still sending the body."""


@dataclass(eq=False)
class Wire:
    """One socket and its h11 state."""

    sock: socket.socket
    h11: h11.Connection
    #: Bytes that arrived with the socket (after a tunnel), fed before recv.
    early: bytes = b""
    #: Exchanges started on this socket.
    requests: int = 0
    #: The first bytes ever received, to recognize an HTTP/2 server.
    first_bytes: bytes = b""
    closed: bool = False

    def note_received(self, exchange: Exchange, data: bytes) -> None:
        """Account for response bytes of ``exchange`` and hand them to h11."""
        if data:
            exchange.answered = True
            if len(self.first_bytes) < 9:
                self.first_bytes += data[: 9 - len(self.first_bytes)]
        self.h11.receive_data(data)

    def send_all(
        self, data: bytes | memoryview, timeout: float | None, watch: Exchange | None = None
    ) -> None:
        """Send all of ``data``; each wait for the socket is bounded by ``timeout``.

        While a body goes out (``watch`` is its exchange), the socket is
        watched for an early response (a 413 or 401 before the upload is
        done): its bytes go to h11 and :class:`EarlyResponse` stops the
        upload, so a server that stopped reading cannot block us in ``send``.
        Raises :class:`ConnectionTerminated` when the socket broke and
        :class:`WriteTimeout` when it stayed full; the caller drops the wire.
        """
        if self.closed:
            raise ConnectionTerminated("the connection was closed")
        sock = self.sock
        view = memoryview(data).cast("B")
        want_read = watch is not None
        sock.settimeout(0.0)
        while view.nbytes:
            try:
                sent = sock.send(view)
            except ssl.SSLWantReadError:
                sent, want_read = 0, True  # TLS needs a record from the peer first
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                sent = 0
            except OSError as exc:
                raise ConnectionTerminated(f"connection broke while sending: {exc}") from exc
            if sent:
                view = view[sent:]
                continue
            readable, writable = wait_for_socket(sock, read=want_read, write=True, timeout=timeout)
            if readable and watch is not None and self._take_early_answer(watch):
                raise EarlyResponse()
            if not readable and not writable:
                raise WriteTimeout(f"the server did not accept our data within {timeout} s")
            want_read = watch is not None

    def _take_early_answer(self, exchange: Exchange) -> bool:
        """Read what the server sent during our upload; True if it is response bytes (or EOF)."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False  # no application data (e.g. a TLS session ticket)
        except OSError:
            return True  # reset: the response, if any, is looked for by getresponse()
        self.note_received(exchange, data)
        log.debug("server answered request %d before its body was sent", exchange.stream_id)
        return True


@dataclass(eq=False)
class Exchange:
    """One request and the state of its response."""

    stream_id: int
    method: str
    #: The request target as sent (path and query, or absolute form to a proxy).
    target: str = ""
    wire: Wire | None = None
    deadline_at: float | None = None
    #: What is needed to send the request again (no streaming body), if anything.
    replay: tuple[h11.Request, list[memoryview]] | None = None
    #: The request is still being sent with send() (putrequest form).
    request_open: bool = False
    head: h11.Response | None = None
    #: The server answered 101 to our Upgrade proposal.
    switched: bool = False
    informational: int = 0
    chunks: deque[bytes] = field(default_factory=deque)
    buffered: int = 0
    #: Raw body bytes received so far.
    received: int = 0
    #: Some byte of the response arrived (a request answered at all cannot be replayed).
    answered: bool = False
    ended: bool = False
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    error: HyperError | None = None
    discarded: bool = False

    def take(self, max_bytes: int | None) -> bytes:
        """Remove up to ``max_bytes`` (all if None) of the buffered body."""
        head = self.chunks[0]
        if max_bytes is None or len(head) <= max_bytes:
            self.chunks.popleft()
            data = head
        else:
            data, self.chunks[0] = head[:max_bytes], head[max_bytes:]
        self.buffered -= len(data)
        return data


def still_open(sock: socket.socket) -> bool:
    """False when an idle kept-alive socket was closed (or spoken on) by the server."""
    try:
        readable, _ = wait_for_socket(sock, read=True, write=False, timeout=0)
    except (OSError, ValueError):
        return False
    if not readable:
        return True
    try:
        sock.settimeout(0)
        sock.recv(1)
    except ssl.SSLWantReadError:
        return True  # a TLS record without data (e.g. a session ticket)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
    # EOF, or bytes nobody asked for: either way the socket cannot be trusted.
    return False


def head_size_problem(exchange: Exchange, event: h11.Response, limit: int) -> ProtocolError | None:
    """An error when a response head exceeds ``limit`` (RFC 9113's field-size measure)."""
    size = sum(len(name) + len(value) + _FIELD_OVERHEAD for name, value in event.headers)
    if size <= limit:
        return None
    return ProtocolError(
        f"response header list of request {exchange.stream_id} is {size} bytes, more than "
        f"Limits.max_header_list_size ({limit})"
    )


class PriorKnowledgeOnly(ProtocolError):
    """The server answered an HTTP/1.1 request with HTTP/2 frames.

    It never read the request as HTTP/1.1, so the request may be sent again
    over HTTP/2 with prior knowledge (:class:`~hyper.HTTPConnection` does).
    """


def protocol_failure(
    exchange: Exchange, wire: Wire, exc: h11.RemoteProtocolError, header_limit: int
) -> HyperError:
    """The ``hyper`` exception for what h11 found wrong in the server's bytes."""
    text = str(exc)
    if exchange.head is not None and not exchange.ended and "peer closed connection" in text:
        declared = [value for name, value in exchange.head.headers if name == b"content-length"]
        if declared:
            expected = int(declared[0])
            return BodyLengthError(
                f"server closed the connection after {exchange.received} of {expected} body bytes "
                f"of request {exchange.stream_id}",
                expected=expected,
                actual=exchange.received,
            )
        return ConnectionTerminated(
            f"server closed the connection before the chunked body of request "
            f"{exchange.stream_id} was complete"
        )
    if "too long" in text.lower():
        return ProtocolError(
            f"response head of request {exchange.stream_id} exceeds Limits.max_header_list_size "
            f"({header_limit} bytes)"
        )
    first = wire.first_bytes
    if exchange.head is None and len(first) >= 9 and first[3] in (0x4, 0x7) and first[:5] != b"HTTP/":
        return PriorKnowledgeOnly(
            "server answered with HTTP/2 frames: it speaks HTTP/2 with prior knowledge only "
            "(use hyper.HTTP20Connection, or HTTPConnection(..., force_proto='h2'))"
        )
    # Cleartext bytes that are no HTTP/1.x: a TLS port answering? (hints)
    cleartext = exchange.head is None and not isinstance(wire.sock, ssl.SSLSocket)
    hint = cleartext_reply_hint(first) if cleartext else None
    return ProtocolError(
        with_hint(f"server sent an invalid HTTP/1.1 response to request {exchange.stream_id}: {exc}", hint)
    )
