"""review17: the requests adapter after a server's error GOAWAY (RFC 9113 section 6.8).

A request above the last stream id of a GOAWAY with an error code fails
with ``ConnectionTerminated(retryable=True)``; the connection's resend
(resending.py) leaves it to the caller (only a graceful GOAWAY is resent),
and the HTTP/2 connection then raises the server's error for every request
"until the caller closes it" (sessions.py). The adapter is that caller: it
must drop the pooled connection, or a ``requests.Session`` stays broken for
that host for good. A scripted TLS server (ALPN h2) sends the GOAWAY on cue;
a second connection answers.
"""

from __future__ import annotations

import socket
import ssl

import h2.errors
import pytest

from tests.scripted import Peer, ScriptedServer
from tests.servers import CertFiles

requests = pytest.importorskip("requests")

_WAIT = 10.0  # bounds every wait; nothing is timed


def test_after_an_error_goaway_the_next_request_gets_a_new_connection(
    server_cert_files: CertFiles, ca_file: str
) -> None:
    from hyper.contrib import HTTP20Adapter

    def calming(peer: Peer) -> None:
        peer.wait_request(_WAIT)
        # The socket stays open (closed when the server stops): the next
        # connection is accepted once this script returns.
        peer.send_goaway(0, int(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM), b"slow down")

    def answering(peer: Peer) -> None:
        request = peer.wait_request(_WAIT)
        peer.respond(request.stream_id, body=b"fine")
        peer.drain_until_closed()

    scripts = [calming, answering]

    def run(peer: Peer) -> None:
        scripts.pop(0)(peer)

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    server_context.set_alpn_protocols(["h2"])
    with ScriptedServer(run, tls_context=server_context, connections=2) as server:
        with requests.Session() as session:
            session.trust_env = False  # the machine's proxy variables must not apply
            adapter = HTTP20Adapter()
            session.mount("https://", adapter)
            try:
                url = f"https://localhost:{server.port}/"
                with pytest.raises(requests.exceptions.RequestException):
                    session.get(url + "calm", verify=ca_file, timeout=_WAIT)
                # The server's error was reported; the next request must not
                # get it again from the same, dead, connection.
                response = session.get(url + "again", verify=ca_file, timeout=_WAIT)
                assert response.content == b"fine"
            finally:
                adapter.close()
                if scripts:
                    # The second connection never came: release the
                    # server's accept() now rather than at its timeout.
                    socket.create_connection(("127.0.0.1", server.port)).close()
