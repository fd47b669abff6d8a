"""An HTTPie transport plugin: HTTPie sends its ``https://`` requests with hyper.

Install it with the extra, and HTTPie picks it up by itself::

    pip install hyper[httpie]
    http https://example.org/        # HTTP/2 where the server offers it

HTTPie finds transport plugins through the ``httpie.plugins.transport.v1``
entry point group; hyper registers :class:`HyperTransportPlugin` there (see
``setup.py``). The plugin mounts a :class:`hyper.contrib.HTTP20Adapter` on
``https://``: each connection offers ``h2`` and ``http/1.1`` in ALPN and
speaks whichever the server picks, so a server without HTTP/2 still works
over HTTP/1.1. ``http://`` URLs stay with HTTPie's own transport.

HTTPie's ``--verify``, ``--cert``/``--cert-key``, ``--timeout``, ``--proxy``
and ``--stream`` reach the adapter as the ``requests`` arguments of the same
meaning. ``--ssl`` and ``--ciphers`` configure HTTPie's own HTTPS adapter
and do not apply to this one.
"""

from __future__ import annotations

import os
import ssl

try:
    # HTTPie ships no type information; under mypy the base class is Any.
    from httpie.plugins import TransportPlugin  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError as exc:  # pragma: no cover - exercised only without HTTPie
    raise ImportError("hyper.httpie_plugin needs HTTPie: pip install hyper[httpie]") from exc

import requests.exceptions

from .contrib import CertArg, HTTP20Adapter, VerifyArg
from .tls import init_context

__all__ = ["HyperTransportPlugin", "HTTPieAdapter"]


class HTTPieAdapter(HTTP20Adapter):
    """:class:`~hyper.contrib.HTTP20Adapter` taught HTTPie's client certificate.

    With ``--cert-key``, HTTPie hands the adapter a three-item ``cert``
    (certificate file, key file, key password) rather than requests' pair.
    This adapter uses the pair and, when HTTPie has a password for the key
    (``--cert-key-pass``), decrypts the key with it instead of leaving OpenSSL
    to prompt on the terminal.
    """

    def _context_for(self, verify: VerifyArg, cert: CertArg) -> ssl.SSLContext | None:
        password = getattr(cert, "key_password", None)
        if isinstance(cert, tuple) and len(cert) > 2:
            cert = (cert[0], cert[1])
        if password is None:
            return super()._context_for(verify, cert)
        return _context_with_key_password(verify, cert, password, self.alpn_protocols)


def _context_with_key_password(
    verify: VerifyArg, cert: CertArg, password: str, alpn: tuple[str, ...]
) -> ssl.SSLContext:
    """A TLS context like the adapter's own, with the client key decrypted by ``password``.

    Not cached: HTTPie makes one request (plus its redirects) per process.
    """
    cert_path = verify if isinstance(verify, str) else None
    if cert_path is not None and not os.path.exists(cert_path):
        raise OSError(f"no CA certificate bundle or directory at {cert_path!r} (given as verify=)")
    try:
        context = init_context(cert_path=cert_path, cert=cert, cert_password=password, alpn=alpn)
    except ssl.SSLError as exc:
        # OpenSSL only says "PEM lib"; say which files and the likely cause.
        raise requests.exceptions.SSLError(
            f"cannot load the client certificate {cert!r} with the key password given "
            f"(--cert-key-pass): wrong password, or a key that does not match ({exc})"
        ) from exc
    if verify is False:
        context.check_hostname = False  # must come before CERT_NONE
        context.verify_mode = ssl.CERT_NONE
    return context


class HyperTransportPlugin(TransportPlugin):  # type: ignore[misc]
    """HTTPie's ``https://`` requests go through hyper: HTTP/2, or HTTP/1.1 as negotiated."""

    #: Shown by ``httpie cli plugins list``.
    name = "hyper HTTP/2 transport"
    #: Shown in HTTPie's ``--debug`` output.
    description = "Sends https:// requests with hyper: HTTP/2 over ALPN, HTTP/1.1 fallback"
    #: The URL prefix HTTPie mounts the adapter on.
    prefix = "https://"

    def get_adapter(self) -> HTTP20Adapter:
        """A fresh adapter for HTTPie's ``requests.Session``.

        It negotiates the protocol per connection (ALPN ``h2``, then
        ``http/1.1``) and takes ``verify``, ``cert``, ``timeout``, ``proxies``
        and ``stream`` per request, as HTTPie passes them.
        """
        return HTTPieAdapter()
