"""DATA on a stream we already reset: hyper's window manager, h2 and the server agree on the window.

RFC 9113 section 5.1: DATA the server sent before our RST_STREAM reached it
still arrives, and section 6.9 counts it against the connection window. h2
takes such DATA without an event; the splitter reports it
(:class:`~hyper.http20.h2_public_frames.DataOnClosedStream`) and the core
tells the window manager, which gives it back as it decides. In the fenced
modes h2's own crediting of it is off (credit goes out once, by hyper's
rule); in the public-API mode h2 keeps its rule and the core takes what h2
credited as spent. Here the connection window is small enough that h2's rule
fires (it credits once half its window is such DATA), in all three modes.
"""

from __future__ import annotations

import threading

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

from hyper import HTTP20Connection
from hyper.http20 import h2_internals
from tests import held_views
from tests.hostile_frames import flow_controlled, padded_data
from tests.scripted import Peer, ScriptedServer

#: HTTP/2's initial connection window, which this test keeps (RFC 9113 6.9.2).
WINDOW = 65535
#: The DATA in flight when the client reset its first stream: (payload, padding).
JUNK = [(10_000, None), (9_000, 99), (10_000, None), (10_000, 0), (10_000, None), (9_000, 255)]
BODY = bytes(range(256)) * 120  # the second response: 30,720 bytes


data_frame = padded_data
frame_path = held_views.frame_path  # the fast, h2 and public-API frame modes


def connection_credit_seen(peer: Peer) -> int:
    """The connection window increments the server received so far."""
    return sum(e.delta for e in peer.events if isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0)


def test_data_on_a_reset_stream_is_credited_once_and_the_windows_agree(frame_path: str) -> None:
    junk_sent = threading.Event()
    server_view: list[int] = []
    view_known = threading.Event()
    sent = sum(flow_controlled(size, pad) for size, pad in JUNK)
    assert sent < WINDOW  # the server stays within the window it was given

    def script(peer: Peer) -> None:
        first = peer.wait_request().stream_id
        peer.respond(first, body=b"", end_stream=False)
        peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset), 20)
        peer.send_raw(b"".join(data_frame(first, b"j" * size, pad) for size, pad in JUNK))
        junk_sent.set()
        second = peer.wait_request(20).stream_id
        # The junk was credited back (by hyper's rule or h2's) before the
        # second request went: room for its body.
        assert WINDOW + connection_credit_seen(peer) - sent >= len(BODY)
        peer.h2.send_headers(second, [(b":status", b"200")])
        wire = peer.h2.data_to_send()
        for start in range(0, len(BODY), 10_000):
            end = start + 10_000 >= len(BODY)
            wire += data_frame(second, BODY[start : start + 10_000], end=end)
        peer.send_raw(wire)
        peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived) and e.ping_data == b"body-in!", 20)
        server_view.append(WINDOW + connection_credit_seen(peer) - sent - len(BODY))
        view_known.set()
        peer.drain_until_closed(20)

    with ScriptedServer(script) as server:
        with HTTP20Connection(
            "127.0.0.1", server.port, secure=False, timeout=20, connection_window=WINDOW
        ) as conn:
            conn.getresponse(conn.request("GET", "/")).close()  # RST_STREAM(CANCEL)
            assert junk_sent.wait(20)
            conn.ping(b"junk-in!")  # every junk frame has arrived before its ACK
            core = conn._sessions.current._core
            credit = core._credit
            window = credit.window
            assert window is not None
            assert window.window_size == core._h2.inbound_flow_control_window
            # Every byte either held or given back, once.
            assert window.window_size + credit.withheld + window.unacknowledged == credit.size

            response = conn.getresponse(conn.request("GET", "/2"))
            assert response.read() == BODY
            conn.ping(b"body-in!")
            assert view_known.wait(20)
            # The server's view, h2's and hyper's window manager's: one window.
            assert server_view[0] == core._h2.inbound_flow_control_window == window.window_size
            assert window.window_size <= WINDOW  # nothing was credited twice


def test_the_fenced_answer_to_data_on_a_closed_stream_is_h2s_minus_its_own_credit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Differential: an adapted connection and h2's own, fed the same DATA on a stream we reset.

    Same events, same RST_STREAM(STREAM_CLOSED) per frame, same window debit;
    the only difference is h2's own WINDOW_UPDATE once half its window is
    such DATA, which the adapted connection leaves to hyper's window manager.
    """
    problem = h2_internals.self_test()
    if problem is not None:
        pytest.skip(f"the fence keeps the fast paths off: {problem}")
    if not h2_internals._CLOSED_STREAM_DATA_HOOK:
        pytest.skip("h2 answers DATA on closed streams elsewhere: its own rule stays (public mode's way)")
    monkeypatch.setattr(h2_internals, "_enabled", True)
    monkeypatch.setattr(h2_internals, "_problem", None)
    from hyper.http20.h2_adapters import new_client_connection

    adapted = new_client_connection()
    plain = h2.connection.H2Connection(adapted.config)
    outputs = []
    for client in (adapted, plain):
        client.initiate_connection()
        server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        server.initiate_connection()
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        server.receive_data(client.data_to_send())
        client.send_headers(
            1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
        )
        client.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
        client.data_to_send()
        seen = []
        for _ in range(3):  # 3 x 16,000 bytes: over half of h2's 65,535 window
            events = client.receive_data(data_frame(1, b"x" * 16_000))
            seen.append(
                ([type(e) for e in events], client.data_to_send(), client.inbound_flow_control_window)
            )
        outputs.append(seen)
    for (adapted_events, adapted_out, adapted_window), (plain_events, plain_out, plain_window) in zip(
        *outputs, strict=True
    ):
        assert adapted_events == plain_events
        window_update = 9 + 4  # h2's own WINDOW_UPDATE frame, ahead of its RST_STREAM
        if plain_out != adapted_out:
            assert plain_out[3] == 0x8 and plain_out[window_update:] == adapted_out
            credited = int.from_bytes(plain_out[9:13], "big")
            assert plain_window - credited == adapted_window
        else:
            assert plain_window == adapted_window
        assert (
            adapted_out[3] == 0x3
            and int.from_bytes(adapted_out[9:13], "big") == h2.errors.ErrorCodes.STREAM_CLOSED
        )
    # h2's rule fired for the plain connection, and not for the adapted one.
    assert outputs[1][-1][2] > outputs[0][-1][2] == 65535 - 48_000
