"""review16: transparent resends (hyper/http20/resending.py) seen through the requests adapter.

The adapter (hyper/contrib/adapter.py) sends a request whose error is
``retryable`` once more itself. Since the connection now sends a refused
request again up to :data:`~hyper.http20.resending.MAX_RESENDS` times before
it raises that error, the two bounds multiply: a server that refuses a
request gets it ``2 * (1 + MAX_RESENDS)`` times, where docs/advanced.rst
("Requests the server did not process") says the adapter too sends it again
at most three times. A scripted TLS server (ALPN h2) refuses on cue.
"""

from __future__ import annotations

import ssl
import threading

import h2.errors
import pytest

from hyper.http20.resending import MAX_RESENDS
from tests.scripted import Peer, ScriptedServer
from tests.servers import CertFiles

requests = pytest.importorskip("requests")

_WAIT = 10.0  # bounds every wait; nothing is timed


def test_the_adapter_sends_a_refused_request_at_most_one_plus_max_resends_times(
    server_cert_files: CertFiles, ca_file: str
) -> None:
    from hyper.contrib import HTTP20Adapter

    received: list[int] = []
    lock = threading.Lock()

    def script(peer: Peer) -> None:
        while True:
            try:
                request = peer.wait_request(_WAIT)
            except AssertionError:
                return  # the client hung up (or sent nothing more)
            with lock:
                received.append(request.stream_id)
            peer.h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            peer.flush()

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    server_context.set_alpn_protocols(["h2"])
    with ScriptedServer(script, tls_context=server_context) as server:
        with requests.Session() as session:
            session.trust_env = False  # the machine's proxy variables must not apply
            adapter = HTTP20Adapter()
            session.mount("https://", adapter)
            with pytest.raises(requests.exceptions.RequestException):
                session.get(f"https://localhost:{server.port}/refused", verify=ca_file, timeout=_WAIT)
            adapter.close()
    with lock:
        count = len(received)
    assert count == 1 + MAX_RESENDS
