"""HTTP20Connection against scripted HTTP/2 peers: streams, flow control, errors, closing."""

from __future__ import annotations

import logging
import threading
import time

import h2.errors
import h2.events
import h2.settings
import pytest

import hyper
import hyper.http20.window
import hyper.tls
from hyper import HTTP20Connection
from tests.scripted import Peer, ScriptedServer


def connect(server: ScriptedServer, **kwargs: object) -> HTTP20Connection:
    kwargs.setdefault("timeout", 5)
    return HTTP20Connection("127.0.0.1", server.port, secure=False, **kwargs)  # type: ignore[arg-type]


def echo_path(peer: Peer, count: int) -> None:
    """Answer ``count`` requests with their own path, in reverse order of arrival."""
    requests = [peer.wait_request() for _ in range(count)]
    for request in reversed(requests):
        path = dict(request.headers)[b":path"]
        peer.respond(request.stream_id, body=path)
    peer.drain_until_closed()


def test_request_headers_carry_method_path_authority_and_accept_encoding() -> None:
    seen = {}

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        seen.update(dict(request.headers))
        seen["all"] = request.headers
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        sid = conn.request("GET", "/a?b=c", headers={"X-Custom": "1", "Connection": "keep-alive"})
        assert conn.getresponse(sid).read() == b"ok"
    assert seen[b":method"] == b"GET"
    assert seen[b":path"] == b"/a?b=c"
    assert seen[b":scheme"] == b"http"
    assert seen[b":authority"] == f"127.0.0.1:{server.port}".encode()
    assert seen[b"accept-encoding"] == b"gzip, deflate, br"
    assert seen[b"x-custom"] == b"1"
    assert b"connection" not in seen  # HTTP/1.1-only fields are dropped
    # Pseudo-headers come first.
    assert [name for name, _ in seen["all"][:4]] == [b":method", b":scheme", b":authority", b":path"]


def test_responses_taken_in_any_order_and_oldest_first_without_id() -> None:
    with ScriptedServer(lambda p: echo_path(p, 6)) as server, connect(server) as conn:
        ids = [conn.request("GET", f"/{i}") for i in range(6)]
        assert ids == [1, 3, 5, 7, 9, 11]
        assert conn.getresponse(ids[4]).read() == b"/4"
        assert conn.getresponse(ids[1]).read() == b"/1"
        # No id: the oldest stream whose response was not taken yet.
        assert conn.getresponse().read() == b"/0"
        assert conn.get_response().read() == b"/2"
        assert conn.getresponse().read() == b"/3"
        assert conn.getresponse().read() == b"/5"
        with pytest.raises(hyper.InvalidStreamID):
            conn.getresponse()
        with pytest.raises(hyper.InvalidStreamID):
            conn.getresponse(99)


def test_streams_beyond_max_concurrent_streams_wait_for_a_slot() -> None:
    # The server allows 2 streams at once and answers each only after it sees
    # the next one was *not* sent early.
    order: list[int] = []

    def script(peer: Peer) -> None:
        for _ in range(6):
            request = peer.wait_request()
            open_streams = peer.h2.open_inbound_streams
            order.append(open_streams)
            peer.respond(request.stream_id, body=b"x")
        peer.drain_until_closed()

    settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2}
    with ScriptedServer(script, settings=settings) as server, connect(server) as conn:
        # Waits for the server's SETTINGS, so the burst below knows the limit.
        assert conn.max_concurrent_streams == 2
        ids = [conn.request("GET", "/") for _ in range(6)]
        assert [conn.getresponse(i).read() for i in ids] == [b"x"] * 6
    assert max(order) <= 2


def test_closing_a_response_halfway_resets_only_that_stream() -> None:
    resets: list[int] = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        second = peer.wait_request()
        peer.respond(first.stream_id, body=b"a" * 1000, end_stream=False)
        peer.respond(second.stream_id, body=b"b" * 1000, end_stream=False)
        reset = peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset))
        resets.append(reset.stream_id)
        peer.h2.send_data(second.stream_id, b"b" * 1000, end_stream=True)
        peer.flush()
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        first = conn.request("GET", "/first")
        second = conn.request("GET", "/second")
        response = conn.getresponse(first)
        assert response.read(10) == b"a" * 10
        response.close()
        assert conn.getresponse(second).read() == b"b" * 2000
        # Unlike http.client, a response closed part-way does not read as an
        # empty (that is, complete) body.
        with pytest.raises(hyper.ConnectionClosed):
            response.read()
    assert resets == [first]


