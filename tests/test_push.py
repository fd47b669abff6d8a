"""Server push: a real pushing nghttpd (and hypercorn), then scripted servers that push badly.

The real-server half checks what a user sees: the pushes of a page, their
bodies byte for byte, cancelling and ignoring them. The scripted half makes
the faults no real server produces on cue: pushes for other origins, unsafe
or malformed promised requests, too many pushes, and PUSH_PROMISE although
push is disabled (also before the server acknowledged our SETTINGS).
"""

from __future__ import annotations

import random
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.errors
import h2.events
import hyperframe.frame
import pytest

import hyper
import hyper.tls
from hyper import HTTP20Connection, HTTP20Push, Limits
from tests import hostile_frames as hf
from tests.scripted import Peer, ScriptedServer
from tests.servers import (
    CertFiles,
    LaunchSpec,
    Probe,
    ServerInfo,
    find_binary,
    start_hypercorn,
    start_with_retry,
)
from tests.waiting import wait_until_blocked_in

E = h2.errors.ErrorCodes

# -- the pushing nghttpd ------------------------------------------------------------

#: The documents of the pushing server; ``page.html`` pushes the other three.
PAGE = (
    b'<!DOCTYPE html><html><head><link rel="stylesheet" href="/style.css"></head><body>page</body></html>\n'
)
STYLE = b"body { color: #333; }\n" * 20
SCRIPT = b"console.log('pushed');\n" * 10
# Larger than the 64 KiB initial window: the push must be flow controlled.
IMAGE = random.Random(0x5055).randbytes(200_000)
PUSHED = {"/style.css": STYLE, "/app.js": SCRIPT, "/image.bin": IMAGE}
#: ``stall.html`` pushes ``big.bin`` (64 MiB) this many times.
STALL_PUSHES = 8


@pytest.fixture(scope="module")
def push_docroot(tmp_path_factory: pytest.TempPathFactory, docroot: str) -> Path:
    root = tmp_path_factory.mktemp("push-docroot")
    (root / "page.html").write_bytes(PAGE)
    (root / "other.html").write_bytes(b"no pushes here\n")
    (root / "stall.html").write_bytes(b"this page pushes big.bin many times\n")
    for path, content in PUSHED.items():
        (root / path.lstrip("/")).write_bytes(content)
    # The shared 64 MiB file, not a second copy of it.
    (root / "big.bin").symlink_to(Path(docroot) / "big.bin")
    return root


@pytest.fixture(scope="module")
def pushing_nghttpd(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, ca_file: str, push_docroot: Path
) -> Iterator[ServerInfo]:
    """nghttpd over TLS that pushes the resources of ``page.html`` (and ``stall.html``)."""
    binary = find_binary("nghttpd")
    page_pushes = ",".join(PUSHED)
    stall_pushes = ",".join(["/big.bin"] * STALL_PUSHES)

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        attempt_dir.mkdir(parents=True, exist_ok=True)
        return LaunchSpec(
            name="nghttpd-push",
            argv=[
                binary,
                "--address=127.0.0.1",
                f"--htdocs={push_docroot}",
                f"--push=/page.html={page_pushes}",
                f"--push=/stall.html={stall_pushes}",
                str(ports[0]),
                server_cert_files.key_file,
                server_cert_files.cert_file,
            ],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.H2_TLS)],
        )

    server, ports = start_with_retry(tmp_path_factory.mktemp("nghttpd-push"), 1, make_spec)
    try:
        yield ServerInfo("127.0.0.1", ports[0], True, ca_file, str(push_docroot), "nghttpd-push")
    finally:
        server.stop()


def tls_connect(info: ServerInfo, **kwargs: Any) -> HTTP20Connection:
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("enable_push", True)
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return HTTP20Connection(info.host, info.port, ssl_context=context, **kwargs)


def check_push(push: HTTP20Push, conn: HTTP20Connection, parent: int) -> None:
    """The promised request is a GET for this connection's origin, on an even stream."""
    assert isinstance(push, HTTP20Push)
    assert push.method == "GET"
    assert push.scheme == "https"
    assert push.authority == conn.authority
    assert push.path in PUSHED
    assert push.parent_stream_id == parent
    assert push.stream_id % 2 == 0
    assert all(not name.startswith(b":") for name, _ in push.request_headers.items())


