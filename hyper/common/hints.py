"""What probably went wrong: hints added to connection errors.

A handful of mistakes produce errors whose text names the symptom, not the
cause: ``https://`` to a cleartext port ("wrong version number"), ``http://``
to a TLS port (a TLS alert, an HTTP 400 or a closed connection), a server
certificate from a private CA ("unable to get local issuer certificate").
The functions here look at what was received (or the ``ssl`` error) and
return one sentence saying what probably happened and what to do, or
``None`` when they cannot tell. They are pure (no I/O, no state), so the
places that meet those errors (the TLS handshake, the first bytes parsed by
either protocol) call them and append the result with :func:`with_hint`.
"""

from __future__ import annotations

import ssl

# OpenSSL's X509_V_ERR_* codes for "the chain does not lead to a CA this
# context trusts": the one failure a cert_path / --cacert fixes.
_UNTRUSTED_CHAIN = frozenset(
    {
        2,  # UNABLE_TO_GET_ISSUER_CERT
        18,  # DEPTH_ZERO_SELF_SIGNED_CERT
        19,  # SELF_SIGNED_CERT_IN_CHAIN
        20,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        21,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    }
)
_NOT_YET_VALID = 9  # X509_V_ERR_CERT_NOT_YET_VALID
_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED
_NAME_MISMATCH = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH

# OpenSSL reasons for "the bytes that came back are not TLS records". A
# cleartext HTTP server answers a ClientHello with "HTTP/1.1 400 ...", whose
# first five bytes read as a record header with version "TT": OpenSSL 3.0
# calls that WRONG_VERSION_NUMBER; other versions and libraries (LibreSSL,
# OpenSSL 3.2's new record layer) have used the others for the same thing.
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "HTTP_REQUEST",
        "UNEXPECTED_RECORD",
    }
)

# TLS record content types a TLS server sends first to a client that spoke
# cleartext to it (RFC 8446 section 5.1): an alert, or a handshake record.
_TLS_ALERT = 0x15
_TLS_HANDSHAKE = 0x16

# What well-known servers write in the HTTP error they send back to a
# cleartext request on a TLS port (nginx, Go's net/http, Apache httpd).
# Matched case-insensitively anywhere in the first bytes received.
_TLS_PORT_PHRASES = (
    b"plain http request was sent to https port",
    b"http request to an https server",
    b"speaking plain http to an ssl-enabled server port",
)

#: The hint for a cleartext connection that met a TLS server.
DID_YOU_MEAN_HTTPS = "the server speaks TLS on this port: did you mean https://?"
#: The hint for a TLS handshake answered in something that is not TLS.
DID_YOU_MEAN_HTTP = (
    "the server did not answer in TLS: it probably speaks cleartext HTTP on this port; did you mean http://?"
)
#: How to trust a private CA, from each of hyper's surfaces.
PASS_A_CA = (
    "to trust the CA that issued it, pass ssl_context=hyper.tls.init_context(cert_path='ca.pem'); "
    "with requests: verify='ca.pem'; on the command line: --cacert ca.pem"
)


def with_hint(message: str, hint: str | None) -> str:
    """``message`` with ``hint`` appended (``message`` unchanged when there is none)."""
    return message if not hint else f"{message} ({hint})"


def looks_like_tls(data: bytes) -> bool:
    """Whether ``data`` starts like a TLS alert or handshake record (``15 03 ..``, ``16 03 ..``).

    Two bytes are enough: no HTTP/1.x response starts with a control byte,
    and an HTTP/2 frame of that length (over a MiB) is refused anyway.
    """
    return len(data) >= 2 and data[0] in (_TLS_ALERT, _TLS_HANDSHAKE) and data[1] == 0x03


def cleartext_reply_hint(first_bytes: bytes, *, http2: bool = False) -> str | None:
    """The hint for what a server sent first on a cleartext connection, if it explains a failure.

    :param first_bytes: the first bytes received (a few are enough for the
        TLS check; the HTTP/1.x checks read as many as are given).
    :param http2: the client spoke HTTP/2 with prior knowledge; then an
        HTTP/1.x answer is itself the problem.
    :returns: "did you mean https://?" when the server answered with a TLS
        record or with a well-known server's "this port wants TLS" error; for
        an HTTP/2 client, what an HTTP/1.x answer means; else ``None``.
    """
    if looks_like_tls(first_bytes):
        return DID_YOU_MEAN_HTTPS
    lowered = first_bytes.lower()
    if lowered.startswith(b"http/1.") and any(phrase in lowered for phrase in _TLS_PORT_PHRASES):
        return DID_YOU_MEAN_HTTPS
    if http2 and lowered.startswith(b"http/1."):
        return (
            "the server answered in HTTP/1.x: it does not speak HTTP/2 with prior knowledge on this port "
            "(hyper.HTTPConnection negotiates and falls back to HTTP/1.1); if the port expects TLS, "
            "did you mean https://?"
        )
    return None


def silent_close_hint(*, secure: bool, fresh: bool) -> str | None:
    """The hint for a server that closed the connection instead of answering.

    Many TLS servers (hypercorn, nghttpd, OpenSSL's) close a connection
    whose first bytes are not a ClientHello without a word. Only a
    cleartext connection on which nothing at all was ever received
    (``fresh``) gets the hint: a connection that worked before and is then
    closed says nothing about TLS.
    """
    if secure or not fresh:
        return None
    return "if this port expects TLS, did you mean https://?"


def failed_start_hint(first_bytes: bytes, *, secure: bool, http2: bool) -> str | None:
    """The hint for a connection that failed before the server said anything valid.

    :param first_bytes: what the server sent first (``b''``: nothing).
    :param secure: the connection is TLS: the handshake worked, so the port
        does speak TLS, and there is nothing to guess.
    :param http2: the client spoke HTTP/2 with prior knowledge.
    """
    if secure:
        return None
    if not first_bytes:
        return silent_close_hint(secure=False, fresh=True)
    return cleartext_reply_hint(first_bytes, http2=http2)


def add_hint(error: BaseException, hint: str | None) -> None:
    """Append ``hint`` to the message of ``error`` (in place), if there is one to add.

    For errors made in one place and explained in another (the HTTP/2 core
    knows the first bytes; the error may come from the session). Only an
    error whose first argument is its message is changed.
    """
    if hint and error.args and isinstance(error.args[0], str) and hint not in error.args[0]:
        error.args = (with_hint(error.args[0], hint), *error.args[1:])


def tls_failure_hint(error: ssl.SSLError) -> str | None:
    """The hint for a failed TLS handshake, from the ``ssl`` error.

    A certificate from an unknown CA gets how to pass one; an expired one,
    a name mismatch, and a reply that is not TLS at all each get theirs.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code in _UNTRUSTED_CHAIN:
            return PASS_A_CA
        if code in (_EXPIRED, _NOT_YET_VALID):
            return "check the server's certificate dates, and this machine's clock"
        if code in _NAME_MISMATCH:
            return "connect with a name the certificate lists, or have the certificate reissued"
        return None
    if getattr(error, "reason", None) in _NOT_TLS_REASONS:
        return DID_YOU_MEAN_HTTP
    return None
