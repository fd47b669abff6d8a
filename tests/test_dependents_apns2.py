"""apns2 0.7.2, written for hyper 0.7, runs unchanged against a fake APNs.

apns2 is installed with ``pip install --no-deps`` (it declares a dependency on
the old hyper, which must never replace this one); see tools/run-tests.sh.
The fake APNs (:mod:`tests.fake_apns`) is hypercorn over TLS with ALPN h2,
asking for a client certificate and advertising MAX_CONCURRENT_STREAMS 100.
The only thing the tests change is where apns2 connects: its documented
class attributes ``LIVE_SERVER`` / ``DEFAULT_PORT``, and the test CA added to
the context apns2 built (APNs' real certificate chains to a public CA).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import types
from collections.abc import Iterator
from typing import Any

import apns2.client as apns2_client  # installed by tools/run-tests.sh (--no-deps)
import pytest
import trustme
from apns2.credentials import CertificateCredentials
from apns2.errors import BadDeviceToken, Unregistered
from apns2.payload import Payload

import hyper
import hyper.tls
from tests.fake_apns import HOLD, STREAM_LIMIT, UNREGISTERED_AT
from tests.servers import CertFiles, ServerInfo, start_hypercorn

TOPIC = "com.example.app"


@pytest.fixture(scope="module")
def fake_apns(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, ca_file: str
) -> Iterator[ServerInfo]:
    run_dir = tmp_path_factory.mktemp("fake-apns")
    config = run_dir / "apns.toml"
    # verify_mode 1 is ssl.CERT_OPTIONAL: the server asks for a client
    # certificate and checks it against the test CA when one is sent
    # (CERT_REQUIRED would also turn away the fixture's readiness probe).
    # hypercorn closes a connection after 1,000 requests by default; APNs
    # keeps one open for as long as the client likes.
    config.write_text(
        f"h2_max_concurrent_streams = {STREAM_LIMIT}\n"
        "keep_alive_max_requests = 100000\n"
        f"ca_certs = {json.dumps(ca_file)}\n"
        "verify_mode = 1\n"
    )
    server, port = start_hypercorn(
        run_dir, server_cert_files, app="tests.fake_apns:app", extra_args=["--config", str(config)]
    )
    try:
        yield ServerInfo("127.0.0.1", port, True, ca_file, None, "fake-apns")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client_pem(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A client certificate and its key in one PEM file, as Apple hands them out."""
    path = tmp_path_factory.mktemp("apns-client") / "push-cert.pem"
    test_ca.issue_cert("push-client.example").private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def apns(fake_apns: ServerInfo, client_pem: str) -> Iterator[Any]:
    """An ``APNsClient`` (apns2's own class) pointed at the fake APNs."""
    _stats_with_cert(fake_apns, client_pem, "POST", "/reset")

    class LocalAPNsClient(apns2_client.APNsClient):  # type: ignore[misc, name-defined]
        LIVE_SERVER = "localhost"
        DEFAULT_PORT = fake_apns.port

    credentials = CertificateCredentials(client_pem)
    # The context is the one apns2 made with hyper.tls.init_context(cert=...);
    # it trusts certifi's CAs, and the fake APNs has a test-CA certificate.
    credentials._Credentials__ssl_context.load_verify_locations(fake_apns.ca_file)
    client = LocalAPNsClient(credentials)
    try:
        yield client
    finally:
        client._connection.close()


def _stats_with_cert(
    server: ServerInfo, client_pem: str, method: str = "GET", path: str = "/stats"
) -> dict[str, Any]:
    context = hyper.tls.init_context(cert_path=server.ca_file, cert=client_pem)
    with hyper.HTTP20Connection("localhost", server.port, ssl_context=context, timeout=30) as conn:
        conn.request(method, path)
        return dict(json.loads(conn.getresponse().read()))


def test_certificate_credentials_context_offers_h2_and_http11(
    client_pem: str, fake_apns: ServerInfo, nginx_http11_server: ServerInfo
) -> None:
    """The context apns2 makes with ``init_context(cert=...)`` offers both protocols, as 0.7's did."""
    context = CertificateCredentials(client_pem)._Credentials__ssl_context
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    context.load_verify_locations(fake_apns.ca_file)
    selected = {}
    for server in (fake_apns, nginx_http11_server):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                selected[server.name] = tls.selected_alpn_protocol()
    assert selected == {"fake-apns": "h2", "nginx-http11": "http/1.1"}


def test_single_send(apns: Any, fake_apns: ServerInfo, client_pem: str) -> None:
    assert apns.send_notification("ok-single", Payload(alert="hello"), topic=TOPIC) is None
    stats = _stats_with_cert(fake_apns, client_pem)
    assert stats["by_token"] == {"ok-single": "Success"}


def test_bad_device_token_raises_apns2_exception(apns: Any) -> None:
    with pytest.raises(BadDeviceToken):
        apns.send_notification("bad-token", Payload(alert="hello"), topic=TOPIC)
    # The connection is still good for the next notification.
    apns.send_notification("ok-after-bad", Payload(alert="hello"), topic=TOPIC)


