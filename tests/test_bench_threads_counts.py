"""bench/threads_counts.py counts what really happens in the threads workload (no timing asserted).

The counters wrap session methods by name; if those are renamed, the tool
must say so (``n/a``) rather than report zeros as if nothing happened. These
tests run it, tiny, against the suite's nginx and nghttpd and check the
counts against what a request must do whatever the scheduling: one HTTP/2
HEADERS per request leaves in a TLS write, every request takes the state
lock, and a thread never sleeps without a wake-up (or a bounded timeout,
which a loopback server answering at once never lets expire).
"""

from __future__ import annotations

import pytest

from bench import threads_counts
from tests.servers import ServerInfo


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
@pytest.mark.parametrize("mode", ["threads", "mux"])
def test_counts_per_request_are_those_of_real_exchanges(
    server: str, mode: str, request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    assert info.ca_file is not None
    conn = threads_counts.connect(info.host, info.port, info.ca_file)
    try:
        figures = threads_counts.measure(conn, mode, threads=4, per_thread=25)
    finally:
        conn.close()
    assert not [name for name in figures if name.startswith("n/a:")]  # every counter was installed
    # Requests go out one TLS write each (nothing holds them back here) and
    # each takes the state lock at least to open its stream and to get its
    # response; every byte came through the counted TLS reads.
    assert figures["send"] >= 1.0
    assert figures["lock"] >= 2.0
    assert figures["recv"] > 0
    assert figures["contended"] <= figures["lock"]
    assert figures["poll0_hit"] <= figures["poll0"]
    assert figures["recv_blocked"] <= figures["recv"]
    # Every sleep ended in one wake-up: no thread was left to its timeout.
    assert figures["wakes"] == pytest.approx(figures["sleeps"])
    if mode == "mux":
        # One thread: it never sleeps (it reads for itself) and never waits for the lock.
        assert figures["sleeps"] == 0 and figures["contended"] == 0
        # Nobody reads while it opens the next stream: each open polls first.
        assert figures["poll0"] > 0
    assert figures["req_s"] > 0 and figures["cpu_us"] > 0


def test_a_counter_whose_method_is_gone_is_reported_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = threads_counts.Counts()

    class Owner:
        pass

    undo = threads_counts._wrap(Owner, "missing_method", counts, lambda original: original)
    undo()
    assert counts.missing == ["Owner.missing_method"]


def test_counting_restores_every_method() -> None:
    from hyper.http20 import session_reader, session_wakeups

    before = (
        session_wakeups.StateCondition.__enter__,
        session_wakeups.StateCondition.sleep,
        session_reader.SessionReader._read_once_locked,
        session_reader.wait_for_socket,
    )
    with threads_counts.counting(threads_counts.Counts()):
        assert session_wakeups.StateCondition.sleep is not before[1]
    after = (
        session_wakeups.StateCondition.__enter__,
        session_wakeups.StateCondition.sleep,
        session_reader.SessionReader._read_once_locked,
        session_reader.wait_for_socket,
    )
    assert after == before
