"""Errors that say what probably went wrong (hyper.common.hints), pure and end to end.

End to end against real servers: ``https://`` to nginx's, hypercorn's and
nghttpd's cleartext ports; ``http://`` to their TLS ports; a certificate
from a CA the client does not know; a name the certificate does not list;
an IPv6 server. The one peer no installed server imitates (a TLS server that
answers cleartext with a TLS alert record) is a few lines of socket code.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

import hyper
import hyper.testing
import hyper.tls
from hyper.common.hints import (
    DID_YOU_MEAN_HTTP,
    DID_YOU_MEAN_HTTPS,
    PASS_A_CA,
    add_hint,
    cleartext_reply_hint,
    failed_start_hint,
    looks_like_tls,
    silent_close_hint,
    tls_failure_hint,
    with_hint,
)
from hyper.common.sockets import connect_tcp, wrap_tls
from tests.servers import ServerInfo

ALL_CLASSES = [hyper.HTTP11Connection, hyper.HTTP20Connection, hyper.HTTPConnection]
NGINX_HTML_400 = (
    b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n"
    b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"
)


# -- the pure functions ----------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        b"\x15\x03\x01\x00\x02\x02\x46",  # alert, TLS 1.0 record version (as servers answer)
        b"\x15\x03\x03\x00\x02\x02\x0a",  # alert: unexpected_message, TLS 1.2 record
        b"\x16\x03\x03\x00\x7a\x02",  # a handshake record
        b"\x15\x03",  # two bytes are enough
    ],
)
def test_tls_records_mean_https(first: bytes) -> None:
    assert looks_like_tls(first)
    assert cleartext_reply_hint(first) == DID_YOU_MEAN_HTTPS
    assert cleartext_reply_hint(first, http2=True) == DID_YOU_MEAN_HTTPS


@pytest.mark.parametrize(
    "first",
    [
        b"",
        b"\x15",
        b"HTTP/1.1 200 OK\r\n",
        b"\x00\x00\x12\x04\x00\x00\x00\x00\x00",  # an HTTP/2 SETTINGS frame
        b"\x16\x01",  # not version 3
        b"\x17\x03\x03",  # application data first: not what a server answers cleartext with
    ],
)
def test_other_bytes_are_not_tls(first: bytes) -> None:
    assert not looks_like_tls(first)
    assert cleartext_reply_hint(first) is None


@pytest.mark.parametrize(
    "reply",
    [
        NGINX_HTML_400,
        # Go's net/http, then Apache httpd.
        b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        b"HTTP/1.1 400 Bad Request\r\n\r\nYou're speaking plain HTTP to an SSL-enabled server port.",
    ],
)
def test_well_known_tls_port_errors_mean_https(reply: bytes) -> None:
    assert cleartext_reply_hint(reply) == DID_YOU_MEAN_HTTPS
    assert cleartext_reply_hint(reply, http2=True) == DID_YOU_MEAN_HTTPS


def test_an_http1_answer_to_http2_prior_knowledge() -> None:
    hint = cleartext_reply_hint(b"HTTP/1.1 400 Bad Request\r\nServer: nginx/", http2=True)
    assert hint is not None
    assert "does not speak HTTP/2 with prior knowledge" in hint and "did you mean https://?" in hint
    # Over HTTP/1.1 a plain 400 is just a response.
    assert cleartext_reply_hint(b"HTTP/1.1 400 Bad Request\r\n") is None


def test_silent_close_hint_only_for_fresh_cleartext_connections() -> None:
    assert silent_close_hint(secure=False, fresh=True) == "if this port expects TLS, did you mean https://?"
    assert silent_close_hint(secure=True, fresh=True) is None
    assert silent_close_hint(secure=False, fresh=False) is None


def test_failed_start_hint() -> None:
    assert failed_start_hint(b"", secure=False, http2=True) == silent_close_hint(secure=False, fresh=True)
    assert failed_start_hint(TLSAlertServer.ALERT, secure=False, http2=True) == DID_YOU_MEAN_HTTPS
    assert failed_start_hint(NGINX_HTML_400, secure=False, http2=False) == DID_YOU_MEAN_HTTPS
    http1 = failed_start_hint(b"HTTP/1.1 505 HTTP Version Not Supported\r\n", secure=False, http2=True)
    assert http1 is not None and "prior knowledge" in http1
    # Over TLS the port does speak TLS: nothing to guess.
    for first in (b"", TLSAlertServer.ALERT, b"HTTP/1.1 400 Bad Request\r\n"):
        assert failed_start_hint(first, secure=True, http2=True) is None


def test_add_hint_appends_once() -> None:
    error = hyper.ConnectionTerminated("server closed the connection", retryable=True)
    add_hint(error, "did you mean https://?")
    add_hint(error, "did you mean https://?")
    add_hint(error, None)
    assert str(error) == "server closed the connection (did you mean https://?)"
    assert error.retryable  # the attributes are untouched
    coded = hyper.ProtocolError("bad frame", 1)
    add_hint(coded, "a hint")
    assert coded.args == ("bad frame (a hint)",) and coded.error_code == 1


def test_with_hint() -> None:
    assert with_hint("it failed", None) == "it failed"
    assert with_hint("it failed", "") == "it failed"
    assert with_hint("it failed", "try this") == "it failed (try this)"


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_code = code
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (20, PASS_A_CA),  # unable to get local issuer certificate
        (19, PASS_A_CA),  # self-signed certificate in chain
        (18, PASS_A_CA),  # self-signed certificate
        (10, "check the server's certificate dates, and this machine's clock"),
        (62, "connect with a name the certificate lists, or have the certificate reissued"),
        (50, None),  # application verification failure: nothing to suggest
    ],
)
def test_tls_failure_hint_for_certificates(code: int, expected: str | None) -> None:
    assert tls_failure_hint(_verify_error(code, "whatever")) == expected


def test_tls_failure_hint_for_a_reply_that_is_not_tls() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    assert tls_failure_hint(error) == DID_YOU_MEAN_HTTP
    other = ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure")
    other.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"
    assert tls_failure_hint(other) is None


def test_the_ca_hint_names_the_real_cli_option() -> None:
    from hyper.cli.args import build_parser

    options = {option for action in build_parser()._actions for option in action.option_strings}
    assert "--cacert" in options and "--cacert ca.pem" in PASS_A_CA
    assert "init_context(cert_path=" in PASS_A_CA


# -- https:// to a cleartext port ---------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES)
@pytest.mark.parametrize(
    "server", ["nginx_http11_plain_server", "nginx_h2c_server", "hypercorn_h2c_server", "nghttpd_h2c_server"]
)
def test_https_to_a_cleartext_port_says_did_you_mean_http(
    request: pytest.FixtureRequest, server: str, cls: type[hyper.HTTP11Connection], ca_file: str
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    context = hyper.tls.init_context(cert_path=ca_file)
    conn = cls(info.host, info.port, secure=True, ssl_context=context, timeout=10)
    with conn, pytest.raises(hyper.TLSError) as caught:
        conn.request("GET", "/")
        conn.getresponse()
    message = str(caught.value)
    assert "did you mean http://?" in message
    assert message.startswith(f"TLS handshake with {info.host}")
    assert isinstance(caught.value.__cause__, ssl.SSLError)


# -- http:// to a TLS port ------------------------------------------------------------


def test_http2_prior_knowledge_to_an_nginx_tls_port(nginx_server: ServerInfo) -> None:
    with hyper.HTTP20Connection(nginx_server.host, nginx_server.port, secure=False, timeout=10) as conn:
        with pytest.raises(hyper.ProtocolError, match=r"did you mean https://\?"):
            conn.getresponse(conn.request("GET", "/"))


def test_http11_to_an_nginx_tls_port_is_nginx_s_own_400(nginx_http11_server: ServerInfo) -> None:
    # nginx answers in cleartext, so this is a response, not an error: its
    # body says what happened, and the hint function recognises it.
    with hyper.HTTP11Connection(nginx_http11_server.host, nginx_http11_server.port, timeout=10) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        body = response.read()
    assert response.status == 400
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n".encode()
    assert cleartext_reply_hint(head + body) == DID_YOU_MEAN_HTTPS


@pytest.mark.parametrize("cls", ALL_CLASSES)
@pytest.mark.parametrize("server", ["hypercorn_server", "nghttpd_server"])
def test_http_to_a_tls_port_that_closes_silently(
    request: pytest.FixtureRequest, server: str, cls: type[hyper.HTTP11Connection]
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    with cls(info.host, info.port, secure=False, timeout=10) as conn:
        with pytest.raises(hyper.HyperError, match=r"did you mean https://\?"):
            conn.getresponse(conn.request("GET", "/"))


class TLSAlertServer:
    """Answers whatever a client sends first with a TLS alert record, then closes.

    What some TLS servers (Java's, several load balancers) do with a
    cleartext request; none of the installed servers does it.
    """

    ALERT = b"\x15\x03\x01\x00\x02\x02\x46"  # fatal protocol_version, TLS 1.0 record

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="tls-alert-server", daemon=True)
        self._stop = threading.Event()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with client:
                client.settimeout(10)
                try:
                    client.recv(65536)
                    client.sendall(self.ALERT)
                except OSError:
                    pass

    def __enter__(self) -> TLSAlertServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._listener.close()
        # A connect wakes accept() on platforms where close() does not.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(10)


@pytest.fixture
def tls_alert_server() -> Iterator[TLSAlertServer]:
    with TLSAlertServer() as server:
        yield server


def test_http11_to_a_port_answering_with_a_tls_alert(tls_alert_server: TLSAlertServer) -> None:
    with hyper.HTTP11Connection("127.0.0.1", tls_alert_server.port, timeout=10) as conn:
        with pytest.raises(
            hyper.ProtocolError, match=r"the server speaks TLS on this port: did you mean https://\?"
        ):
            conn.getresponse(conn.request("GET", "/"))


def test_http2_to_a_port_answering_with_a_tls_alert(tls_alert_server: TLSAlertServer) -> None:
    # The 7-byte alert is shorter than a frame header: the close that follows is what fails.
    with hyper.HTTP20Connection("127.0.0.1", tls_alert_server.port, secure=False, timeout=10) as conn:
        with pytest.raises(
            hyper.ConnectionTerminated, match=r"the server speaks TLS on this port: did you mean https://\?"
        ):
            conn.getresponse(conn.request("GET", "/"))


# -- certificates ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_untrusted_certificate_says_how_to_pass_a_ca(
    nginx_server: ServerInfo, cls: type[hyper.HTTP11Connection]
) -> None:
    # The default context trusts certifi's CAs, not the test CA.
    with cls(nginx_server.host, nginx_server.port, secure=True, timeout=10) as conn:
        with pytest.raises(hyper.TLSError) as caught:
            conn.getresponse(conn.request("GET", "/"))
    message = str(caught.value)
    assert "not trusted: unable to get local issuer certificate" in message
    assert PASS_A_CA in message


def test_wrong_name_says_so(nginx_wrong_host_server: ServerInfo, ca_file: str) -> None:
    context = hyper.tls.init_context(cert_path=ca_file)
    info = nginx_wrong_host_server
    with hyper.HTTP20Connection(info.host, info.port, ssl_context=context, timeout=10) as conn:
        with pytest.raises(hyper.TLSError, match="connect with a name the certificate lists") as caught:
            conn.getresponse(conn.request("GET", "/"))
    assert PASS_A_CA not in str(caught.value)  # a CA would not help


# -- IPv6 addresses in brackets -------------------------------------------------------------


def _refusing_ipv6_port() -> tuple[socket.socket, int]:
    """A bound, not listening, socket on ::1: connecting to its port is refused."""
    holder = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    holder.bind(("::1", 0))
    return holder, holder.getsockname()[1]


def test_connect_error_shows_ipv6_in_brackets() -> None:
    holder, port = _refusing_ipv6_port()
    with holder:
        with pytest.raises(hyper.ConnectError, match=rf"could not connect to \[::1\]:{port}: "):
            connect_tcp("::1", port, timeout=10)
        with hyper.HTTP20Connection(f"[::1]:{port}", secure=False, timeout=10) as conn:
            with pytest.raises(hyper.ConnectError, match=rf"\[::1\]:{port}"):
                conn.request("GET", "/")


def test_tls_messages_show_ipv6_in_brackets() -> None:
    with hyper.testing.TestServer(host="::1") as server:
        # The TLS layer alone: the port given for the message.
        sock = connect_tcp("::1", server.port, timeout=10)
        with pytest.raises(hyper.TLSError, match=rf"certificate of \[::1\]:{server.port} not trusted"):
            wrap_tls(sock, hyper.tls.init_context(), "::1", 10, port=server.port)
        # Through a connection (which does not pass the port yet: see the hook test).
        with hyper.HTTP20Connection(f"[::1]:{server.port}", secure=True, timeout=10) as conn:
            with pytest.raises(hyper.TLSError, match=r"certificate of \[::1\]"):
                conn.request("GET", "/")


def test_tls_messages_of_a_connection_name_host_and_port() -> None:
    with hyper.testing.TestServer(host="::1") as server:
        with hyper.HTTP20Connection(f"[::1]:{server.port}", secure=True, timeout=10) as conn:
            with pytest.raises(hyper.TLSError, match=rf"certificate of \[::1\]:{server.port} not trusted"):
                conn.request("GET", "/")


def test_alpn_refusal_shows_ipv6_in_brackets() -> None:
    with hyper.testing.TestServer(host="::1") as server:
        context = hyper.tls.init_context(cert_path=server.ca_file, alpn=["http/1.1"])
        with hyper.HTTP20Connection(f"[::1]:{server.port}", ssl_context=context, timeout=10) as conn:
            with pytest.raises(hyper.TLSError, match=rf"^\[::1\]:{server.port} did not select HTTP/2"):
                conn.request("GET", "/")


def test_connection_log_shows_ipv6_in_brackets(caplog: pytest.LogCaptureFixture) -> None:
    with hyper.testing.TestServer(host="::1") as server:
        context = hyper.tls.init_context(cert_path=server.ca_file)
        with caplog.at_level("DEBUG", logger="hyper"):
            with hyper.HTTP20Connection(f"[::1]:{server.port}", ssl_context=context, timeout=10) as conn:
                conn.connect()
    assert f"connected to [::1]:{server.port} (TLS, protocol h2)" in caplog.messages