def test_reset_refused_stream_is_retryable_and_other_streams_live() -> None:
    def script(peer: Peer) -> None:
        first = peer.wait_request()
        second = peer.wait_request()
        peer.h2.reset_stream(first.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        peer.respond(second.stream_id, body=b"fine")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        first = conn.request("GET", "/")
        second = conn.request("GET", "/")
        with pytest.raises(hyper.StreamResetError) as info:
            conn.getresponse(first)
        assert info.value.retryable is True
        assert info.value.stream_id == first
        assert info.value.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
        assert conn.getresponse(second).read() == b"fine"


def test_reset_mid_body_fails_the_read_not_the_connection() -> None:
    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.respond(first.stream_id, body=b"partial", end_stream=False)
        peer.h2.reset_stream(first.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        peer.flush()
        second = peer.wait_request()
        peer.respond(second.stream_id, body=b"next")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        with pytest.raises(hyper.StreamResetError) as info:
            response.read()
        assert info.value.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert conn.getresponse(conn.request("GET", "/")).read() == b"next"


def test_graceful_goaway_finishes_old_streams_and_refuses_newer_ones() -> None:
    def script(peer: Peer) -> None:
        first = peer.wait_request()
        second = peer.wait_request()
        peer.send_goaway(first.stream_id)
        peer.respond(first.stream_id, body=b"done")
        peer.hang_up()
        del second

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        first = conn.request("GET", "/")
        second = conn.request("GET", "/")
        assert conn.getresponse(first).read() == b"done"
        with pytest.raises(hyper.ConnectionTerminated) as info:
            conn.getresponse(second)
        assert info.value.retryable is True
        assert info.value.last_stream_id == first
        assert info.value.error_code == 0


def test_after_a_graceful_goaway_the_next_request_reconnects() -> None:
    goaway_sent = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"one")
        peer.send_goaway(request.stream_id)
        goaway_sent.set()
        peer.drain_until_closed(10)

    def second_script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"two")
        peer.drain_until_closed()

    scripts = iter([script, second_script])
    with ScriptedServer(lambda p: next(scripts)(p), connections=2) as server, connect(server) as conn:
        first = conn.request("GET", "/")
        assert conn.getresponse(first).read() == b"one"
        # Sent on loopback, the GOAWAY is in the client's socket (if it was
        # not read along with the response) before the next request.
        assert goaway_sent.wait(10)
        # The GOAWAY is read before the next request is sent, which goes on a
        # new connection with a stream id that never repeats.
        second = conn.request("GET", "/")
        assert second > first
        assert conn.getresponse(second).read() == b"two"


def test_error_goaway_carries_debug_data_to_every_waiter() -> None:
    def script(peer: Peer) -> None:
        peer.wait_request()
        last = peer.wait_request()
        peer.send_goaway(last.stream_id, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, b"slow down")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        ids = [conn.request("GET", "/"), conn.request("GET", "/")]
        for sid in ids:
            with pytest.raises(hyper.ConnectionTerminated) as info:
                conn.getresponse(sid)
            assert info.value.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
            assert info.value.additional_data == b"slow down"
            assert "slow down" in str(info.value)


def test_connection_closed_mid_body_is_an_error_not_a_short_body() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(
            request.stream_id, headers=[(b"content-length", b"100")], body=b"x" * 50, end_stream=False
        )
        peer.hang_up()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        with pytest.raises(hyper.ConnectionTerminated) as info:
            response.read()
        assert info.value.retryable is False


def test_read_timeout_is_bounded_and_clear() -> None:
    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.drain_until_closed(60)

    with ScriptedServer(script) as server, connect(server, timeout=(5, 0.3)) as conn:
        sid = conn.request("GET", "/")
        started = time.monotonic()
        with pytest.raises(hyper.ReadTimeout):
            conn.getresponse(sid)
        assert time.monotonic() - started < 30  # the read timeout, not the server's 60 s


def test_tls_handshake_stall_is_a_connect_timeout(ca_file: str) -> None:
    give_up = threading.Event()

    def script(peer: Peer) -> None:
        give_up.wait(60)  # accept, then never answer the ClientHello

    with ScriptedServer(script, handshake=False) as server:
        conn = HTTP20Connection(
            "127.0.0.1",
            server.port,
            secure=True,
            ssl_context=hyper.tls.init_context(cert_path=ca_file),
            timeout=(0.3, 5),
        )
        started = time.monotonic()
        with pytest.raises(hyper.ConnectTimeout):
            conn.connect()
        assert time.monotonic() - started < 30  # the connect timeout, not the server's 60 s
        give_up.set()
        conn.close()


