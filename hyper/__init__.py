"""hyper: a synchronous, thread-safe HTTP/2 client built on the h2 state machine (HTTP/1.1 too).

::

    import hyper
    with hyper.HTTPConnection('example.org:443') as conn:  # HTTP/2 or HTTP/1.1
        conn.request('GET', '/')
        body = conn.getresponse().read()
"""

import logging

from .connection import HTTPConnection
from .exceptions import (
    BodyLengthError,
    ConnectError,
    ConnectionClosed,
    ConnectionTerminated,
    ConnectTimeout,
    DecodedSizeExceeded,
    DecodeError,
    HostChangedError,
    HyperError,
    HyperTimeout,
    InvalidHeader,
    InvalidStreamID,
    InvalidURL,
    MissingCertFile,
    ProtocolError,
    ProxyError,
    ReadTimeout,
    StreamResetError,
    TLSError,
    TransportError,
    WriteTimeout,
)
from .headers import HTTPHeaderMap
from .http11.connection import HTTP11Connection
from .http11.response import HTTP11Response
from .http20.connection import HTTP20Connection
from .http20.push import HTTP20Push
from .http20.response import HTTP20Response
from .limits import Limits

__version__ = "0.8.0.dev0"

# Silent unless the application configures logging.
logging.getLogger("hyper").addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "HTTPConnection",
    "HTTP20Connection",
    "HTTP20Response",
    "HTTP20Push",
    "HTTP11Connection",
    "HTTP11Response",
    "HTTPHeaderMap",
    "Limits",
    "HyperError",
    "TransportError",
    "ConnectError",
    "TLSError",
    "ProxyError",
    "HyperTimeout",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "ProtocolError",
    "StreamResetError",
    "ConnectionTerminated",
    "ConnectionClosed",
    "DecodeError",
    "DecodedSizeExceeded",
    "BodyLengthError",
    "InvalidURL",
    "HostChangedError",
    "InvalidHeader",
    "InvalidStreamID",
    "MissingCertFile",
]