def read_push(push: HTTP20Push) -> bytes:
    response = push.getresponse()
    assert response.status == 200
    return response.read()


def test_capture_all_before_reading_the_page_yields_every_push(pushing_nghttpd: ServerInfo) -> None:
    with tls_connect(pushing_nghttpd) as conn:
        page = conn.request("GET", "/page.html")
        pushes = list(conn.get_pushes(capture_all=True))
        assert sorted(push.path for push in pushes) == sorted(PUSHED)
        assert len({push.stream_id for push in pushes}) == len(pushes)
        for push in pushes:
            check_push(push, conn, page)
            assert read_push(push) == PUSHED[push.path]
        assert conn.getresponse(page).read() == PAGE
        # Each push is handed out once.
        assert list(conn.get_pushes(page, capture_all=True)) == []


def test_pushes_taken_after_the_page_was_read(pushing_nghttpd: ServerInfo) -> None:
    with tls_connect(pushing_nghttpd) as conn:
        first = conn.request("GET", "/page.html")
        assert conn.getresponse(first).read() == PAGE
        second = conn.request("GET", "/page.html")
        assert conn.getresponse(second).read() == PAGE
        # Promises come before the response that refers to them, so once the
        # page is read they are all there, without capture_all. An older
        # request's pushes are found by its stream id.
        older = list(conn.get_pushes(first))
        newer = list(conn.get_pushes())
        assert sorted(push.path for push in older) == sorted(PUSHED)
        assert sorted(push.path for push in newer) == sorted(PUSHED)
        assert {push.parent_stream_id for push in older} == {first}
        assert {push.parent_stream_id for push in newer} == {second}
        assert list(conn.get_pushes(first)) == [] and list(conn.get_pushes(second)) == []
        # Read in the reverse order of their promises.
        for push in reversed(newer + older):
            check_push(push, conn, push.parent_stream_id)
            assert read_push(push) == PUSHED[push.path]


def test_pushes_taken_between_the_page_headers_and_its_body(pushing_nghttpd: ServerInfo) -> None:
    with tls_connect(pushing_nghttpd) as conn:
        page = conn.request("GET", "/page.html")
        response = conn.getresponse(page)
        pushes = {push.path: push for push in conn.get_pushes(page)}
        assert sorted(pushes) == sorted(PUSHED)
        assert read_push(pushes["/image.bin"]) == IMAGE
        assert response.read() == PAGE
        assert read_push(pushes["/style.css"]) == STYLE
        assert read_push(pushes["/app.js"]) == SCRIPT


def test_a_cancelled_push_leaves_the_connection_usable(pushing_nghttpd: ServerInfo) -> None:
    with tls_connect(pushing_nghttpd) as conn:
        page = conn.request("GET", "/page.html")
        pushes = {push.path: push for push in conn.get_pushes(capture_all=True)}
        pushes["/image.bin"].cancel()
        pushes["/image.bin"].cancel()  # twice is harmless
        with pytest.raises(hyper.InvalidStreamID):
            pushes["/image.bin"].getresponse()
        assert read_push(pushes["/style.css"]) == STYLE
        assert conn.getresponse(page).read() == PAGE
        # Cancelling every push of later pages, read or not, changes nothing else.
        for _ in range(5):
            again = conn.request("GET", "/page.html")
            for push in conn.get_pushes(capture_all=True):
                push.cancel()
            assert conn.getresponse(again).read() == PAGE
        assert conn.getresponse(conn.request("GET", "/image.bin")).read() == IMAGE
        assert conn.ping() > 0


