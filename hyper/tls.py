"""The default TLS configuration: certifi's CAs, TLS 1.2 or newer, ALPN, hostname checks."""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence

import certifi

#: ALPN protocols offered by :class:`hyper.HTTP20Connection`.
H2_ALPN: tuple[str, ...] = ("h2",)

# RFC 9113 section 9.2.2 forbids these for HTTP/2; OpenSSL's defaults already
# exclude most, this makes it explicit and keeps forward secrecy + AEAD only.
_H2_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def init_context(
    cert_path: str | None = None,
    cert: str | tuple[str, str] | None = None,
    cert_password: str | None = None,
    alpn: Sequence[str] = H2_ALPN,
) -> ssl.SSLContext:
    """Create the :class:`ssl.SSLContext` hyper uses when the caller gives none.

    :param cert_path: a CA bundle file (or directory) to trust instead of certifi's.
    :param cert: a client certificate: a PEM path holding cert and key, or a
        ``(cert_file, key_file)`` pair.
    :param cert_password: the password of the client certificate's key.
    :param alpn: the ALPN protocols to offer, most preferred first.
    :returns: a context that verifies certificates and host names, requires
        TLS 1.2 or newer and offers ``alpn``.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cert_path is None:
        context.load_verify_locations(cafile=certifi.where())
    elif os.path.isdir(cert_path):
        context.load_verify_locations(capath=cert_path)
    else:
        context.load_verify_locations(cafile=cert_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_H2_CIPHERS)
    # Compression enables CRIME-style attacks and is forbidden by RFC 9113.
    context.options |= ssl.OP_NO_COMPRESSION
    if cert is not None:
        if isinstance(cert, tuple):
            context.load_cert_chain(cert[0], cert[1], password=cert_password)
        else:
            context.load_cert_chain(cert, password=cert_password)
    context.set_alpn_protocols(list(alpn))
    return context
