"""HTTP/2 putrequest/endheaders/send: who may send more body, and how much.

The rules (HTTP20Connection, and HTTPConnection when it chose HTTP/2):

- ``endheaders(message_body=...)`` declares ``content-length`` only with
  ``final``; without it more body may follow, so nothing is declared.
- A declared ``content-length`` holds for the whole body, every ``send()``
  included: bytes beyond it are refused before they are sent, a body short
  of it fails at ``final``; both raise BodyLengthError and reset the stream,
  and the connection's other streams go on.
- ``send()`` after the caller ended the request raises InvalidStreamID;
  after the *server* stopped the upload (RFC 9113 section 8.1) it returns
  quietly.

Against hypercorn over TLS (serving :mod:`tests.fuzz_recorder_app`, which
records what arrived); the server stopping an upload early is scripted.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import h2.errors
import pytest

from hyper import BodyLengthError, HTTP20Connection, InvalidStreamID
from tests.fuzz_api_harness import RecorderServer, recorder_server, sha256, tagged
from tests.fuzz_recorder_app import TAG_HEADER
from tests.scripted import Peer, ScriptedServer

recorder = pytest.fixture(scope="module", name="recorder")(recorder_server)

#: Bound on every wait (far above a loopback round trip).
TIMEOUT = 10.0

KINDS = ["HTTP20Connection", "HTTPConnection"]


def _start(conn: Any, tag: str, content_length: int | None = None) -> int:
    stream_id: int = conn.putrequest("POST", "/upload")
    conn.putheader(TAG_HEADER, tag)
    if content_length is not None:
        conn.putheader("content-length", str(content_length))
    return stream_id


def _plain_request_works(conn: Any, tag: str) -> None:
    """The connection (and so every other stream on it) is still fine."""
    stream_id = conn.request("GET", "/after", headers={TAG_HEADER: tag})
    response = conn.getresponse(stream_id)
    assert response.status == 200
    assert json.loads(response.read())["tag"] == tag


def _header(record: dict[str, Any], name: str) -> list[str]:
    return [value for field, value in record["headers"] if field == name]


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_in_parts_declares_no_length_until_final(recorder: RecorderServer, kind: str) -> None:
    mark = recorder.mark()
    with recorder.connect(kind, timeout=TIMEOUT) as conn:
        open_id = _start(conn, f"parts-open-{kind}")
        conn.endheaders(message_body=b"abc")  # more may follow: no length yet
        conn.send(b"def")
        conn.send(b"ghi", final=True)
        assert json.loads(conn.getresponse(open_id).read())["body_sha256"] == sha256(b"abcdefghi")
        final_id = _start(conn, f"parts-final-{kind}")
        conn.endheaders(message_body=b"abc", final=True)  # the whole body: its length is known
        assert json.loads(conn.getresponse(final_id).read())["body_sha256"] == sha256(b"abc")
    records = tagged(recorder.records_since(mark))
    assert _header(records[f"parts-open-{kind}"][0], "content-length") == []
    assert _header(records[f"parts-final-{kind}"][0], "content-length") == ["3"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_declared_length_met_across_sends_is_sent(recorder: RecorderServer, kind: str) -> None:
    with recorder.connect(kind, timeout=TIMEOUT) as conn:
        stream_id = _start(conn, f"declared-met-{kind}", content_length=6)
        conn.endheaders(message_body=b"abc")
        conn.send(b"de")
        conn.send(b"f", final=True)
        assert json.loads(conn.getresponse(stream_id).read())["body_sha256"] == sha256(b"abcdef")


@pytest.mark.parametrize("kind", KINDS)
def test_a_send_beyond_the_declared_length_is_refused_before_sending(
    recorder: RecorderServer, kind: str
) -> None:
    tag = f"declared-exceeded-{kind}"
    mark = recorder.mark()
    with recorder.connect(kind, timeout=TIMEOUT) as conn:
        _start(conn, tag, content_length=5)
        conn.endheaders(message_body=b"abc")
        with pytest.raises(BodyLengthError) as caught:
            conn.send(b"def", final=True)  # 6 > 5: none of it may leave
        assert (caught.value.expected, caught.value.actual) == (5, 6)
        with pytest.raises(InvalidStreamID):
            conn.send(b"de", final=True)  # the stream was reset: nothing more goes
        _plain_request_works(conn, f"{tag}-after")
    for record in tagged(recorder.records_since(mark)).get(tag, []):
        assert record["body_len"] <= 3 and not record["complete"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_short_of_the_declared_length_fails_at_final(recorder: RecorderServer, kind: str) -> None:
    tag = f"declared-short-{kind}"
    with recorder.connect(kind, timeout=TIMEOUT) as conn:
        _start(conn, tag, content_length=5)
        conn.endheaders()
        conn.send(b"ab")
        with pytest.raises(BodyLengthError):
            conn.send(b"c", final=True)
        # A declared length with no body at all fails at final too, instead of
        # HEADERS that end a malformed request.
        _start(conn, f"{tag}-empty", content_length=3)
        with pytest.raises(BodyLengthError):
            conn.endheaders(final=True)
        _plain_request_works(conn, f"{tag}-after")


@pytest.mark.parametrize("kind", KINDS)
def test_send_after_the_request_ended_is_refused(recorder: RecorderServer, kind: str) -> None:
    tag = f"ended-{kind}"
    mark = recorder.mark()
    with recorder.connect(kind, timeout=TIMEOUT) as conn:
        stream_id = _start(conn, tag)
        conn.endheaders()
        conn.send(b"body", final=True)
        with pytest.raises(InvalidStreamID) as caught:
            conn.send(b"late", stream_id=stream_id)
        assert caught.value.stream_id == stream_id
        with pytest.raises(InvalidStreamID):
            conn.send(b"", final=True)  # ending it twice is a mistake too
        assert json.loads(conn.getresponse(stream_id).read())["body_sha256"] == sha256(b"body")
    assert [record["body_len"] for record in tagged(recorder.records_since(mark))[tag]] == [4]


def test_send_after_the_server_stopped_the_upload_returns_quietly() -> None:
    # RFC 9113 section 8.1: the server may answer before the request body is
    # complete, then RST_STREAM(NO_ERROR) to stop the upload.
    answered = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, status=413, body=b"too big")
        peer.h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        peer.flush()
        answered.set()
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=TIMEOUT) as conn:
            stream_id = conn.putrequest("POST", "/")
            conn.endheaders()
            assert answered.wait(TIMEOUT)
            # Larger than the initial window: the upload waits, reads the
            # reset, and stops without sending the rest.
            conn.send(b"x" * 1_000_000)
            conn.send(b"more", final=True)  # still quiet: the server asked for no more
            response = conn.getresponse(stream_id)
            assert (response.status, response.read()) == (413, b"too big")
