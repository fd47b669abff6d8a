"""An ASGI app for the API fuzzer: it records every request it receives.

hypercorn serves it (``tests.fuzz_recorder_app:app``) over TLS for HTTP/2 and
HTTP/1.1. The fuzzer tags each request it means to make with an
``x-fuzz-tag`` header and then asks the app what actually arrived, to check
that a refused call sent nothing and that an accepted one arrived whole.

Routes:

``/__fuzz/log?since=<n>``
    JSON ``{"next": m, "records": [...]}``: the records from number *n* on
    (not the log requests themselves). A record is created when the request
    head arrives (before any body), so a request whose body never ends is
    still listed, with ``complete`` false.
anything else
    Reads the whole body, then answers 200 with a JSON summary of what
    arrived and the tag in an ``x-fuzz-tag`` response header too (for
    ``HEAD``, which gets no body).

A record: ``tag`` (``None`` when the request had none), ``method``,
``target`` (the raw path and query as received), ``headers`` (``[name,
value]`` pairs, Latin-1 text), ``body_len``, ``body_sha256``, ``complete``
and ``disconnected``. The log lives in this one process (hypercorn is run
with ``--workers 0``) and grows for the whole session; it is small because
fuzzed bodies are small.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.asgi_app import Receive, Scope, Send, answer_lifespan, receive_body

#: Header naming the fuzzer's id of a request.
TAG_HEADER = "x-fuzz-tag"
#: Path prefix of the app's own routes; requests to it are not recorded.
CONTROL_PREFIX = "/__fuzz/"

_records: list[dict[str, Any]] = []


def _target(scope: Scope) -> str:
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


async def _respond(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    fields = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": 200, "headers": fields})
    await send({"type": "http.response.body", "body": body})


async def _log(scope: Scope, send: Send) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    since = 0
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "since" and value.isdigit():
            since = int(value)
    document = {"next": len(_records), "records": _records[since:]}
    await _respond(send, json.dumps(document).encode(), [])


async def _record(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]]
    tag = next((value for name, value in headers if name == TAG_HEADER), None)
    # Created before the first await: requests are listed in arrival order.
    record: dict[str, Any] = {
        "tag": tag,
        "method": scope["method"],
        "target": _target(scope),
        "http_version": scope.get("http_version"),
        "headers": headers,
        "body_len": 0,
        "body_sha256": hashlib.sha256().hexdigest(),
        "complete": False,
        "disconnected": False,
    }
    _records.append(record)
    digest = hashlib.sha256()

    def arrived(chunk: bytes) -> None:
        # Recorded part by part: a body that never ends still shows what came.
        digest.update(chunk)
        record["body_len"] += len(chunk)
        record["body_sha256"] = digest.hexdigest()

    if not await receive_body(receive, arrived):
        record["disconnected"] = True
        return
    record["complete"] = True
    summary = {key: record[key] for key in ("tag", "method", "target", "body_len", "body_sha256")}
    echo = [(TAG_HEADER.encode(), tag.encode("latin-1"))] if tag is not None else []
    await _respond(send, json.dumps(summary).encode(), echo)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point (``tests.fuzz_recorder_app:app``)."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
    elif scope["type"] == "http":
        if scope["path"].startswith(CONTROL_PREFIX):
            await _log(scope, send)
        else:
            await _record(scope, receive, send)
