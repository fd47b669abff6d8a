"""Review 13: a malformed content-length through the public API, against a scripted server.

seq5's response-block step (h2_internals_receive.receive_plain_headers)
parses a content-length of ASCII digits with int() itself. Past
sys.get_int_max_str_digits() int() raises ValueError; h2 would turn that
into ProtocolError (a malformed response, RFC 9113 8.1.1: this stream's
error). Here the user's side: ``getresponse()`` must raise a documented
hyper error (tests/test_review13_twin_cores.py checks that the fast core
keeps the connection for the next request, as h2's own path does).
"""

from __future__ import annotations

import sys

import pytest

import hyper
from hyper.http20.h2_internals import fast_paths_enabled
from tests.scripted import Peer
from tests.scripted_sessions import scripted_connection

_DIGIT_LIMIT = getattr(sys, "get_int_max_str_digits", lambda: 0)()


def _answer_once(peer: Peer) -> None:
    """A response with a content-length of too many digits."""
    request = peer.wait_request()
    peer.respond(request.stream_id, headers=[(b"content-length", b"9" * (_DIGIT_LIMIT + 1))], body=b"abc")
    peer.drain_until_closed()


@pytest.mark.skipif(not _DIGIT_LIMIT, reason="this interpreter converts any number of digits")
@pytest.mark.xfail(
    fast_paths_enabled(),
    strict=True,
    reason=(
        "h2_internals_receive.receive_plain_headers calls int() on an all-digit content-length "
        "(assuming it always parses): past sys.get_int_max_str_digits() the ValueError escapes "
        "to the caller of getresponse() instead of a hyper error for that response"
    ),
)
def test_a_content_length_of_too_many_digits_is_a_hyper_error() -> None:
    """Both modes: a documented error (the fast mode fails the stream, the public mode the connection)."""
    with scripted_connection(_answer_once) as conn:
        with pytest.raises(hyper.HyperError, match="content-length"):
            conn.getresponse(conn.request("GET", "/")).read()


def _answer_twice(peer: Peer) -> None:
    """That response, then (if the client still talks) a plain one."""
    first = peer.wait_request()
    peer.respond(first.stream_id, headers=[(b"content-length", b"9" * (_DIGIT_LIMIT + 1))], body=b"abc")
    try:
        second = peer.wait_request()
    except AssertionError:
        return  # the client closed the connection (the public mode fails it)
    peer.respond(second.stream_id, headers=[(b"content-length", b"2")], body=b"ok")
    peer.drain_until_closed()


@pytest.mark.skipif(not _DIGIT_LIMIT, reason="this interpreter converts any number of digits")
@pytest.mark.xfail(
    fast_paths_enabled(),
    strict=True,
    reason=(
        "after that ValueError the read's other events are lost (the server's SETTINGS among "
        "them, when they came in the same read): the next request on the connection fails "
        "with 'server's first frame was not SETTINGS: this is not an HTTP/2 server', where "
        "h2's path makes the first response a stream error and serves the next"
    ),
)
def test_the_connection_after_a_content_length_of_too_many_digits() -> None:
    with scripted_connection(_answer_twice) as conn:
        # Which error the first response gives is the test above's question.
        with pytest.raises(Exception, match="content-length|integer string"):
            conn.getresponse(conn.request("GET", "/")).read()
        if fast_paths_enabled():
            # One stream's error (RFC 9113 8.1.1): the connection goes on.
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
        else:
            # The public API cannot tell a stream error: the connection failed, and says why.
            with pytest.raises(hyper.HyperError, match="content-length"):
                conn.getresponse(conn.request("GET", "/")).read()