def test_pushes_never_taken_do_not_block_later_requests(pushing_nghttpd: ServerInfo) -> None:
    with tls_connect(pushing_nghttpd) as conn:
        for _ in range(10):
            assert conn.getresponse(conn.request("GET", "/page.html")).read() == PAGE
            assert conn.getresponse(conn.request("GET", "/other.html")).read() == b"no pushes here\n"
        assert conn.getresponse(conn.request("GET", "/image.bin")).read() == IMAGE
        assert list(conn.get_pushes(capture_all=True)) == []  # /image.bin pushes nothing
        last = conn.request("GET", "/page.html")
        assert conn.getresponse(last).read() == PAGE
        assert {push.path: read_push(push) for push in conn.get_pushes(last)} == PUSHED


def test_large_pushes_never_taken_do_not_stall_later_requests(pushing_nghttpd: ServerInfo) -> None:
    # Each untaken push of the 64 MiB file fills its stream window (6 MiB by
    # default); eight of them are more than the connection window can carry,
    # yet a small later request must still get through.
    with tls_connect(pushing_nghttpd, timeout=5) as conn:
        stall = conn.request("GET", "/stall.html")
        assert conn.getresponse(stall).read() == b"this page pushes big.bin many times\n"
        for _ in range(20):
            assert conn.getresponse(conn.request("GET", "/style.css")).read() == STYLE


def test_with_push_disabled_nghttpd_pushes_nothing(pushing_nghttpd: ServerInfo) -> None:
    # Any PUSH_PROMISE would now end the connection with a ProtocolError.
    with tls_connect(pushing_nghttpd, enable_push=False) as conn:
        pages = [conn.request("GET", "/page.html") for _ in range(5)]
        assert [conn.getresponse(page).read() for page in pages] == [PAGE] * 5
        assert conn.getresponse(conn.request("GET", "/image.bin")).read() == IMAGE
        with pytest.raises(hyper.HyperError, match="push"):
            conn.get_pushes()
        assert conn.ping() > 0


# -- hypercorn ------------------------------------------------------------------------


async def push_app(scope: Any, receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
    """ASGI app for hypercorn: ``/pusher`` pushes ``/pushed`` (imported by the server process)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    body = b"not found\n"
    status = 404
    if scope["path"] == "/pusher":
        if "http.response.push" in scope.get("extensions", {}):
            await send({"type": "http.response.push", "path": "/pushed", "headers": []})
        status, body = 200, b"the pusher page\n"
    elif scope["path"] == "/pushed":
        status, body = 200, b"pushed by hypercorn\n"
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def pushing_hypercorn(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, ca_file: str
) -> Iterator[ServerInfo]:
    server, port = start_hypercorn(
        tmp_path_factory.mktemp("hypercorn-push"), server_cert_files, app="tests.test_push:push_app"
    )
    try:
        yield ServerInfo("127.0.0.1", port, True, ca_file, None, "hypercorn-push")
    finally:
        server.stop()


def test_hypercorn_push_through_the_asgi_extension(pushing_hypercorn: ServerInfo) -> None:
    with tls_connect(pushing_hypercorn) as conn:
        for _ in range(3):
            page = conn.request("GET", "/pusher")
            (pushed,) = conn.get_pushes(page, capture_all=True)
            assert (pushed.method, pushed.scheme, pushed.path) == ("GET", "https", "/pushed")
            assert pushed.authority == conn.authority
            assert pushed.parent_stream_id == page
            assert pushed.getresponse().read() == b"pushed by hypercorn\n"
            assert conn.getresponse(page).read() == b"the pusher page\n"
    # Without push, hypercorn's push_stream fails quietly and the page comes alone.
    with tls_connect(pushing_hypercorn, enable_push=False) as conn:
        assert conn.getresponse(conn.request("GET", "/pusher")).read() == b"the pusher page\n"


# -- scripted servers -------------------------------------------------------------------


def connect(server: ScriptedServer, **kwargs: Any) -> HTTP20Connection:
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("enable_push", True)
    return HTTP20Connection("127.0.0.1", server.port, secure=False, **kwargs)


def promised_request(
    request: h2.events.RequestReceived, target: bytes, **overrides: bytes | None
) -> list[tuple[bytes, bytes]]:
    """A promised GET for ``target`` on the request's own origin; ``overrides`` change
    or (with None) drop pseudo-headers, e.g. ``method=b"POST"``, ``path=None``."""
    fields = dict(request.headers)
    pseudo: dict[str, bytes | None] = {
        "method": b"GET",
        "scheme": fields[b":scheme"],
        "authority": fields[b":authority"],
        "path": target,
    }
    pseudo.update(overrides)
    return [(f":{name}".encode(), value) for name, value in pseudo.items() if value is not None]


def push(peer: Peer, parent: int, fields: list[tuple[bytes, bytes]]) -> int:
    """Send PUSH_PROMISE on ``parent`` with ``fields`` exactly as given; return the promised id."""
    # Let bad promises through exactly as given.
    peer.h2.config.validate_outbound_headers = False
    peer.h2.config.normalize_outbound_headers = False
    promised = peer.h2.get_next_available_stream_id()
    peer.h2.push_stream(parent, promised, fields)
    peer.flush()
    return promised


def wait_reset(peer: Peer, stream_id: int) -> int:
    """The error code of the client's RST_STREAM on ``stream_id``."""
    event = peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id)
    return int(event.error_code)