def test_upload_waits_for_window_then_times_out_as_write_timeout() -> None:
    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.drain_until_closed(60)  # never acknowledges the body: window stays shut

    with ScriptedServer(script) as server, connect(server, timeout=(5, 0.5)) as conn:
        started = time.monotonic()
        with pytest.raises(hyper.WriteTimeout):
            conn.request("POST", "/", body=b"x" * 200_000)
        assert time.monotonic() - started < 30  # the write timeout, not the server's 60 s


def test_early_response_with_reset_no_error_stops_the_upload() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, status=413, body=b"too big")
        peer.h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        peer.flush()
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        sid = conn.request("POST", "/", body=b"x" * 1_000_000)
        response = conn.getresponse(sid)
        assert response.status == 413
        assert response.read() == b"too big"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"short", {"content-length": "10"}),
        (b"longer than declared", {"content-length": "3"}),
        (iter([b"abc", b"def"]), {"content-length": "4"}),
    ],
)
def test_body_length_mismatch_is_refused_and_resets_the_stream(body: object, headers: dict) -> None:
    resets: list[int] = []

    def script(peer: Peer) -> None:
        peer.wait_request()
        reset = peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset))
        resets.append(reset.error_code)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        with pytest.raises(hyper.BodyLengthError):
            conn.request("POST", "/", body=body, headers=headers)  # type: ignore[arg-type]
    assert resets == [h2.errors.ErrorCodes.CANCEL]


def test_uploads_set_content_length_and_arrive_intact() -> None:
    received: dict[str, tuple[bytes, bytes | None]] = {}

    def script(peer: Peer) -> None:
        for _ in range(3):
            request = peer.wait_request()
            fields = dict(request.headers)
            body = peer.read_body(request.stream_id)
            received[fields[b":path"].decode()] = (body, fields.get(b"content-length"))
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    blob = bytes(range(256)) * 1000
    with ScriptedServer(script) as server, connect(server) as conn:
        for path, body in (
            ("/bytes", blob),
            ("/str", "héllo"),
            ("/gen", (blob[i : i + 999] for i in range(0, len(blob), 999))),
        ):
            assert conn.getresponse(conn.request("PUT", path, body=body)).read() == b"ok"  # type: ignore[arg-type]
    assert received["/bytes"] == (blob, str(len(blob)).encode())
    assert received["/str"] == ("héllo".encode(), b"6")
    assert received["/gen"] == (blob, None)


def test_headers_with_cr_lf_nul_are_refused_before_sending() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        assert dict(request.headers)[b":path"] == b"/clean"
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        for bad in ({"x-a": "1\r\nx-b: 2"}, {"x-a\n": "1"}, {"x-a": "a\x00b"}):
            with pytest.raises(hyper.InvalidHeader):
                conn.request("GET", "/", headers=bad)
        with pytest.raises(hyper.InvalidURL):
            conn.request("GET", "/a b")
        assert conn.getresponse(conn.request("GET", "/clean")).read() == b"ok"


def test_window_updates_are_batched_and_credited_on_consumption() -> None:
    body = b"z" * (24 * 1024 * 1024)
    updates: list[int] = []
    window_when_stalled: list[int] = []
    stalled = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        view = memoryview(body)
        while view:
            size = min(
                peer.h2.local_flow_control_window(request.stream_id),
                peer.h2.max_outbound_frame_size,
                len(view),
            )
            if size == 0:
                window_when_stalled.append(peer.h2.local_flow_control_window(request.stream_id))
                stalled.set()
                for event in peer.read_events(5):
                    if isinstance(event, h2.events.WindowUpdated):
                        updates.append(event.delta)
                continue
            peer.h2.send_data(request.stream_id, view[:size].tobytes())
            view = view[size:]
            peer.flush()
        peer.h2.end_stream(request.stream_id)
        peer.flush()
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        # A slow reader: nothing is taken until the server stalls on the
        # window. A PING waits for exactly that (the server reads, and so
        # answers, only once stalled), and its wait keeps our socket drained.
        conn.ping()
        assert stalled.is_set()
        total = 0
        while chunk := response.read(65536):
            total += len(chunk)
        assert total == len(body)
    assert window_when_stalled, "server never stalled: no back-pressure"
    # 24 MiB through a 6 MiB stream window credited in halves: a few dozen
    # updates at most, never one per 16 KiB frame (that would be ~1,500).
    assert 0 < len(updates) < 100


