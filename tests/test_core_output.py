"""The core takes h2's queued output through the fence only where that is h2's answer.

:func:`~hyper.http20.h2_internals_steps.take_output` skips h2's copy of an
empty output buffer. With the fast paths on the core uses it; with them off
(``HYPER_FAST_PATHS=0``) it asks h2's public ``data_to_send``. Both cores,
driven through the same steps against in-memory h2 servers, send the same
bytes at every step, empty answers included.
"""

from __future__ import annotations

import functools

import h2.config
import h2.connection
import h2.events
import pytest

from hyper.http20 import h2_internals
from hyper.http20.core import H2Core
from hyper.http20.h2_internals_steps import take_output

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]


def _core(fast: bool, monkeypatch: pytest.MonkeyPatch) -> H2Core:
    with monkeypatch.context() as patch:
        patch.setattr(h2_internals, "_enabled", fast)
        core = H2Core()
    uses_fence = isinstance(core._take_output, functools.partial) and core._take_output.func is take_output
    assert uses_fence is fast
    return core


def test_fast_and_public_cores_send_the_same_bytes_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    if h2_internals.self_test() is not None:
        pytest.skip("the fence keeps the fast paths off")
    cores = [_core(True, monkeypatch), _core(False, monkeypatch)]
    servers = [
        h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        for _ in cores
    ]

    def step(action: str) -> None:
        sent = []
        for core, server in zip(cores, servers, strict=True):
            if action == "initiate":
                server.initiate_connection()
                core.initiate()
            elif action == "open":
                core.open_stream(REQUEST, True)
            elif action == "ping":
                core.send_ping(b"12345678")
            pieces = core.pieces_to_send()
            out = b"".join(bytes(piece) for piece in pieces)
            sent.append(out)
            for event in server.receive_data(out):
                if isinstance(event, h2.events.RequestReceived):
                    server.send_headers(event.stream_id, [(b":status", b"204")], end_stream=True)
            core.receive(server.data_to_send())
        assert sent[0] == sent[1], action

    for action in ["initiate", "nothing", "nothing", "open", "nothing", "ping", "open", "open", "nothing"]:
        step(action)
