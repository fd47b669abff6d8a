"""A small raw-ASGI application served by hypercorn in the real-server tests.

No framework on purpose: the tests need exact control over headers,
content-length, trailers and chunking.

Routes:

``/trailers``
    Body :data:`TRAILERS_BODY`, then the trailers :data:`TRAILERS` via the
    ASGI ``http.response.trailers`` extension.  Hypercorn 0.18 only emits the
    trailers when the request carried exactly ``te: trailers``; otherwise the
    stream ends after the body without a trailing HEADERS frame.
``/encoded/<coding>``
    :data:`ENCODED_PAYLOAD` compressed as named by *coding* (see
    :data:`CODINGS`), with the matching content-encoding and content-length.
``/echo``
    The request body; headers ``x-request-method`` and
    ``x-request-header-count``.
``/headers-echo``
    JSON ``{"method", "path", "query_string", "http_version", "headers"}``;
    ``headers`` is a list of ``[name, value]`` pairs in received order.
``/multi-headers``
    Two ``set-cookie`` headers and ``x-list: one, two``.
``/status/<n>``
    Status *n* (200-599) with an empty body.
``/bytes/<n>``
    *n* bytes of :func:`deterministic_bytes`, streamed in 64 KiB chunks.
``/slow-body``
    :data:`SLOW_BODY_CHUNKS` with :data:`SLOW_BODY_DELAY` seconds between.
``/set-cookies``
    The ``set-cookie`` fields :data:`SET_COOKIES` (one with an expiry date,
    whose commas must not split it) and an empty body.
``/redirect``
    302 to ``/headers-echo`` (after setting the cookie ``redirected=yes``).
``/stall``
    Never answers: waits until the client goes away (at most
    :data:`STALL_LIMIT` seconds, then 504), for read-timeout tests.
``/stall-body``
    Headers and :data:`STALL_FIRST_CHUNK`, then waits like ``/stall`` without
    ending the body.

Everything else is 404.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import brotli

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

#: Uncompressed payload behind every ``/encoded/<coding>`` route.
ENCODED_PAYLOAD = b"hyper encoded payload\n" * 5000

#: coding in the URL -> content-encoding header value.
CODINGS = {
    "gzip": "gzip",
    "deflate": "deflate",  # zlib-wrapped (RFC 1950), the correct form
    "deflate-raw": "deflate",  # raw RFC 1951 stream some servers send
    "br": "br",
    "gzip-br": "gzip, br",  # gzip applied first, then brotli
    "unknown": "x-unknown",  # body left unchanged
}

#: Body of ``/trailers``.
TRAILERS_BODY = b"trailer body\n"
#: Trailers sent after :data:`TRAILERS_BODY` (when the client sent te: trailers).
TRAILERS: list[Header] = [(b"x-checksum", b"abc123"), (b"x-trailer-two", b"2")]

#: Chunks of ``/slow-body``: 10 x 1 KiB, each a different letter.
SLOW_BODY_CHUNKS = [bytes([ord("a") + index]) * 1024 for index in range(10)]
#: Pause between two ``/slow-body`` chunks, in seconds.
SLOW_BODY_DELAY = 0.05

#: ``set-cookie`` fields of ``/set-cookies``.
SET_COOKIES = [
    b"session=abc123; Path=/; HttpOnly",
    b"theme=dark; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Path=/",
]
#: Upper bound on how long ``/stall`` and ``/stall-body`` wait for the client to leave.
STALL_LIMIT = 30.0
#: The only body bytes ``/stall-body`` sends.
STALL_FIRST_CHUNK = b"first chunk, then silence\n"

#: Largest n accepted by ``/bytes/<n>`` (guards against typos eating RAM/time).
MAX_BYTES = 1 << 30
# A prime period, so chunk boundaries at powers of two never line up with it
# and a misordered chunk is detected.
_PATTERN_PERIOD = 251
_PATTERN = bytes(range(_PATTERN_PERIOD))
_STREAM_CHUNK = 64 * 1024


def deterministic_bytes(n: int, offset: int = 0) -> bytes:
    """The *n* bytes at *offset* of the infinite ``/bytes`` pattern."""
    start = offset % _PATTERN_PERIOD
    repeats = (start + n) // _PATTERN_PERIOD + 1
    return (_PATTERN * repeats)[start : start + n]


@functools.cache
def encode_payload(coding: str) -> tuple[str, bytes]:
    """Return ``(content-encoding, body)`` for ``/encoded/<coding>``.

    Raises:
        KeyError: *coding* is not in :data:`CODINGS`.
    """
    header = CODINGS[coding]
    data = ENCODED_PAYLOAD
    if coding == "gzip":
        body = gzip.compress(data, mtime=0)  # mtime=0: byte-for-byte stable
    elif coding == "deflate":
        body = zlib.compress(data)
    elif coding == "deflate-raw":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = compressor.compress(data) + compressor.flush()
    elif coding == "br":
        body = brotli.compress(data)
    elif coding == "gzip-br":
        body = brotli.compress(gzip.compress(data, mtime=0))
    else:
        body = data
    return header, body


async def _respond(send: Send, status: int, body: bytes = b"", headers: list[Header] | None = None) -> None:
    """Send a complete response with a correct content-length."""
    all_headers = list(headers or [])
    if not any(name == b"content-type" for name, _ in all_headers):
        all_headers.append((b"content-type", b"text/plain"))
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def receive_body(receive: Receive, on_chunk: Callable[[bytes], None]) -> bool:
    """Receive the whole request body, handing each part to ``on_chunk``; False if the client went away.

    Shared with ``tests/fuzz_recorder_app.py``, which hashes the parts as they come.
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        on_chunk(message.get("body", b""))
        if not message.get("more_body", False):
            return True


