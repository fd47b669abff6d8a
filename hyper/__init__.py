"""hyper: a synchronous, thread-safe HTTP/2 client built on the h2 state machine.

::

    import hyper
    with hyper.HTTP20Connection('example.org:443') as conn:
        conn.request('GET', '/')
        body = conn.getresponse().read()
"""

import logging

from .exceptions import (
    BodyLengthError,
    ConnectError,
    ConnectionClosed,
    ConnectionTerminated,
    ConnectTimeout,
    DecodedSizeExceeded,
    DecodeError,
    HyperError,
    HyperTimeout,
    InvalidHeader,
    InvalidStreamID,
    InvalidURL,
    ProtocolError,
    ProxyError,
    ReadTimeout,
    StreamResetError,
    TLSError,
    TransportError,
    WriteTimeout,
)
from .headers import HTTPHeaderMap
from .http20.connection import HTTP20Connection
from .http20.push import HTTP20Push
from .http20.response import HTTP20Response
from .limits import Limits

__version__ = "0.8.0.dev0"

# Silent unless the application configures logging.
logging.getLogger("hyper").addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "HTTP20Connection",
    "HTTP20Response",
    "HTTP20Push",
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
    "InvalidHeader",
    "InvalidStreamID",
]
