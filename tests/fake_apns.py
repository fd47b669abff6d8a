"""A fake APNs (Apple's push notification service), served by hypercorn over TLS.

The apns2 tests run apns2 0.7.2, unchanged, against it. It answers like APNs:

``POST /3/device/<token>``
    ``200`` with no body for a token starting with ``ok``; ``400``
    ``{"reason": "BadDeviceToken"}`` for ``bad``; ``410``
    ``{"reason": "Unregistered", "timestamp": ...}`` for ``gone``
    (:data:`UNREGISTERED_AT`); ``400 {"reason": "BadTopic"}`` without an
    ``apns-topic`` header and ``400 {"reason": "PayloadEmpty"}`` when the body
    is not an APNs JSON payload.

A notification with ``apns-collapse-id: hold`` is held until
:data:`STREAM_LIMIT` of them are in flight (or :data:`HOLD_SECONDS` pass,
for the tail of a batch), so a client that respects the limit fills it, and
the largest number seen in flight is the evidence that it never went over.
Others are answered at once. ``GET /stats`` returns the counters as
JSON (``client_ports`` tells the connections apart); ``POST /reset``
zeroes them. They are per process: the tests run one server per module and
reset between tests.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.asgi_app import Receive, Scope, Send, answer_lifespan

#: The MAX_CONCURRENT_STREAMS the server advertises (hypercorn's config).
STREAM_LIMIT = 100
#: Longest wait for the in-flight count to reach the limit: far more than a
#: client needs to send that many, even on a loaded machine.
HOLD_SECONDS = 5.0
#: The apns-collapse-id value that asks for the hold.
HOLD = "hold"
#: The timestamp of the 410 answer (milliseconds since the epoch, as APNs sends).
UNREGISTERED_AT = "1700000000000"

_stats: dict[str, Any] = {}
_filled: asyncio.Condition | None = None


def _reset() -> None:
    _stats.update(in_flight=0, max_in_flight=0, notifications=0, by_token={}, client_ports=[])


_reset()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path, method = scope["path"], scope["method"]
    if path == "/stats" and method == "GET":
        await _answer(send, 200, json.dumps(_stats).encode())
    elif path == "/reset" and method == "POST":
        _reset()
        await _answer(send, 200, b"{}")
    elif path.startswith("/3/device/") and method == "POST":
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client") or ("", 0)
        if client[1] not in _stats["client_ports"]:
            _stats["client_ports"].append(client[1])
        await _notification(send, path[len("/3/device/") :], headers, bytes(body))
    else:
        await _answer(send, 404, b'{"reason": "BadPath"}')


async def _notification(send: Send, token: str, headers: dict[str, str], body: bytes) -> None:
    global _filled
    if _filled is None:
        _filled = asyncio.Condition()
    _stats["notifications"] += 1
    _stats["in_flight"] += 1
    _stats["max_in_flight"] = max(_stats["max_in_flight"], _stats["in_flight"])
    if headers.get("apns-collapse-id") == HOLD:
        async with _filled:
            if _stats["in_flight"] >= STREAM_LIMIT:
                _filled.notify_all()
            else:
                try:
                    await asyncio.wait_for(_filled.wait(), HOLD_SECONDS)
                except asyncio.TimeoutError:
                    pass
    status, reason = _verdict(token, headers, body)
    _stats["by_token"][token] = reason or "Success"
    # Counted out before the answer goes: once the client sees its end, it
    # may open the next stream at once.
    _stats["in_flight"] -= 1
    if status == 200:
        await _answer(send, 200, b"", headers=[(b"apns-id", b"00000000-0000-0000-0000-000000000000")])
        return
    answer: dict[str, str] = {"reason": reason}
    if status == 410:
        answer["timestamp"] = UNREGISTERED_AT
    await _answer(send, status, json.dumps(answer).encode())


def _verdict(token: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    if "apns-topic" not in headers:
        return 400, "BadTopic"
    try:
        payload = json.loads(body)
    except ValueError:
        return 400, "PayloadEmpty"
    if not isinstance(payload, dict) or "aps" not in payload:
        return 400, "PayloadEmpty"
    if token.startswith("ok"):
        return 200, ""
    if token.startswith("gone"):
        return 410, "Unregistered"
    return 400, "BadDeviceToken"


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    fields = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": fields + (headers or [])})
    await send({"type": "http.response.body", "body": body})