def resets_seen(peer: Peer) -> dict[int, int]:
    return {e.stream_id: int(e.error_code) for e in peer.events if isinstance(e, h2.events.StreamReset)}


def get(conn: HTTP20Connection, path: str = "/") -> bytes:
    return conn.getresponse(conn.request("GET", path)).read()


def answer_requests(peer: Peer) -> None:
    """Answer every further request with its path, until the client hangs up."""
    while not peer.closed:
        try:
            request = peer.wait_request()
        except AssertionError:
            return
        peer.respond(request.stream_id, body=dict(request.headers)[b":path"])


def run_push_script(
    action: Callable[[Peer, h2.events.RequestReceived], None], **server_kwargs: Any
) -> tuple[ScriptedServer, dict[str, Any]]:
    """A server whose script runs ``action`` on the first request, then echoes paths."""
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        seen["settings"] = peer.h2.remote_settings
        action(peer, peer.wait_request())
        answer_requests(peer)

    return ScriptedServer(script, **server_kwargs), seen


def test_push_is_advertised_with_max_pushed_streams() -> None:
    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        peer.respond(request.stream_id, body=b"ok")

    for enable, limits, expected in ((True, Limits(max_pushed_streams=7), 7), (False, None, 0)):
        server, seen = run_push_script(action)
        with server, connect(server, enable_push=enable, limits=limits) as conn:
            assert get(conn) == b"ok"
        assert seen["settings"].enable_push == int(enable)
        assert seen["settings"].max_concurrent_streams == expected


@pytest.mark.parametrize(
    "overrides",
    [
        {"authority": b"example.org"},
        {"authority": b"127.0.0.1:1"},
        {"authority": b"localhost:{port}"},
        {"scheme": b"https"},
        {"scheme": b"ftp"},
        {"authority": b"[::1"},
    ],
    ids=["other-host", "other-port", "other-name", "https-on-cleartext", "ftp", "unparsable"],
)
def test_push_for_another_origin_is_refused_and_the_page_still_works(overrides: dict[str, bytes]) -> None:
    codes: dict[str, int] = {}

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        port = dict(request.headers)[b":authority"].rsplit(b":", 1)[1]
        fields = promised_request(
            request, b"/foreign", **{k: v.replace(b"{port}", port) for k, v in overrides.items()}
        )
        promised = push(peer, request.stream_id, fields)
        peer.respond(request.stream_id, body=b"page")
        codes["reset"] = wait_reset(peer, promised)

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        assert list(conn.get_pushes(page, capture_all=True)) == []
        assert get(conn, "/after") == b"/after"
    assert codes["reset"] == E.REFUSED_STREAM


def test_push_for_the_same_origin_written_differently_is_accepted() -> None:
    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        promised = push(peer, request.stream_id, promised_request(request, b"/x", scheme=b"HTTP"))
        peer.respond(promised, body=b"pushed")
        peer.respond(request.stream_id, body=b"page")

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        (pushed,) = conn.get_pushes(page)
        assert pushed.getresponse().read() == b"pushed"


