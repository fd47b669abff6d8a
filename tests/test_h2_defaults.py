"""HTTP20Connection's own defaults, and a name hyper 0.7 code imports (issue 13, small items)."""

from __future__ import annotations

import ssl
import subprocess
import sys

import certifi
import pytest

import hyper
import hyper.http20.response
from tests.scripted import ScriptedServer
from tests.servers import CertFiles


def test_the_default_context_offers_only_h2(
    server_cert_files: CertFiles, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that speaks only HTTP/1.1 finds nothing to select in what the connection offers.

    With ``h2`` and ``http/1.1`` offered, such a server would select
    ``http/1.1``; HTTP20Connection cannot speak it, so it offers ``h2`` alone.
    """
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    server_context.set_alpn_protocols(["http/1.1"])
    # The default context trusts certifi's CAs; this run's test CA stands in for them.
    monkeypatch.setattr(certifi, "where", lambda: ca_file)
    with ScriptedServer(
        lambda peer: peer.drain_until_closed(2), handshake=False, tls_context=server_context
    ) as server:
        conn = hyper.HTTP20Connection("localhost", server.port, secure=True, timeout=5)
        with pytest.raises(hyper.TLSError, match="did not select HTTP/2") as info:
            conn.connect()
        assert info.value.selected_protocol is None  # not "http/1.1": it was never offered
        conn.close()


def test_http20push_can_be_imported_from_the_response_module_like_0_7() -> None:
    from hyper.http20.response import HTTP20Push  # noqa: PLC0415 - the 0.7 import under test

    assert HTTP20Push is hyper.HTTP20Push
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        hyper.http20.response.NoSuchName  # noqa: B018 - the lookup is the test


def test_that_import_works_first_thing_in_a_fresh_interpreter() -> None:
    """No circular import when 0.7 code imports it before anything else of hyper."""
    code = "from hyper.http20.response import HTTP20Push; print(HTTP20Push.__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "HTTP20Push"), done.stderr