def test_close_sends_goaway_and_later_reads_fail_clearly() -> None:
    goaways: list[int] = []

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"abc", end_stream=False)
        event = peer.wait_for(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        goaways.append(event.error_code)
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = connect(server)
        response = conn.getresponse(conn.request("GET", "/"))
        conn.close()
        with pytest.raises(hyper.ConnectionClosed):
            response.read()
    assert goaways == [0]


def test_putrequest_incremental_form() -> None:
    seen: dict[bytes, bytes] = {}

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        seen.update(dict(request.headers))
        body = peer.read_body(request.stream_id)
        peer.respond(request.stream_id, body=body[::-1])
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        sid = conn.putrequest("POST", "/put")
        conn.putheader("X-One", "1", stream_id=sid)
        conn.putheader("content-type", "text/plain")
        conn.endheaders(stream_id=sid)
        conn.send(b"abc", stream_id=sid)
        conn.send(b"def", final=True, stream_id=sid)
        assert conn.getresponse(sid).read() == b"fedcba"
    assert seen[b":path"] == b"/put"
    assert seen[b"x-one"] == b"1"


def test_debug_logging_records_setup_streams_and_goaway(caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedServer(lambda p: echo_path(p, 1)) as server:
        with caplog.at_level(logging.DEBUG, logger="hyper"), connect(server) as conn:
            conn.getresponse(conn.request("GET", "/")).read()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "hyper")
    assert "connected to 127.0.0.1" in text
    assert "stream 1 opened" in text
    assert "response complete" in text
    assert "GOAWAY" in text


def test_shared_connection_many_threads_get_their_own_bodies() -> None:
    threads, per_thread = 8, 25

    def script(peer: Peer) -> None:
        served = 0
        while served < threads * per_thread:
            peer.read_events(5)
            # Take every event, including requests that came with the preface.
            events, peer.events = peer.events, []
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    path = dict(event.headers)[b":path"]
                    peer.respond(event.stream_id, body=path * 50)
                    served += 1
            if peer.closed:
                raise AssertionError("client hung up early")
        peer.drain_until_closed()

    failures: list[BaseException] = []
    with ScriptedServer(script) as server, connect(server) as conn:

        def worker(index: int) -> None:
            try:
                for n in range(per_thread):
                    path = f"/{index}/{n}"
                    body = conn.getresponse(conn.request("GET", path)).read()
                    assert body == path.encode() * 50
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(30)
    assert not failures


def test_a_custom_window_manager_decides_the_credit() -> None:
    calls: list[int] = []

    class CountingManager(hyper.http20.window.BaseFlowControlManager):
        def increase_window_size(self, consumed: int) -> int:
            calls.append(consumed)
            return consumed  # credit everything at once

    body = b"w" * 300_000

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=body)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server, window_manager=CountingManager) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert response.read(1000) == body[:1000]
        assert calls, "the manager was not asked on consumption"
        assert response.read() == body[1000:]


def test_fileno_is_the_connection_socket() -> None:
    with ScriptedServer(lambda p: echo_path(p, 1)) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/x"))
        assert response.fileno() >= 0
        assert response.read() == b"/x"


def test_force_proto_speaks_h2_when_alpn_selected_nothing(server_cert_files: object, ca_file: str) -> None:
    import ssl

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)  # type: ignore[attr-defined]
    with ScriptedServer(lambda p: echo_path(p, 1), tls_context=server_context) as server:
        context = hyper.tls.init_context(cert_path=ca_file)
        with HTTP20Connection(
            "localhost", server.port, ssl_context=context, force_proto="h2", timeout=5
        ) as conn:
            assert conn.getresponse(conn.request("GET", "/forced")).read() == b"/forced"
            assert conn.negotiated_protocol is None


def test_limits_are_validated_and_reach_the_core() -> None:
    with pytest.raises(ValueError):
        hyper.Limits(max_codings=0)
    with pytest.raises(ValueError):
        hyper.Limits(max_decoded_size=-1)
    limits = hyper.Limits(max_informational_responses=2)

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        for _ in range(3):
            peer.h2.send_headers(request.stream_id, [(b":status", b"103")])
        peer.flush()
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server, limits=limits) as conn:
        assert conn.limits is limits
        with pytest.raises(hyper.ProtocolError, match="more than 2 informational"):
            conn.getresponse(conn.request("GET", "/"))


def test_a_default_port_of_443_means_tls_and_no_port_in_authority() -> None:
    conn = HTTP20Connection("example.org")
    assert (conn.port, conn.secure, conn.authority) == (443, True, "example.org")
    conn = HTTP20Connection("example.org:8080")
    assert (conn.port, conn.secure, conn.authority) == (8080, False, "example.org:8080")
    conn = HTTP20Connection("[::1]:8443", secure=True)
    assert (conn.host, conn.port, conn.authority) == ("::1", 8443, "[::1]:8443")