@pytest.mark.parametrize(
    "make_fields",
    [
        lambda request: promised_request(request, b"/x", method=b"POST"),
        lambda request: promised_request(request, b"/x", method=b"DELETE"),
        lambda request: promised_request(request, b"/x", path=None),
        lambda request: promised_request(request, b"/x", authority=None),
        lambda request: promised_request(request, b"/x", scheme=None),
        lambda request: promised_request(request, b"/x", method=None),
        lambda request: promised_request(request, b"/x") + [(b"content-length", b"5")],
        lambda request: promised_request(request, b"/x") + [(b":status", b"200")],
        lambda request: [(b"accept", b"*/*"), *promised_request(request, b"/x")],
        lambda request: promised_request(request, b"/x") + [(b"connection", b"close")],
    ],
    ids=[
        "POST",
        "DELETE",
        "no-path",
        "no-authority",
        "no-scheme",
        "no-method",
        "content",
        "status-pseudo-header",
        "pseudo-after-regular",
        "connection-header",
    ],
)
def test_unsafe_or_malformed_push_is_reset_with_protocol_error(
    make_fields: Callable[[h2.events.RequestReceived], list[tuple[bytes, bytes]]],
) -> None:
    codes: dict[str, int] = {}

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        promised = push(peer, request.stream_id, make_fields(request))
        peer.respond(request.stream_id, body=b"page")
        codes["reset"] = wait_reset(peer, promised)

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        assert list(conn.get_pushes(page, capture_all=True)) == []
        assert conn.getresponse(page).read() == b"page"
        assert get(conn, "/after") == b"/after"
    assert codes["reset"] == E.PROTOCOL_ERROR


def test_head_push_is_accepted() -> None:
    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        promised = push(peer, request.stream_id, promised_request(request, b"/h", method=b"HEAD"))
        peer.respond(promised, headers=[(b"content-length", b"123")])
        peer.respond(request.stream_id, body=b"page")

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        (pushed,) = conn.get_pushes(page)
        assert (pushed.method, pushed.path) == ("HEAD", "/h")
        response = pushed.getresponse()
        assert response.headers[b"content-length"] == [b"123"]
        assert response.read() == b""


def test_pushes_beyond_max_pushed_streams_are_refused() -> None:
    codes: dict[int, int] = {}

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        first, second, third = (
            push(peer, request.stream_id, promised_request(request, f"/{i}".encode())) for i in range(3)
        )
        codes[third] = wait_reset(peer, third)
        peer.respond(first, body=b"zero")
        peer.respond(second, body=b"one")
        peer.respond(request.stream_id, body=b"page")
        # Once the client has read the first two, there is room again.
        later = peer.wait_request()
        fourth = push(peer, later.stream_id, promised_request(later, b"/3"))
        peer.respond(fourth, body=b"three")
        peer.respond(later.stream_id, body=b"later")
        codes.update(resets_seen(peer))

    server, _ = run_push_script(action)
    with server, connect(server, limits=Limits(max_pushed_streams=2)) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        pushes = list(conn.get_pushes(page))
        assert [p.path for p in pushes] == ["/0", "/1"]
        assert [p.getresponse().read() for p in pushes] == [b"zero", b"one"]
        later = conn.request("GET", "/later")
        assert conn.getresponse(later).read() == b"later"
        assert [p.getresponse().read() for p in conn.get_pushes(later)] == [b"three"]
    assert codes == {6: E.REFUSED_STREAM}


def push_promise_frame(parent: int, promised: int, authority: bytes) -> bytes:
    """A raw PUSH_PROMISE (h2 will not send one to a client that disabled push)."""
    block = hf.block(
        (b":method", b"GET"), (b":scheme", b"http"), (b":authority", authority), (b":path", b"/p")
    )
    return hf.frame(hf.PUSH_PROMISE, hf.END_HEADERS, parent, struct.pack(">I", promised) + block)


def goaway_codes(frames: list[hyperframe.frame.Frame]) -> set[int]:
    return {f.error_code for f in frames if isinstance(f, hyperframe.frame.GoAwayFrame)}


