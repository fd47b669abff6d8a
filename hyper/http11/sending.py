"""Sending an HTTP/1.1 request: head, body, and the one re-send of a request a server dropped.

The sending half of the exchange state machine (:mod:`~hyper.http11.receiving`
is the other). Every function here runs with the :class:`Channel`'s lock held:
two threads never interleave bytes on the wire. Sends never block beyond the
read timeout, and watch for a server that answers before the body is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import h11

from ..common.body import BodyType, LengthCounter, RequestBody, prepare_body
from ..exceptions import (
    ConnectionClosed,
    ConnectionTerminated,
    HyperError,
    InvalidHeader,
    InvalidStreamID,
    fresh,
)
from ..headers import HTTPHeaderMap
from .channel import Channel
from .wire import EarlyResponse, Exchange, StaleConnection, Wire

log = logging.getLogger("hyper")

#: Fields for hyper alone: the h2c upgrade (hyper/negotiation.py) sends them;
#: a caller's would make a server switch protocols on a connection that
#: cannot follow (RFC 9110 section 7.8, RFC 7540 section 3.2).
_MANAGED_FIELDS = frozenset({b"upgrade", b"http2-settings"})


def checked_caller_field(name: bytes, value: bytes) -> None:
    """Refuse (:class:`InvalidHeader`) a caller's field that only hyper may manage.

    ``upgrade``, ``http2-settings`` and a ``connection`` option naming them;
    a ``transfer-encoding`` other than ``chunked`` (the only coding hyper,
    and h11, can frame a request body with: RFC 9112 section 6.1).
    """
    lowered = name.lower()
    if lowered in _MANAGED_FIELDS:
        raise InvalidHeader(f"the {name!r} field is managed by hyper (use hyper.HTTPConnection for h2c)")
    if lowered == b"connection":
        options = {option.strip().lower() for option in value.split(b",")}
        if options & _MANAGED_FIELDS:
            raise InvalidHeader(f"connection: {value!r} names a field managed by hyper")
    if lowered == b"transfer-encoding" and value.strip().lower() != b"chunked":
        raise InvalidHeader(f"transfer-encoding: {value!r}: an HTTP/1.1 request body can only be chunked")


def send_request_locked(
    ch: Channel,
    exchange: Exchange,
    header_map: HTTPHeaderMap,
    target: str,
    body: RequestBody,
    declared: int | None,
    replayable: bool,
    end: bool = True,
) -> None:
    try:
        request = h11.Request(
            method=exchange.method, target=target.encode("utf-8"), headers=header_map.items()
        )
    except h11.LocalProtocolError as exc:
        raise InvalidHeader(f"request refused: {exc}") from exc
    # A replayable body is in memory already (bytes or str): keep views, no copy.
    blocks = list(body.blocks()) if replayable else None
    if blocks is not None:
        exchange.replay = (request, blocks)
    for attempt in (1, 2):
        wire = ch.usable_wire_locked()
        wire.requests += 1
        exchange.wire = wire
        ch.active = exchange
        ch.untaken[exchange.stream_id] = exchange
        try:
            _send_head_locked(ch, wire, request)
        except StaleConnection:
            # Nothing complete reached the server: any request may go again.
            ch.drop_wire_locked(wire)
            exchange.error = None
            if attempt == 1:
                continue
            ch.untaken.pop(exchange.stream_id, None)
            raise ConnectionTerminated("the server closed every connection before the request") from None
        except BaseException:
            ch.untaken.pop(exchange.stream_id, None)
            ch.drop_wire_locked(wire)
            raise
        break
    source = iter(blocks) if blocks is not None else body.blocks()
    send_body_locked(ch, exchange, source, declared, end=end)


def _send_head_locked(ch: Channel, wire: Wire, request: h11.Request) -> None:
    data = wire.h11.send(request)  # the event was validated when made
    assert data is not None
    try:
        sendall_locked(ch, wire, data)
    except ConnectionTerminated as exc:
        if wire.requests > 1:
            raise StaleConnection() from exc
        raise


def send_body_locked(
    ch: Channel, exchange: Exchange, blocks: Iterator[Any], declared: int | None, end: bool
) -> None:
    wire = exchange.wire
    assert wire is not None
    counter = LengthCounter(declared if end else None)
    try:
        for block in blocks:
            view = memoryview(block).cast("B")
            counter.add(view.nbytes)
            # h11 only measures and passes the data on, so a view saves a copy.
            pieces = wire.h11.send_with_data_passthrough(h11.Data(data=view))  # type: ignore[arg-type]
            for piece in pieces or ():
                sendall_locked(ch, wire, piece, exchange)
            # The block is on the wire: let its views go before the next is
            # asked for (a generator may refill the same bytearray).
            piece = b""
            del block, view, pieces
        if end:
            counter.check_complete()
            data = wire.h11.send(h11.EndOfMessage())
            if data:
                sendall_locked(ch, wire, data)
            exchange.request_open = False
            ch.cond.notify_all()
        else:
            exchange.request_open = True
    except h11.LocalProtocolError as exc:
        # h11 enforces a content-length header put with putheader().
        exchange.request_open = False
        exchange.error = HyperError(f"request body does not match its headers: {exc}")
        ch.untaken.pop(exchange.stream_id, None)
        ch.drop_wire_locked(wire)
        ch.cond.notify_all()
        raise fresh(exchange.error) from exc
    except (EarlyResponse, ConnectionTerminated):
        # The server answered early (e.g. 413), or closed after doing so:
        # the upload stops, getresponse() reads the answer, and the
        # connection, with half a request on it, closes after that.
        exchange.request_open = False
        ch.cond.notify_all()
    except BaseException as exc:
        # Half a request is on the wire: this connection is unusable.
        exchange.request_open = False
        error = exc if isinstance(exc, HyperError) else ConnectionClosed("request body failed")
        exchange.error = exchange.error or error
        ch.untaken.pop(exchange.stream_id, None)
        ch.drop_wire_locked(wire)
        ch.cond.notify_all()
        raise


def sendall_locked(
    ch: Channel, wire: Wire, data: bytes | memoryview, exchange: Exchange | None = None
) -> None:
    wire.send_all(data, ch.read_timeout, exchange)


def resend_locked(ch: Channel, exchange: Exchange) -> None:
    """The server closed a reused connection unanswered: send once more on a new one."""
    old = exchange.wire
    assert old is not None and exchange.replay is not None
    request, body = exchange.replay
    exchange.replay = None  # only once
    ch.drop_wire_locked(old)
    exchange.error = None
    log.debug("re-sending request %d on a new connection", exchange.stream_id)
    wire = ch.usable_wire_locked()
    wire.requests += 1
    exchange.wire = wire
    ch.active = exchange
    try:
        data = wire.h11.send(request)
        assert data is not None
        sendall_locked(ch, wire, data)
        send_body_locked(ch, exchange, iter(body), None, end=True)
    except HyperError as exc:
        exchange.error = exchange.error or exc
        ch.drop_wire_locked(wire)
        raise


def send_more(ch: Channel, data: BodyType, final: bool, stream_id: int) -> None:
    """Send (more) body data for request ``stream_id``, whose headers went out with endheaders."""
    with ch.locked():
        exchange = ch.active
        if exchange is None or not exchange.request_open:
            raise InvalidStreamID(f"no request body in progress for stream {stream_id}", stream_id)
        if stream_id != exchange.stream_id:
            raise InvalidStreamID(f"no request body in progress for stream {stream_id}", stream_id)
        send_body_locked(ch, exchange, prepare_body(data).blocks(), None, end=final)
