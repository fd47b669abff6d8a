"""Receiving an HTTP/1.1 response: h11 events in, response state out, bounded waits.

The receiving half of the exchange state machine (:mod:`~hyper.http11.sending`
is the other). The functions named ``*_locked`` run with the
:class:`Channel`'s lock held; :func:`pull`, :func:`discard` and
:class:`ExchangeBody` take it themselves. Each read from the socket is bounded
by the read timeout and by the exchange's deadline. An error sticks to its
exchange (the thread reading that response gets it) and the socket, which
nothing can trust after it, is closed.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import h11

from ..common.hints import silent_close_hint, with_hint
from ..exceptions import ConnectionClosed, ConnectionTerminated, HyperError, ProtocolError, ReadTimeout, fresh
from .channel import Channel
from .sending import resend_locked
from .wire import RECV_SIZE, Exchange, StaleConnection, Wire, head_size_problem, protocol_failure

#: A response closed with at most this much body left is read to its end to keep the socket.
DRAIN_LIMIT = 64 * 1024


def finish_active_locked(ch: Channel) -> None:
    """Read the rest of the current response into its buffer, bounded."""
    active = ch.active
    while active is not None and active.error is None and not active.ended:
        if ch.buffered_total_locked() > ch.max_buffered:
            raise HyperError(
                f"response {active.stream_id} is not read yet and more than {ch.max_buffered} "
                "bytes of unread responses are buffered; read it before sending another request "
                "on this HTTP/1.1 connection"
            )
        try:
            advance_locked(ch, active)
        except HyperError:
            pass  # recorded in active.error: its reader gets it; the new request goes on
        active = ch.active


def wait_head_locked(ch: Channel, exchange: Exchange) -> None:
    """Read until ``exchange``'s response head (or a 101) has arrived; its error if it failed."""
    while exchange.head is None and not exchange.switched:
        if exchange.error is not None:
            raise fresh(exchange.error)
        if exchange is not ch.active:
            raise ConnectionClosed(f"the connection of request {exchange.stream_id} was closed")
        advance_locked(ch, exchange)


def pull(ch: Channel, exchange: Exchange, max_bytes: int | None) -> bytes:
    """Raw body bytes of ``exchange``: waits for some; ``b''`` at the end."""
    with ch.locked():
        while True:
            if exchange.chunks:
                return exchange.take(max_bytes)
            if exchange.ended or exchange.discarded:
                return b""
            if exchange.error is not None:
                raise fresh(exchange.error)
            if exchange is not ch.active:
                raise ConnectionClosed(f"the connection of request {exchange.stream_id} was closed")
            advance_locked(ch, exchange)


def advance_locked(ch: Channel, exchange: Exchange) -> None:
    """Process one h11 event of the response on the wire; errors stick to it."""
    wire = exchange.wire
    assert wire is not None
    try:
        event = _next_event_locked(ch, exchange, wire)
        _handle_event_locked(ch, exchange, wire, event)
    except StaleConnection:
        resend_locked(ch, exchange)
    except HyperError as exc:
        if exchange.error is None:
            exchange.error = exc
        ch.drop_wire_locked(wire)
        raise


def _handle_event_locked(ch: Channel, exchange: Exchange, wire: Wire, event: Any) -> None:
    if isinstance(event, h11.Data):
        data = bytes(event.data)
        exchange.received += len(data)
        if not exchange.discarded:
            exchange.chunks.append(data)
            exchange.buffered += len(data)
    elif isinstance(event, h11.Response):
        problem = head_size_problem(exchange, event, ch.limits.max_header_list_size)
        if problem is not None:
            raise problem
        exchange.head = event
    elif isinstance(event, h11.InformationalResponse):
        if event.status_code == 101 and wire.h11.their_state is h11.SWITCHED_PROTOCOL:
            exchange.switched = True
            exchange.head = None
            return
        exchange.informational += 1
        if exchange.informational > ch.limits.max_informational_responses:
            raise ProtocolError(
                f"server sent more than {ch.limits.max_informational_responses} informational "
                f"responses to request {exchange.stream_id}"
            )
    elif isinstance(event, h11.EndOfMessage):
        exchange.trailers = list(event.headers)
        exchange.ended = True
        _end_cycle_locked(ch, wire)
    elif isinstance(event, h11.ConnectionClosed):  # pragma: no cover - only after EndOfMessage
        ch.drop_wire_locked(wire)


def _end_cycle_locked(ch: Channel, wire: Wire) -> None:
    """The response is complete: keep the connection for the next one, or close it."""
    ch.active = None
    conn = wire.h11
    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
        conn.start_next_cycle()
        ch.cond.notify_all()
    else:
        # Connection: close, HTTP/1.0, or our request body was cut short.
        ch.drop_wire_locked(wire)


def _next_event_locked(ch: Channel, exchange: Exchange, wire: Wire) -> Any:
    while True:
        try:
            event = wire.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise protocol_failure(exchange, wire, exc, ch.limits.max_header_list_size) from exc
        if event is h11.NEED_DATA:
            _receive_locked(ch, exchange, wire)
            continue
        if event is h11.PAUSED:
            if exchange.switched or wire.h11.their_state is h11.SWITCHED_PROTOCOL:
                return event
            raise ProtocolError(f"server sent data after the response to request {exchange.stream_id}")
        return event