def test_push_promise_with_push_disabled_is_a_connection_error() -> None:
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        assert peer.h2.remote_settings.enable_push == 0
        peer.send_raw(push_promise_frame(request.stream_id, 2, dict(request.headers)[b":authority"]))
        # h2's view of the connection is off now: read the rest raw.
        pending = bytes(peer.h2.incoming_buffer._data)
        seen["frames"] = hf.parse_frames(pending + hf.drain_raw(peer.sock, 5))

    with ScriptedServer(script) as server, connect(server, enable_push=False) as conn:
        page = conn.request("GET", "/page")
        with pytest.raises(hyper.ProtocolError) as info:
            conn.getresponse(page)
        assert info.value.error_code == 1
        with pytest.raises(hyper.ProtocolError):
            conn.request("GET", "/again")
        conn.close()
    assert goaway_codes(seen["frames"]) == {E.PROTOCOL_ERROR}


def test_push_promise_before_our_settings_are_acknowledged_is_a_connection_error() -> None:
    # The server never ACKs our SETTINGS (ENABLE_PUSH=0), so h2 on our side
    # still assumes push is allowed; hyper must refuse the promise anyway.
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        reader = hf.FrameReader(peer.sock)
        settings = reader.next_frame()
        assert isinstance(settings, hyperframe.frame.SettingsFrame)
        assert settings.settings.get(hf.ENABLE_PUSH) == 0
        peer.send_raw(hf.settings())  # our own SETTINGS, and no ACK of the client's
        request = reader.wait_for(lambda f: isinstance(f, hyperframe.frame.HeadersFrame))
        authority = dict(request.decoded)[b":authority"]
        peer.send_raw(push_promise_frame(request.stream_id, 2, authority))
        seen["frames"] = reader.frames_until_closed(5)

    with ScriptedServer(script, handshake=False) as server, connect(server, enable_push=False) as conn:
        page = conn.request("GET", "/page")
        with pytest.raises(hyper.ProtocolError) as info:
            conn.getresponse(page)
        assert info.value.error_code == 1
        conn.close()
    assert goaway_codes(seen["frames"]) == {E.PROTOCOL_ERROR}


def test_capture_all_waits_for_pushes_while_the_page_arrives_and_stops_at_its_end() -> None:
    got_first = threading.Event()

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        first = push(peer, request.stream_id, promised_request(request, b"/first"))
        peer.respond(request.stream_id, body=b"part one, ", end_stream=False)
        assert got_first.wait(30), "the client never took the first push"
        second = push(peer, request.stream_id, promised_request(request, b"/second"))
        peer.send_data(request.stream_id, b"part two", end_stream=True)
        peer.respond(second, body=b"2")
        peer.respond(first, body=b"1")

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        pushes = conn.get_pushes(page, capture_all=True)
        first = next(pushes)
        assert first.path == "/first"
        got_first.set()
        # The second push only comes after this; the iterator waits for it,
        # then ends with the page (it would raise ReadTimeout if it did not).
        rest = list(pushes)
        assert [p.path for p in rest] == ["/second"]
        assert conn.getresponse(page).read() == b"part one, part two"
        assert [p.getresponse().read() for p in (first, *rest)] == [b"1", b"2"]
        assert list(conn.get_pushes(page, capture_all=True)) == []


def test_capture_all_is_bounded_by_the_read_timeout() -> None:
    release = threading.Event()

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        peer.respond(request.stream_id, body=b"never ", end_stream=False)
        assert release.wait(30)
        peer.send_data(request.stream_id, b"ends", end_stream=True)

    server, _ = run_push_script(action)
    with server, connect(server, timeout=(5, 0.5)) as conn:
        page = conn.request("GET", "/page")
        with pytest.raises(hyper.ReadTimeout):
            list(conn.get_pushes(page, capture_all=True))
        release.set()
        assert conn.getresponse(page).read() == b"never ends"


