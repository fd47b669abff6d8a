"""Review 13: a malformed content-length through the public API, against a scripted server.

seq5's response-block step (h2_internals_receive.receive_plain_headers)
parses a content-length of ASCII digits with int() itself. Past
sys.get_int_max_str_digits() int() raises ValueError; h2 would turn that
into ProtocolError (a malformed response, RFC 9113 8.1.1: this stream's
error). Here the user's side: ``getresponse()`` must raise a documented
hyper error. tests/test_review13_twin_cores.py checks, without a socket
(so without depending on how the bytes are cut into reads), that the fast
core then keeps the connection for the next request as h2's own path does,
and that the other frames of that read are not lost.
"""

from __future__ import annotations

import sys

import pytest

import hyper
from tests.scripted import Peer
from tests.scripted_sessions import scripted_connection

_DIGIT_LIMIT = getattr(sys, "get_int_max_str_digits", lambda: 0)()


def _answer_once(peer: Peer) -> None:
    """A response with a content-length of too many digits."""
    request = peer.wait_request()
    peer.respond(request.stream_id, headers=[(b"content-length", b"9" * (_DIGIT_LIMIT + 1))], body=b"abc")
    peer.drain_until_closed()


@pytest.mark.skipif(not _DIGIT_LIMIT, reason="this interpreter converts any number of digits")
def test_a_content_length_of_too_many_digits_is_a_hyper_error() -> None:
    """Both modes: a documented error (the fast mode fails the stream, the public mode the connection)."""
    with scripted_connection(_answer_once) as conn:
        with pytest.raises(hyper.HyperError, match="content-length"):
            conn.getresponse(conn.request("GET", "/")).read()
