"""bench/api_micro.py keeps measuring the real request path (no timing is asserted).

The micro-benchmark replaces the session through
``HTTP20Connection._current_session``; if the connection stops calling
that hook, or the stub stops matching what the API layer asks of a session,
this fails instead of the benchmark quietly measuring something else.
"""

from __future__ import annotations

from bench import api_micro


def test_every_case_runs_and_reports_a_time() -> None:
    results = api_micro.measure(number=5, repeat=1)
    assert set(results) == set(api_micro.cases())
    assert all(value > 0 for value in results.values())


def test_the_stub_receives_the_request_as_hyper_sends_it() -> None:
    conn, stub = api_micro.make_connection()
    response = conn.getresponse(conn.request("GET", "/file", headers=api_micro.CALLER_HEADERS))
    assert response.status == 200 and response.read() == api_micro.BODY
    assert response.headers[b"etag"] == [b'"6750c000-400"']
    fields = stub.sent[0]
    assert fields[:4] == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.org"),
        (b":path", b"/file"),
    ]
    assert (b"user-agent", b"bench/1.0") in fields and (b"accept-encoding", b"gzip, deflate, br") in fields