def _receive_locked(ch: Channel, exchange: Exchange, wire: Wire) -> None:
    if ch.closing:
        raise ConnectionClosed("the connection was closed")
    if wire.early:
        data, wire.early = wire.early, b""
    else:
        timeout, expired = _read_limit(ch, exchange)
        if timeout is not None and timeout <= 0:
            # settimeout(0.0) would make the socket non-blocking: recv
            # would raise BlockingIOError, not time out.
            raise expired
        try:
            wire.sock.settimeout(timeout)
            data = wire.sock.recv(RECV_SIZE)
        except TimeoutError as exc:
            raise expired from exc
        except OSError as exc:
            if ch.closing:
                raise ConnectionClosed("the connection was closed") from exc
            if not exchange.answered and wire.requests > 1 and exchange.replay is not None:
                raise StaleConnection() from exc
            what = f"connection broke while waiting for the response to request {exchange.stream_id}"
            raise ConnectionTerminated(
                with_hint(
                    f"{what}: {exc}",
                    silent_close_hint(
                        secure=isinstance(wire.sock, ssl.SSLSocket), fresh=not wire.first_bytes
                    ),
                ),
                retryable=not exchange.answered,
            ) from exc
    if not data:
        if ch.closing:  # our own close() shut the socket down
            raise ConnectionClosed("the connection was closed")
        _on_eof_locked(ch, exchange, wire)
    wire.note_received(exchange, data)


def _on_eof_locked(ch: Channel, exchange: Exchange, wire: Wire) -> None:
    if exchange.head is not None or exchange.switched:
        return  # h11 decides: the end of an EOF-delimited body, or a truncated one
    if not exchange.answered and wire.requests > 1 and exchange.replay is not None:
        raise StaleConnection()
    raise ConnectionTerminated(
        with_hint(
            f"server closed the connection without answering request {exchange.stream_id}",
            silent_close_hint(secure=isinstance(wire.sock, ssl.SSLSocket), fresh=not wire.first_bytes),
        ),
        retryable=not exchange.answered,
    )


def _read_limit(ch: Channel, exchange: Exchange) -> tuple[float | None, ReadTimeout]:
    what = f"no response data for request {exchange.stream_id}"
    timeout = ch.read_timeout
    if exchange.deadline_at is not None:
        # 0.0 once the deadline passed: the caller raises at once.
        remaining = max(0.0, exchange.deadline_at - time.monotonic())
        if timeout is None or remaining < timeout:
            return remaining, ReadTimeout(f"{what}: the exchange's overall deadline passed")
    return timeout, ReadTimeout(f"{what} within the read timeout of {timeout} s")


def discard(ch: Channel, exchange: Exchange) -> None:
    """A response closed by the application before its end."""
    with ch.locked():
        exchange.discarded = True
        exchange.chunks.clear()
        exchange.buffered = 0
        if exchange is ch.active and not exchange.ended and exchange.wire is not None:
            # The rest of a body cannot be skipped without reading it. A
            # short known rest is read and dropped to keep the socket;
            # anything longer costs less as a new connection.
            if not _drain_locked(ch, exchange):
                ch.drop_wire_locked(exchange.wire)
            exchange.error = None


def _drain_locked(ch: Channel, exchange: Exchange) -> bool:
    """Read a discarded response to its end if little is left; True when done."""
    head = exchange.head
    declared = [value for name, value in head.headers if name == b"content-length"] if head else []
    if not declared or int(declared[0]) - exchange.received > DRAIN_LIMIT:
        return False
    try:
        while not exchange.ended and exchange is ch.active:
            advance_locked(ch, exchange)
    except HyperError:
        return False
    return exchange.ended


def switched_socket_locked(ch: Channel, exchange: Exchange) -> tuple[socket.socket, bytes] | None:
    """Wait for the head of ``exchange``; on ``101 Switching Protocols`` hand over the socket.

    Returns the socket and the bytes already received after the 101 (the
    start of the protocol switched to); the channel forgets both. Otherwise
    ``None``: the response is an ordinary one, left for ``getresponse()``.
    """
    wait_head_locked(ch, exchange)
    if not exchange.switched:
        return None
    wire = exchange.wire
    assert wire is not None  # a 101 arrived on it
    ch.untaken.pop(exchange.stream_id, None)
    return ch.release_wire_locked(wire)


class ExchangeBody:
    """What an :class:`~hyper.HTTP11Response` needs of its exchange, and nothing more.

    The response's one way to the connection: its head, its body bytes as
    they arrive, its trailers, and a way to stop. The lock, the socket and
    the other exchanges stay behind it.
    """

    def __init__(self, channel: Channel, exchange: Exchange) -> None:
        assert exchange.head is not None  # made only once the head arrived
        self._channel = channel
        self._exchange = exchange
        #: The response head as h11 parsed it.
        self.head: h11.Response = exchange.head

    @property
    def stream_id(self) -> int:
        """The id ``request()`` returned for this exchange."""
        return self._exchange.stream_id

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """The trailer fields; complete once :meth:`read` returned ``b''``."""
        return self._exchange.trailers

    def read(self, max_bytes: int | None) -> bytes:
        """Raw body bytes (up to ``max_bytes``, all buffered if None): waits for some; ``b''`` at the end."""
        return pull(self._channel, self._exchange, max_bytes)

    def discard(self) -> None:
        """The application stopped reading: drop what is buffered, keep the socket if the rest is short."""
        discard(self._channel, self._exchange)

    def fileno(self) -> int:
        """The connection socket's file descriptor (-1 when it is closed)."""
        return self._channel.fileno()
