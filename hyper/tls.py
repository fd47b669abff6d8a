"""The default TLS configuration: certifi's CAs, TLS 1.2 or newer, ALPN, hostname checks."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence

import certifi

from .exceptions import MissingCertFile

#: ALPN protocols offered by :class:`hyper.HTTP20Connection`.
H2_ALPN: tuple[str, ...] = ("h2",)
#: ALPN protocols :func:`init_context` offers by default: HTTP/2, else HTTP/1.1,
#: so its context suits every connection class (as hyper 0.7's did).
DEFAULT_ALPN: tuple[str, ...] = ("h2", "http/1.1")

# hyper 0.7's names for the same lists (they also held the long-dead draft
# identifiers h2-14..h2-16, which no server negotiates any more). Lists, as
# in 0.7, so ``H2_NPN_PROTOCOLS + ['http/1.1']`` keeps working.
#: The HTTP/2 protocol id (0.7 name).
NPN_PROTOCOL = "h2"
#: The HTTP/2 ALPN ids (0.7 name).
H2_NPN_PROTOCOLS: list[str] = list(H2_ALPN)
#: Every ALPN id hyper speaks (0.7 name).
SUPPORTED_NPN_PROTOCOLS: list[str] = list(DEFAULT_ALPN)
#: The cleartext HTTP/2 upgrade token (0.7 name).
H2C_PROTOCOL = "h2c"

# RFC 9113 section 9.2.2 forbids these for HTTP/2; OpenSSL's defaults already
# exclude most, this makes it explicit and keeps forward secrecy + AEAD only.
_H2_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def init_context(
    cert_path: str | None = None,
    cert: str | tuple[str, str] | None = None,
    cert_password: str | bytes | Callable[[], str | bytes] | None = None,
    alpn: Sequence[str] = DEFAULT_ALPN,
) -> ssl.SSLContext:
    """Create an :class:`ssl.SSLContext` set up for hyper's connections.

    By default it offers ALPN ``h2`` and ``http/1.1``, so it suits
    :class:`~hyper.HTTPConnection`, :class:`~hyper.HTTP20Connection` (which
    refuses a server that picks HTTP/1.1) and :class:`~hyper.HTTP11Connection`.

    :param cert_path: a CA bundle file (or ``c_rehash`` directory) to trust
        instead of certifi's.
    :param cert: a client certificate: a PEM path holding cert and key, or a
        ``(cert_file, key_file)`` pair.
    :param cert_password: the password of the client certificate's key (or
        a callable returning it).
    :param alpn: the ALPN protocols to offer, most preferred first.
    :returns: a context that verifies certificates and host names, requires
        TLS 1.2 or newer, refuses TLS compression and offers ``alpn``.
    :raises MissingCertFile: ``cert_path`` or a ``cert`` file does not exist
        (before any other work, naming the file).
    """
    _require_files(cert_path, cert)
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


def _require_files(cert_path: str | None, cert: str | tuple[str, str] | None) -> None:
    """Raise :class:`MissingCertFile` naming the first given path that does not exist.

    Checked up front so the caller learns which file is missing: OpenSSL's
    own error (a bare ``FileNotFoundError`` or ``SSLError``) does not say.
    """
    if cert_path is not None and not os.path.exists(cert_path):
        raise MissingCertFile(f"CA certificate file not found (cert_path={cert_path!r})", cert_path)
    cert_files = [] if cert is None else [cert] if isinstance(cert, str) else list(cert)
    for path in cert_files:
        if not os.path.isfile(path):
            raise MissingCertFile(f"client certificate file not found (cert={path!r})", path)
