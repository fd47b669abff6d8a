"""Review 12: the held whole-body read and the trailers map made on first use, against the general read.

A response whose whole body came with its headers is read by
``_read_held_whole`` when nothing is to be decoded; the trailers map is made
when first asked for. Every mix of reads (read with and without a size,
readinto, read_chunked, iteration, close part-way, trailers asked before or
after) over every shape of content-encoding (none, gzip, deflate, br,
identity, stacked in one field or several, unknown, upper case, padded,
empty) must give what the general read (``FAST_PATHS`` off, what
``HYPER_FAST_PATHS=0`` does) gives; so must real responses from hypercorn.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from typing import Any

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper.http20.response as response_module
import hyper.tls
from hyper import HTTP20Connection
from hyper.common.reading import DECODE_STEP
from hyper.http20.response import HTTP20Response, await_response
from hyper.limits import Limits

from .servers import ServerInfo

BODY = b"review twelve, " * 90


class HeldSession:
    """Hands the whole body over with the headers; a body read from the session is a failure."""

    read_timeout = 5.0

    def __init__(self, fields: list[tuple[bytes, bytes]], body: bytes, trailers: list[Any] | None) -> None:
        self.fields = fields
        self.held = (body, trailers)
        self.discarded = 0

    def await_response_start(self, stream_id: int, timeout: Any, on_timeout: Any) -> tuple[Any, Any]:
        return list(self.fields), self.held

    def read_body(self, *args: Any) -> Any:
        raise AssertionError("a held body needs no session read")

    def discard(self, stream_id: int) -> None:
        self.discarded += 1


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message (and partial bytes) of what it raises."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, (str(exc), getattr(exc, "partial", None))


def _stacked(body: bytes, codings: list[str]) -> bytes:
    """``body`` with each coding applied in order (the order content-encoding lists them)."""
    for coding in codings:
        name = coding.strip().lower()
        if name == "gzip":
            body = gzip.compress(body, mtime=0)
        elif name == "deflate":
            body = zlib.compress(body)
        elif name == "br":
            body = brotli.compress(body)
    return body


# (content-encoding fields as sent, the codings really applied to the body)
_ENCODINGS: list[tuple[list[bytes], list[str]]] = [
    ([], []),
    ([b"gzip"], ["gzip"]),
    ([b"GZIP"], ["gzip"]),
    ([b" gzip "], ["gzip"]),
    ([b"deflate"], ["deflate"]),
    ([b"br"], ["br"]),
    ([b"identity"], []),
    ([b"Identity"], []),
    ([b""], []),
    ([b"gzip, br"], ["gzip", "br"]),
    ([b"gzip,br"], ["gzip", "br"]),
    ([b"gzip", b"br"], ["gzip", "br"]),
    ([b"deflate", b"identity"], ["deflate"]),
    ([b"identity, gzip"], ["gzip"]),
    ([b"x-unknown"], []),
    ([b"gzip, x-unknown"], ["gzip"]),
    ([b"gzip"], []),  # says gzip, is not: the decoding fails
]

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.one_of(st.none(), st.integers(-1, 3000)), st.booleans()),
        st.tuples(st.just("readinto"), st.integers(0, 3000)),
        st.tuples(st.just("chunked"), st.booleans()),
        st.tuples(st.just("next"), st.booleans()),
        st.tuples(st.just("iter")),
        st.tuples(st.just("trailers")),
        st.tuples(st.just("close")),
    ),
    min_size=1,
    max_size=5,
)


def _apply(resp: HTTP20Response, op: tuple[Any, ...], join: bool = False) -> Any:
    """One step's outcome; ``join``: chunks joined (a real server's chunks are cut where reads end)."""
    kind = op[0]
    if join and kind in ("chunked", "iter"):
        chunks = _apply(resp, op)
        return chunks if chunks[0] != "ok" else ("ok", b"".join(chunks[1]))
    if kind == "read":
        return outcome(resp.read, op[1], decode_content=op[2])
    if kind == "readinto":
        buffer = bytearray(op[1])
        return outcome(resp.readinto, buffer), bytes(buffer)
    if kind == "chunked":
        return outcome(lambda: list(resp.read_chunked(op[1])))
    if kind == "next":
        return outcome(lambda: next(resp.read_chunked(op[1]), None))
    if kind == "iter":
        return outcome(lambda: list(resp))
    if kind == "trailers":
        return resp.trailers.items()
    resp.close()
    return resp.closed


def _made(
    fast: bool,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
    trailers: list[Any] | None,
    direct: bool,
    limits: Limits,
) -> tuple[HTTP20Response, HeldSession]:
    response_module.FAST_PATHS = fast
    session = HeldSession([(b":status", b"200"), *fields], body, trailers)
    if direct:
        raw, held = session.await_response_start(1, 5.0, None)
        resp = HTTP20Response(session, 1, raw, limits, None, 1, held)  # type: ignore[arg-type]
    else:
        resp = await_response(session, 1, 5.0, limits)  # type: ignore[arg-type]
    return resp, session


@settings(max_examples=400, deadline=None)
@given(
    encoding=st.sampled_from(_ENCODINGS),
    upper_name=st.booleans(),
    trailers=st.sampled_from([None, [], [(b"x-sum", b"1"), (b"x-sum", b"2")]]),
    ops=_OPS,
    early_trailers=st.booleans(),
    small_limit=st.booleans(),
)
def test_every_mix_of_reads_gives_what_the_general_read_gives(
    encoding: tuple[list[bytes], list[str]],
    upper_name: bool,
    trailers: list[Any] | None,
    ops: list[tuple[Any, ...]],
    early_trailers: bool,
    small_limit: bool,
) -> None:
    values, applied = encoding
    body = _stacked(BODY, applied)
    name = b"Content-Encoding" if upper_name else b"content-encoding"
    fields = [(b"content-type", b"text/plain"), *[(name, value) for value in values]]
    # A limit below the decoded size: the decoders refuse it, the plain reads have none.
    limits = Limits(max_decoded_size=len(BODY) // 2) if small_limit else Limits()
    results = []
    saved = response_module.FAST_PATHS
    try:
        for fast in (True, False):
            # await_response vouches for lower-case names: an upper-case one only made directly.
            resp, session = _made(fast, fields, body, trailers, upper_name, limits)
            early = resp.trailers if early_trailers else None
            seen = [_apply(resp, op) for op in ops]
            seen.append(outcome(resp.read))
            seen.append((resp.closed, resp.trailers.items(), session.discarded))
            if early is not None:
                seen.append((early is resp.trailers, early.items()))
            results.append(seen)
    finally:
        response_module.FAST_PATHS = saved
    assert results[0] == results[1]


@pytest.mark.parametrize("fast", [True, False])
def test_a_held_body_over_one_decode_step_reads_whole_either_way(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(response_module, "FAST_PATHS", fast)
    big = bytes(range(256)) * (DECODE_STEP // 256 + 17)
    session = HeldSession([(b":status", b"200")], big, [(b"x-end", b"1")])
    resp = await_response(session, 1, 5.0, Limits())  # type: ignore[arg-type]
    assert resp.read() == big
    assert resp.closed and resp.read() == b"" and resp.trailers.items() == [(b"x-end", b"1")]


def test_closing_a_held_response_then_reading_raises_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    for fast in (True, False):
        monkeypatch.setattr(response_module, "FAST_PATHS", fast)
        session = HeldSession([(b":status", b"200")], BODY, [(b"x-sum", b"1")])
        resp = await_response(session, 1, 5.0, Limits())  # type: ignore[arg-type]
        assert resp.read(3) == BODY[:3]
        resp.close()
        kind, _ = outcome(resp.read)
        assert kind == "ConnectionClosed"
        # Closed before its end: the trailers never arrived, and the session was not asked.
        assert len(resp.trailers) == 0 and session.discarded == 0


def _ask_trailers(
    resp: HTTP20Response, start: threading.Barrier, maps: list[Any], errors: list[BaseException]
) -> None:
    try:
        start.wait()
        for _ in range(50):
            maps.append(resp.trailers)
    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
        errors.append(exc)


def test_trailers_asked_by_many_threads_while_the_fast_read_ends_the_body_are_one_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(response_module, "FAST_PATHS", True)
    for _ in range(10):  # bounded: a few interleavings, none required
        session = HeldSession([(b":status", b"200")], BODY, [(b"x-sum", b"1")])
        resp = await_response(session, 1, 5.0, Limits())  # type: ignore[arg-type]
        start = threading.Barrier(7, timeout=30)
        maps: list[Any] = []
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_ask_trailers, args=(resp, start, maps, errors)) for _ in range(6)]
        for thread in threads:
            thread.start()
        start.wait()
        assert resp.read() == BODY
        for thread in threads:
            thread.join(timeout=30)
        assert not errors and not any(thread.is_alive() for thread in threads)
        assert len(maps) == 300 and all(found is resp.trailers for found in maps)
        assert resp.trailers.items() == [(b"x-sum", b"1")]


# -- real responses ---------------------------------------------------------------------------

_CODINGS = ["gzip", "deflate", "deflate-raw", "br", "gzip-br", "unknown"]
_REAL_READS: list[list[tuple[Any, ...]]] = [
    [("read", None, True)],
    [("read", None, False)],
    [("trailers",), ("read", None, True), ("trailers",)],
    [("read", 7, True), ("read", None, True)],
    [("readinto", 64), ("read", None, True)],
    [("chunked", True)],
    [("iter",)],
    [("read", 5, False), ("close",), ("read", None, True)],
]


def _real_results(
    server: ServerInfo, path: str, ops: list[tuple[Any, ...]], headers: Any = None
) -> list[Any]:
    context = hyper.tls.init_context(cert_path=server.ca_file)
    with HTTP20Connection(server.authority, ssl_context=context, timeout=30) as conn:
        resp = conn.getresponse(conn.request("GET", path, headers=headers))
        early = resp.trailers
        seen = [_apply(resp, op, join=True) for op in ops]
        seen.append(outcome(resp.read))
        seen.append((resp.status, resp.closed, resp.trailers.items(), early is resp.trailers))
        return seen


@pytest.mark.parametrize("ops", _REAL_READS)
def test_real_encoded_responses_read_alike_with_and_without_the_held_read(
    hypercorn_server: ServerInfo, monkeypatch: pytest.MonkeyPatch, ops: list[tuple[Any, ...]]
) -> None:
    for coding in _CODINGS:
        results = []
        for fast in (True, False):
            monkeypatch.setattr(response_module, "FAST_PATHS", fast)
            results.append(_real_results(hypercorn_server, f"/encoded/{coding}", ops))
        assert results[0] == results[1], coding


@pytest.mark.parametrize("ops", _REAL_READS)
def test_real_trailers_arrive_alike_with_and_without_the_held_read(
    hypercorn_server: ServerInfo, monkeypatch: pytest.MonkeyPatch, ops: list[tuple[Any, ...]]
) -> None:
    results = []
    for fast in (True, False):
        monkeypatch.setattr(response_module, "FAST_PATHS", fast)
        results.append(_real_results(hypercorn_server, "/trailers", ops, headers={"te": "trailers"}))
    assert results[0] == results[1]
    if ("close",) not in ops:  # read to its end: the trailers came
        assert results[0][-1][2] == [(b"x-checksum", b"abc123"), (b"x-trailer-two", b"2")]
