"""Failures the API fuzzer (tests/test_fuzz_api.py) found, each as a minimal test.

Each test is marked ``xfail(strict=True)`` with the reason until the library
is fixed: a fix makes it pass, and strict mode then fails the run as a
reminder to drop the mark (and to let the fuzzer generate the case again:
see ``KNOWN_BUGS`` in :mod:`tests.fuzz_api_programs`). All run against
hypercorn over TLS serving :mod:`tests.fuzz_recorder_app`, which records
what arrived.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from hyper import HyperError
from tests.fuzz_api_harness import RecorderServer, recorder_server, sha256, tagged
from tests.fuzz_recorder_app import TAG_HEADER

recorder = pytest.fixture(scope="module", name="recorder")(recorder_server)

#: Bound on every wait of these tests (far above a loopback round trip).
TIMEOUT = 10.0


def _plain_request_works(conn: Any, tag: str) -> None:
    stream_id = conn.request("GET", "/after", headers={TAG_HEADER: tag})
    response = conn.getresponse(stream_id)
    assert response.status == 200
    assert json.loads(response.read())["tag"] == tag
    response.close()


@pytest.mark.parametrize("kind", ["HTTP20Connection", "HTTPConnection"])
def test_endheaders_with_a_body_then_send(recorder: RecorderServer, kind: str) -> None:
    conn = recorder.connect(kind, timeout=TIMEOUT)
    try:
        stream_id = conn.putrequest("POST", "/upload")
        conn.putheader(TAG_HEADER, "found-endheaders-body")
        conn.endheaders(message_body=b"abc")  # final=False: more body may follow
        try:
            conn.send(b"def", final=True)
        except HyperError:
            pass  # refusing the extra bytes, before sending them, would be fine too
        else:
            response = conn.getresponse(stream_id)
            assert json.loads(response.read())["body_sha256"] == sha256(b"abcdef")
        _plain_request_works(conn, "found-endheaders-body-after")
    finally:
        conn.close()


def test_http11_send_from_another_thread_is_refused(recorder: RecorderServer) -> None:
    conn = recorder.connect("HTTP11Connection", timeout=TIMEOUT)
    mark = recorder.mark()
    try:
        stream_id = conn.putrequest("POST", "/upload")
        conn.putheader(TAG_HEADER, "found-h1-stray-send")
        conn.endheaders()
        conn.send(b"mine")
        errors: list[BaseException] = []

        def intruder() -> None:  # has made no request: the send is not its to make
            try:
                conn.send(b"INTRUDER")
            except HyperError as exc:
                errors.append(exc)

        thread = threading.Thread(target=intruder)
        thread.start()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        conn.send(b"", final=True)
        conn.getresponse(stream_id).read()
    finally:
        conn.close()
    arrived = tagged(recorder.records_since(mark))["found-h1-stray-send"][0]
    assert arrived["body_sha256"] == sha256(b"mine"), "the other thread's bytes went into this request"
    assert errors, "send() with no request of the calling thread's own returned normally"


@pytest.mark.parametrize("kind", ["HTTP20Connection", "HTTPConnection"])
def test_send_after_the_final_send_is_refused(recorder: RecorderServer, kind: str) -> None:
    conn = recorder.connect(kind, timeout=TIMEOUT)
    mark = recorder.mark()
    try:
        stream_id = conn.putrequest("POST", "/upload")
        conn.putheader(TAG_HEADER, f"found-send-after-final-{kind}")
        conn.endheaders(final=True)
        with pytest.raises(HyperError):
            conn.send(b"late bytes", final=True)  # the request was ended: InvalidStreamID
        conn.getresponse(stream_id).read()
    finally:
        conn.close()
    arrived = tagged(recorder.records_since(mark))[f"found-send-after-final-{kind}"]
    assert [record["body_len"] for record in arrived] == [0]


def test_http11_request_while_own_body_is_open(recorder: RecorderServer) -> None:
    conn = recorder.connect("HTTP11Connection", timeout=None)
    outcome: list[BaseException | str] = []

    def worker() -> None:
        conn.putrequest("POST", "/upload")
        conn.putheader(TAG_HEADER, "found-h1-own-open-body")
        conn.endheaders()  # the body stays open: only this thread can finish it
        try:
            conn.request("GET", "/next")  # can never go out before that body ends
            outcome.append("returned")
        except HyperError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    stuck = thread.is_alive()
    conn.close()  # releases a stuck worker
    thread.join(TIMEOUT)
    conn.close()  # and whatever connection it opened after the first close
    assert not stuck, "request() waited for its own thread's open body"
    assert outcome and isinstance(outcome[0], HyperError), outcome


def _bounded(function: Any, conn: Any) -> list[BaseException | str]:
    """Run *function* in a thread for at most TIMEOUT s; close *conn* if it is still busy."""
    outcome: list[BaseException | str] = []

    def target() -> None:
        try:
            function()
            outcome.append("returned")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():
        conn.close()
        thread.join(TIMEOUT)
        outcome.append(f"still busy after {TIMEOUT} s")
    return outcome


@pytest.mark.parametrize("incremental", [False, True], ids=["request", "putheader"])
def test_http11_caller_upgrade_field(recorder: RecorderServer, incremental: bool) -> None:
    conn = recorder.connect("HTTP11Connection", timeout=TIMEOUT)
    try:
        try:
            if incremental:
                stream_id = conn.putrequest("GET", "/upgrade")
                conn.putheader("upgrade", "h2c")
                conn.endheaders(final=True)
            else:
                stream_id = conn.request("GET", "/upgrade", headers={"upgrade": "h2c"})
        except (HyperError, ValueError):
            pass  # refusing the field before sending would be fine
        else:
            outcome = _bounded(lambda: conn.getresponse(stream_id).read(), conn)
            assert outcome and not isinstance(outcome[0], AssertionError), outcome
            assert outcome == ["returned"] or isinstance(outcome[0], HyperError), outcome
        # The connection must still serve a plain request, within its timeout.
        outcome = _bounded(lambda: _plain_request_works(conn, "found-h1-upgrade-after"), conn)
        assert outcome == ["returned"], outcome
    finally:
        conn.close()


def test_http11_putheader_checks_transfer_encoding_at_once(recorder: RecorderServer) -> None:
    conn = recorder.connect("HTTP11Connection", timeout=TIMEOUT)
    try:
        stream_id = conn.putrequest("GET", "/te")
        try:
            conn.putheader("transfer-encoding", "gzip")
        except HyperError:
            return  # refused at once: what the docs promise
        conn.endheaders(final=True)  # or sent as HTTP/2 does (it drops the field)
        conn.getresponse(stream_id).read()
    finally:
        conn.close()
