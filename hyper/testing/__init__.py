"""Test helpers: a real HTTP/2 server to point hyper (or anything) at.

::

    import hyper, hyper.tls
    from hyper.testing import TestServer

    with TestServer() as srv:
        ctx = hyper.tls.init_context(cert_path=srv.ca_file)
        with hyper.HTTP20Connection("localhost", srv.port, ssl_context=ctx) as conn:
            resp = conn.getresponse(conn.request("GET", "/"))
            assert resp.status == 200

``python -m hyper.testing`` runs that as a demo; ``python -m hyper.testing
--serve`` keeps a server running. See :mod:`hyper.testing.server` for the
routes.

.. warning::

   The bundled certificates' private keys are public (they ship in the
   package). They are only good for tests against servers on localhost.
"""

from hyper.testing.server import (
    CA_FILE,
    MAX_BYTES,
    Handler,
    Request,
    Response,
    TestServer,
    expected_bytes,
)

__all__ = [
    "CA_FILE",
    "MAX_BYTES",
    "Handler",
    "Request",
    "Response",
    "TestServer",
    "expected_bytes",
]
