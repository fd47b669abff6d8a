"""Review of the reference-cycle fix (79fa058): storing a connection's error must not touch the caller's.

``without_frames`` dropped the traceback of every exception reachable from
the stored error through ``__cause__`` *and* ``__context__``. An error hyper
caught while the application was handling an exception of its own has that
exception as its implicit ``__context__``: the application's exception lost
its traceback, so a later bare ``raise`` or ``logging.exception`` showed
nothing of where it came from. Before 79fa058 it was left alone.
"""

from __future__ import annotations

import traceback

import pytest

import hyper
from hyper import HTTP20Connection
from tests import hostile_frames as hf
from tests.scripted import Peer, ScriptedServer
from tests.test_hostile import client_frames


class ApplicationError(Exception):
    """The application's own exception, being handled while it uses hyper."""


def fail_in_application_code() -> None:
    raise ApplicationError("the application's own failure")


def test_a_connection_error_leaves_the_callers_exception_in_flight_intact() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        # One byte past the default SETTINGS_MAX_FRAME_SIZE: a connection error.
        peer.send_raw(hf.data(request.stream_id, b"x" * 16385))
        client_frames(peer)

    with ScriptedServer(script) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10)
        with conn:
            try:
                fail_in_application_code()
            except ApplicationError as mine:
                frames_before = traceback.format_tb(mine.__traceback__)
                # E.g. a fallback request made from an except block.
                with pytest.raises(hyper.ProtocolError):
                    conn.getresponse(conn.request("GET", "/")).read()
                frames_after = traceback.format_tb(mine.__traceback__)
    assert any("fail_in_application_code" in line for line in frames_before)
    assert frames_after == frames_before


def test_the_stored_error_holds_no_frames_still() -> None:
    # What 79fa058 is for: the stored error and its causes keep no traceback.
    conn = HTTP20Connection("127.0.0.1", 1)
    core = conn.new_core()
    core.initiate()
    core.data_to_send()
    try:
        fail_in_application_code()
    except ApplicationError:
        core.receive(b"\x01\x00\x00\x04\x00\x00\x00\x00\x00")  # a 65536-byte SETTINGS frame announced
    core.release()
    error = core.fatal
    assert isinstance(error, hyper.ProtocolError)
    seen = []
    current: BaseException | None = error
    while current is not None:
        seen.append(current)
        assert current.__traceback__ is None
        assert current.__context__ is None or current.__context__ in seen or current.__suppress_context__
        current = current.__cause__
    assert len(seen) >= 2  # hyper's error and h2's, its cause