@pytest.mark.parametrize("when", ["before-the-call", "while-waiting"])
def test_capture_all_ends_with_the_pushes_made_when_the_page_is_reset(when: str) -> None:
    # However the reset and the iteration interleave, the iterator hands out
    # the push promised before the reset and ends; getresponse() reports
    # the reset.
    took_first = threading.Event()
    client = threading.current_thread()

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        promised = push(peer, request.stream_id, promised_request(request, b"/kept"))
        peer.respond(promised, body=b"kept")
        if when == "while-waiting":
            assert took_first.wait(30)
            # The client has taken the first push and is reading for more.
            wait_until_blocked_in(client, "wait_for_socket", "_read_once_locked")
        peer.h2.reset_stream(request.stream_id, E.INTERNAL_ERROR)
        peer.flush()

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        if when == "before-the-call":
            with pytest.raises(hyper.StreamResetError):
                conn.getresponse(page)
        pushes = conn.get_pushes(page, capture_all=True)
        first = next(pushes)
        took_first.set()
        assert list(pushes) == []
        assert first.path == "/kept"
        assert first.getresponse().read() == b"kept"
        if when == "while-waiting":
            with pytest.raises(hyper.StreamResetError):
                conn.getresponse(page)
        assert get(conn, "/after") == b"/after"


def test_a_push_response_is_read_like_any_response() -> None:
    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        fields = promised_request(request, b"/data.json?v=2") + [(b"accept", b"application/json")]
        promised = push(peer, request.stream_id, fields)
        peer.respond(
            promised,
            status=203,
            headers=[(b"content-type", b"application/json")],
            body=b'{"pushed": true}' * 5000,  # beyond the initial 64 KiB window
        )
        peer.respond(request.stream_id, body=b"page")

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        (pushed,) = conn.get_pushes(page)
        assert (pushed.method, pushed.scheme, pushed.path) == ("GET", "http", "/data.json?v=2")
        assert pushed.authority == conn.authority
        assert pushed.request_headers[b"accept"] == [b"application/json"]
        assert list(pushed.request_headers.items()) == [(b"accept", b"application/json")]
        assert (pushed.stream_id, pushed.parent_stream_id) == (2, page)
        assert "/data.json?v=2" in repr(pushed)
        response = pushed.getresponse()
        assert pushed.getresponse() is response
        assert response.status == 203
        assert response.headers[b"content-type"] == [b"application/json"]
        assert response.read() == b'{"pushed": true}' * 5000


def test_cancel_resets_an_unfinished_push_but_not_a_finished_one() -> None:
    codes: dict[int, int] = {}

    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        finished = push(peer, request.stream_id, promised_request(request, b"/finished"))
        pending = push(peer, request.stream_id, promised_request(request, b"/pending"))
        peer.respond(finished, body=b"done")
        peer.respond(pending, body=b"half", end_stream=False)
        peer.respond(request.stream_id, body=b"page")
        codes[pending] = wait_reset(peer, pending)
        # Data for the cancelled push after the reset is dropped quietly.
        peer.send_raw(hf.data(pending, b"late data", end_stream=True))
        later = peer.wait_request()
        peer.respond(later.stream_id, body=b"later")
        codes.update(resets_seen(peer))

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        finished, pending = conn.get_pushes(page)
        finished.cancel()
        pending.cancel()
        assert get(conn, "/later") == b"later"
    assert codes == {4: E.CANCEL}


def test_get_pushes_without_enable_push_raises() -> None:
    conn = HTTP20Connection("127.0.0.1", 9, secure=False)
    with pytest.raises(hyper.HyperError, match="enable_push"):
        conn.get_pushes()
    with pytest.raises(hyper.HyperError, match="enable_push"):
        conn.get_pushes(1, capture_all=True)


def test_get_pushes_before_any_request_or_for_an_unknown_stream() -> None:
    def action(peer: Peer, request: h2.events.RequestReceived) -> None:
        peer.respond(request.stream_id, body=b"ok")

    server, _ = run_push_script(action)
    with server, connect(server) as conn:
        with pytest.raises(hyper.InvalidStreamID):
            conn.get_pushes()
        assert get(conn) == b"ok"
        with pytest.raises(hyper.InvalidStreamID):
            conn.get_pushes(2**31 + 1)
