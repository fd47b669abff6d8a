"""The exceptions hyper raises.

Every error hyper raises derives from :class:`HyperError`; details travel in
attributes and the lower-level cause (``ssl``, ``socket``, ``h2``) is chained
with ``raise ... from exc``, so nothing from those libraries reaches the user
undecorated.

::

    HyperError
      TransportError        (ConnectError, TLSError, ProxyError .status .headers)
      HyperTimeout          (ConnectTimeout, ReadTimeout, WriteTimeout)
      ProtocolError         .error_code
      StreamResetError      .stream_id, .error_code, .retryable
      ConnectionTerminated  .error_code, .last_stream_id, .retryable
      DecodeError           (DecodedSizeExceeded)
      BodyLengthError
      ConnectionClosed
      InvalidStreamID       (also a LookupError)
      InvalidURL            (also a ValueError; HostChangedError .url .origin)
      InvalidHeader         (also a ValueError)
      MissingCertFile       (also a FileNotFoundError)
"""

from __future__ import annotations

import errno

from .headers import HTTPHeaderMap


class HyperError(Exception):
    """Base class of every exception hyper raises."""


class TransportError(HyperError):
    """The socket or the TLS layer failed."""


class ConnectError(TransportError):
    """The TCP connection could not be established."""


class TLSError(TransportError):
    """The TLS handshake failed, or the peer did not negotiate HTTP/2.

    ``selected_protocol`` holds what ALPN selected when that was the problem
    (``None`` when the server selected nothing).
    """

    def __init__(self, message: str, selected_protocol: str | None = None) -> None:
        super().__init__(message)
        self.selected_protocol = selected_protocol


class ProxyError(TransportError):
    """A proxy refused or broke the tunnel.

    ``status`` is the proxy's HTTP status code (e.g. 407 when it wants
    credentials, 403 when it forbids the target) and ``headers`` its response
    header fields (an :class:`~hyper.HTTPHeaderMap`, e.g. with
    ``proxy-authenticate``); both are ``None`` when the proxy never answered
    with a valid response.
    """

    def __init__(self, message: str, status: int | None = None, headers: HTTPHeaderMap | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class HyperTimeout(HyperError, TimeoutError):
    """A bounded wait expired."""


class ConnectTimeout(HyperTimeout, TransportError):
    """Connecting (TCP or TLS handshake) took longer than the connect timeout."""


class ReadTimeout(HyperTimeout):
    """The peer sent nothing that we waited for within the read timeout."""


class WriteTimeout(HyperTimeout):
    """The peer did not accept our bytes (socket or flow-control window) in time."""


class ProtocolError(HyperError):
    """The peer broke the HTTP/2 protocol, or we were asked to.

    ``error_code`` is the HTTP/2 error code (an :class:`int`, e.g. ``1`` for
    PROTOCOL_ERROR) that was or will be sent in GOAWAY.
    """

    def __init__(self, message: str, error_code: int = 1) -> None:
        super().__init__(message)
        self.error_code = error_code


class StreamResetError(HyperError):
    """One stream was reset; the connection and its other streams live on.

    ``retryable`` is true when the server said it did not process the request
    (RST_STREAM with REFUSED_STREAM), so sending it again is safe.
    """

    def __init__(self, message: str, stream_id: int, error_code: int, retryable: bool = False) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.error_code = error_code
        self.retryable = retryable


class ConnectionTerminated(HyperError):
    """The server ended the connection with GOAWAY (or the socket closed).

    ``last_stream_id`` is the highest stream the server may have processed;
    ``retryable`` is true for a stream above it, which the server promised not
    to have processed. ``additional_data`` carries GOAWAY's debug data.
    """

    def __init__(
        self,
        message: str,
        error_code: int | None = None,
        last_stream_id: int | None = None,
        retryable: bool = False,
        additional_data: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.retryable = retryable
        self.additional_data = additional_data


class ConnectionClosed(HyperError):
    """The connection was closed by this side; its streams cannot be used."""


class DecodeError(HyperError):
    """A content-encoded body could not be decoded."""


class DecodedSizeExceeded(DecodeError):
    """Decoding a body produced more bytes than the configured limit.

    This is how a decompression bomb ends: ``limit`` is the limit in bytes.
    """

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class BodyLengthError(HyperError):
    """A body was shorter or longer than its declared ``content-length``."""

    def __init__(self, message: str, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class InvalidStreamID(HyperError, LookupError):
    """No request was sent on that stream id, or its response was already handled."""

    def __init__(self, message: str, stream_id: int | None) -> None:
        super().__init__(message)
        self.stream_id = stream_id


class InvalidURL(HyperError, ValueError):
    """A host, port or URL could not be understood."""


class HostChangedError(InvalidURL):
    """A request URL names another origin than the connection's.

    A connection talks to one origin (scheme, host and port); an absolute URL
    for any other, or ``http://`` on a TLS connection, is refused before
    anything is sent rather than delivered to the wrong server. ``url`` is
    the URL given, ``origin`` the connection's own (``'https://host:port'``).
    """

    def __init__(self, message: str, url: str | bytes, origin: str) -> None:
        super().__init__(message)
        self.url = url
        self.origin = origin


class InvalidHeader(HyperError, ValueError):
    """A header name or value is not allowed (e.g. contains CR, LF or NUL)."""


class MissingCertFile(HyperError, FileNotFoundError):
    """A CA bundle or client certificate file given to :func:`hyper.tls.init_context` does not exist.

    ``filename`` is the missing path and ``errno`` is ``ENOENT``, as for any
    :class:`FileNotFoundError`; ``str()`` names the file.
    """

    def __init__(self, message: str, filename: str) -> None:
        super().__init__(errno.ENOENT, message, filename)


def fresh(error: HyperError) -> HyperError:
    """A new exception equal to a stored one, to raise in one more thread.

    Raising the very same object from many threads would pile every thread's
    frames onto one ``__traceback__`` and mix them up; each waiter gets its
    own copy instead, with the stored original as its ``__cause__``.
    """
    copy = type(error).__new__(type(error))
    copy.__dict__.update(error.__dict__)
    copy.args = error.args
    copy.__cause__ = error
    return copy