async def _read_body(receive: Receive) -> bytes | None:
    """Read the whole request body; ``None`` if the client went away."""
    chunks: list[bytes] = []
    if not await receive_body(receive, chunks.append):
        return None
    return b"".join(chunks)


async def _trailers(scope: Scope, send: Send) -> None:
    supports_trailers = "http.response.trailers" in scope.get("extensions", {})
    headers: list[Header] = [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(TRAILERS_BODY)).encode()),
    ]
    if supports_trailers:
        headers.append((b"trailer", b"x-checksum, x-trailer-two"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": headers,
            "trailers": supports_trailers,
        }
    )
    await send({"type": "http.response.body", "body": TRAILERS_BODY})
    if supports_trailers:
        # Hypercorn drops these (but still ends the stream) unless the
        # request had "te: trailers".
        await send({"type": "http.response.trailers", "headers": TRAILERS})


async def _bytes(send: Send, count: int) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(count).encode()),
            ],
        }
    )
    # Stream instead of building one big buffer: n may be hundreds of MiB.
    sent = 0
    while sent < count:
        size = min(_STREAM_CHUNK, count - sent)
        chunk = deterministic_bytes(size, sent)
        sent += size
        await send({"type": "http.response.body", "body": chunk, "more_body": sent < count})
    if count == 0:
        await send({"type": "http.response.body", "body": b""})


async def _slow_body(send: Send) -> None:
    total = sum(len(chunk) for chunk in SLOW_BODY_CHUNKS)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(total).encode()),
            ],
        }
    )
    for index, chunk in enumerate(SLOW_BODY_CHUNKS):
        if index:
            await asyncio.sleep(SLOW_BODY_DELAY)
        more = index < len(SLOW_BODY_CHUNKS) - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _wait_for_disconnect(receive: Receive) -> bool:
    """Wait until the client leaves; False if :data:`STALL_LIMIT` passed first."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), STALL_LIMIT)
    except asyncio.TimeoutError:
        return False
    return True


async def _stall(receive: Receive, send: Send, first_chunk: bytes | None) -> None:
    if first_chunk is not None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"1000000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": first_chunk, "more_body": True})
    if not await _wait_for_disconnect(receive) and first_chunk is None:
        await _respond(send, 504, b"client never gave up\n")


def _parse_int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 12 else None


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path: str = scope["path"]
    method: str = scope["method"]

    if path == "/trailers":
        await _trailers(scope, send)
    elif path.startswith("/encoded/"):
        coding = path.removeprefix("/encoded/")
        if coding not in CODINGS:
            await _respond(send, 404, b"unknown coding\n")
            return
        content_encoding, body = encode_payload(coding)
        await _respond(send, 200, body, [(b"content-encoding", content_encoding.encode())])
    elif path == "/echo":
        body = await _read_body(receive)
        if body is None:
            return
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"x-request-method", method.encode()),
            (b"x-request-header-count", str(len(scope["headers"])).encode()),
        ]
        await _respond(send, 200, body, headers)
    elif path == "/headers-echo":
        # Read (and ignore) any body so the stream finishes cleanly.
        if await _read_body(receive) is None:
            return
        document = {
            "method": method,
            "path": path,
            "query_string": scope["query_string"].decode("latin-1"),
            "http_version": scope["http_version"],
            "headers": [
                [name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]
            ],
        }
        body = json.dumps(document).encode()
        await _respond(send, 200, body, [(b"content-type", b"application/json")])
    elif path == "/multi-headers":
        headers = [
            (b"set-cookie", b"a=1; Path=/"),
            (b"set-cookie", b"b=2, with comma; Path=/"),
            (b"x-list", b"one, two"),
        ]
        await _respond(send, 200, b"multi\n", headers)
    elif path.startswith("/status/"):
        status = _parse_int(path.removeprefix("/status/"))
        if status is None or not 200 <= status <= 599:
            await _respond(send, 400, b"status must be 200-599\n")
        elif status in (204, 304):
            # No content-length, no body: these statuses never have one.
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await _respond(send, status)
    elif path.startswith("/bytes/"):
        count = _parse_int(path.removeprefix("/bytes/"))
        if count is None or count > MAX_BYTES:
            await _respond(send, 400, f"n must be 0-{MAX_BYTES}\n".encode())
        else:
            await _bytes(send, count)
    elif path == "/slow-body":
        await _slow_body(send)
    elif path == "/set-cookies":
        await _respond(send, 200, b"", [(b"set-cookie", cookie) for cookie in SET_COOKIES])
    elif path == "/redirect":
        headers = [(b"location", b"/headers-echo"), (b"set-cookie", b"redirected=yes; Path=/")]
        await _respond(send, 302, b"see /headers-echo\n", headers)
    elif path == "/stall":
        await _stall(receive, send, None)
    elif path == "/stall-body":
        await _stall(receive, send, STALL_FIRST_CHUNK)
    else:
        await _respond(send, 404, b"not found\n")


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Answer lifespan events so hypercorn does not log a lifespan error (shared with the fuzz recorder)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point (``tests.asgi_app:app``)."""
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