def test_unregistered_returns_its_timestamp(apns: Any) -> None:
    stream_id = apns.send_notification_async("gone-token", Payload(alert="hello"), topic=TOPIC)
    assert apns.get_notification_result(stream_id) == ("Unregistered", UNREGISTERED_AT)
    with pytest.raises(Unregistered) as raised:
        apns.send_notification("gone-token", Payload(alert="hello"), topic=TOPIC)
    assert raised.value.timestamp == UNREGISTERED_AT


def test_batch_over_one_connection_respects_the_stream_limit(
    apns: Any, fake_apns: ServerInfo, client_pem: str
) -> None:
    tokens = (
        [f"ok-{i}" for i in range(1000)] + [f"bad-{i}" for i in range(40)] + [f"gone-{i}" for i in range(40)]
    )
    notifications = [
        apns2_client.Notification(token=token, payload=Payload(alert=f"n {token}", badge=1))
        for token in tokens
    ]
    # The collapse id asks the fake APNs to hold each one until the limit is full.
    results = apns.send_notification_batch(notifications, topic=TOPIC, collapse_id=HOLD)

    expected: dict[str, Any] = {token: "Success" for token in tokens if token.startswith("ok")}
    expected.update({token: "BadDeviceToken" for token in tokens if token.startswith("bad")})
    expected.update(
        {token: ("Unregistered", UNREGISTERED_AT) for token in tokens if token.startswith("gone")}
    )
    assert results == expected
    # apns2 learned the limit through 0.7's ``conn._conn`` wrapper.
    assert apns._APNsClient__max_concurrent_streams == STREAM_LIMIT
    stats = _stats_with_cert(fake_apns, client_pem)
    assert stats["notifications"] == len(tokens)
    assert len(stats["client_ports"]) == 1, "every notification over one connection"
    # The server saw the limit filled and never exceeded (it holds each
    # notification until STREAM_LIMIT are in flight).
    assert stats["max_in_flight"] == STREAM_LIMIT
    assert apns._connection.max_concurrent_streams == STREAM_LIMIT


@pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning")
def test_heartbeat_pings_with_no_exception_in_any_thread(
    fake_apns: ServerInfo, client_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apns2's heartbeat thread calls ``conn.ping('-' * 8)`` (a str) every period."""
    failures: list[threading.ExceptHookArgs] = []
    # Like the default hook, ignore SystemExit (how the test ends the loop).
    monkeypatch.setattr(
        threading, "excepthook", lambda args: None if args.exc_type is SystemExit else failures.append(args)
    )
    wanted_pings = 25
    pinged = threading.Condition()
    state = {"pings": 0, "thread": None}
    stop = threading.Event()

    def heartbeat_sleep(period: float) -> None:
        # apns2 sleeps right after each ping returned (its ACK arrived).
        with pinged:
            state["pings"] += 1
            state["thread"] = threading.current_thread()
            pinged.notify_all()
        # apns2's loop has no way to stop; SystemExit ends a thread quietly.
        if stop.wait(period):
            raise SystemExit

    monkeypatch.setattr(apns2_client, "time", types.SimpleNamespace(sleep=heartbeat_sleep))

    class LocalAPNsClient(apns2_client.APNsClient):  # type: ignore[misc, name-defined]
        LIVE_SERVER = "localhost"
        DEFAULT_PORT = fake_apns.port

    credentials = CertificateCredentials(client_pem)
    credentials._Credentials__ssl_context.load_verify_locations(fake_apns.ca_file)
    client = LocalAPNsClient(credentials, heartbeat_period=0.1)
    try:
        # Notifications go out on the same connection while the heartbeat pings.
        for i in range(500):
            client.send_notification(f"ok-hb-{i}", Payload(alert="beat"), topic=TOPIC)
            with pinged:
                if state["pings"] >= wanted_pings:
                    break
        with pinged:
            assert pinged.wait_for(lambda: state["pings"] >= wanted_pings, timeout=60)
    finally:
        stop.set()
        thread = state["thread"]
        if isinstance(thread, threading.Thread):
            thread.join(timeout=30)
            assert not thread.is_alive()
        client._connection.close()
    assert failures == []
    assert state["pings"] >= wanted_pings


def test_str_ping_is_encoded_as_utf8_like_0_7(fake_apns: ServerInfo, client_pem: str) -> None:
    context = hyper.tls.init_context(cert_path=fake_apns.ca_file, cert=client_pem)
    with hyper.HTTP20Connection("localhost", fake_apns.port, ssl_context=context, timeout=30) as conn:
        assert conn.ping("-" * 8) >= 0
        assert conn.ping(b"12345678") >= 0
        with pytest.raises(ValueError):
            conn.ping("é" * 8)  # 16 bytes in UTF-8, as 0.7 would have sent them
