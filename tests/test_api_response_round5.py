"""The response's per-request steps of issue 14, round 5, change nothing a caller can see.

* The trailers map is made on first use (most responses never ask), in one
  atomic step: every reference to it, taken before or after the body's end,
  from any thread, is the one map the trailers fill.
* ``read()`` of a body handed over whole with the headers decides "nothing
  to decode" and completes the body itself; it is compared with the general
  read (``FAST_PATHS`` off, what ``HYPER_FAST_PATHS=0`` does), including
  codings it leaves to the general read and names a direct response does
  not vouch are lower case.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from typing import Any

import pytest

import hyper.http20.response as response_module
from hyper.headers import HTTPHeaderMap
from hyper.http20.response import HTTP20Response, await_response
from hyper.limits import Limits
from tests.test_api_steps import HeldSession  # hands the whole body over; a body read fails

BODY = b"hello, world " * 40


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, str(exc)


def held_response(
    fields: list[tuple[bytes, bytes]], body: bytes, trailers: list[Any] | None, *, direct: bool
) -> tuple[HTTP20Response, HeldSession]:
    """A response holding its whole body: from await_response (names vouched) or made directly."""
    session = HeldSession([(b":status", b"200"), *fields], body, trailers)
    if direct:
        # Made directly, the response trusts no name to be lower case.
        raw, held = session.await_response_start(1, 5.0, None)
        return HTTP20Response(session, 1, raw, Limits(), None, 1, held), session  # type: ignore[arg-type]
    return await_response(session, 1, 5.0, Limits()), session  # type: ignore[arg-type]


_GZIPPED = gzip.compress(BODY)
_DEFLATED = zlib.compress(BODY)

_CASES = [
    ([], BODY, None),
    ([], b"", []),
    ([(b"content-type", b"text/plain")], BODY, [(b"x-sum", b"1"), (b"x-more", b"2")]),
    ([(b"content-encoding", b"gzip")], _GZIPPED, None),
    ([(b"Content-Encoding", b"gzip")], _GZIPPED, [(b"x-sum", b"1")]),
    ([(b"content-encoding", b"identity")], BODY, None),
    ([(b"content-encoding", b"deflate"), (b"content-encoding", b"identity")], _DEFLATED, None),
    ([(b"content-encoding", b"x-unknown")], BODY, None),
    ([(b"content-encoding", b"gzip")], b"not gzip at all", None),
]

# Each call: ("read", amt, decode_content) or ("chunked", decode_content).
_STEPS: list[list[tuple[Any, ...]]] = [
    [("read", None, True)],
    [("read", None, False)],
    [("read", None, False), ("read", None, True)],
    [("read", None, True), ("chunked", False)],
    [("read", 0, True), ("read", None, False)],
    [("read", 5, False), ("read", None, True)],
    [("chunked", True), ("read", None, True)],
]


def _run(resp: HTTP20Response, steps: list[tuple[Any, ...]]) -> list[Any]:
    seen: list[Any] = []
    for step in steps:
        if step[0] == "read":
            seen.append(outcome(resp.read, step[1], decode_content=step[2]))
        else:
            seen.append(outcome(lambda decode: list(resp.read_chunked(decode)), step[1]))
    return seen


# await_response vouches for lower-case names (hyper's core checked them,
# RFC 9113 section 8.2.1): a case with an upper-case name is made directly only.
_MADE = [
    (direct, *case)
    for case in _CASES
    for direct in (False, True)
    if direct or all(name == name.lower() for name, _ in case[0])
]


@pytest.mark.parametrize("steps", _STEPS)
@pytest.mark.parametrize(("direct", "fields", "body", "trailers"), _MADE)
def test_the_held_read_gives_what_the_general_read_gives(
    monkeypatch: pytest.MonkeyPatch,
    steps: list[tuple[Any, ...]],
    direct: bool,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
    trailers: list[Any] | None,
) -> None:
    results = []
    for fast in (True, False):
        monkeypatch.setattr(response_module, "FAST_PATHS", fast)
        resp, session = held_response(fields, body, trailers, direct=direct)
        early = resp.trailers
        got = _run(resp, steps)
        results.append(
            (
                got,
                resp.closed,
                early.items(),
                resp.trailers is early,
                resp.trailers.items(),
                outcome(resp.read),
                session.calls,
                resp.headers.items(),
            )
        )
    assert results[0] == results[1]


def test_the_fast_read_hands_over_the_held_bytes_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_module, "FAST_PATHS", True)
    for fields in ([], [(b"content-encoding", b"gzip")]):
        resp, _ = held_response(fields, BODY, None, direct=False)
        # With decode_content=False nothing is decoded, coding or not.
        got = resp.read(decode_content=False) if fields else resp.read()
        assert got is BODY
        assert resp.closed and resp.read() == b"" and len(resp.trailers) == 0


def test_the_trailers_map_is_made_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_module, "FAST_PATHS", True)
    resp, _ = held_response([], BODY, None, direct=False)
    assert resp.read() == BODY
    assert "_trailers" not in vars(resp)  # no trailers came and no one asked: no map
    made = resp.trailers
    assert isinstance(made, HTTPHeaderMap) and len(made) == 0
    assert resp.trailers is made  # one map for the response's life


@pytest.mark.parametrize("fast", [True, False])
def test_trailers_arriving_unasked_fill_the_map_asked_for_later(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(response_module, "FAST_PATHS", fast)
    resp, _ = held_response([], BODY, [(b"x-sum", b"1"), (b"x-sum", b"2")], direct=False)
    assert resp.read() == BODY
    assert resp.trailers.get(b"x-sum") == [b"1", b"2"]
    assert resp.trailers is resp.trailers


def _race_trailers_against_the_end(resp: HTTP20Response) -> list[HTTPHeaderMap]:
    """Four threads ask for the trailers while a fifth reads the body to its end; their maps."""
    start = threading.Barrier(5, timeout=30)
    maps: list[HTTPHeaderMap] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            start.wait()
            maps.append(resp.trailers)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def finish() -> None:
        try:
            start.wait()
            resp.read()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)] + [threading.Thread(target=finish)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and not any(thread.is_alive() for thread in threads)
    return maps


@pytest.mark.parametrize("fast", [True, False])
def test_threads_asking_for_trailers_while_the_body_ends_share_one_map(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    # Whatever the interleaving, every thread's map is the same object and,
    # once the body has ended, holds the trailers: none is lost to a second map.
    monkeypatch.setattr(response_module, "FAST_PATHS", fast)
    for _ in range(20):  # bounded: a few interleavings, none of them required
        resp, _ = held_response([], BODY, [(b"x-sum", b"1")], direct=False)
        maps = _race_trailers_against_the_end(resp)
        assert len(maps) == 4 and all(found is resp.trailers for found in maps)
        assert resp.trailers.items() == [(b"x-sum", b"1")]
