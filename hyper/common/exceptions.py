"""hyper 0.7's ``hyper.common.exceptions``: its names, bound to the exceptions hyper raises now.

Aliases only (``except`` clauses written for 0.7 catch what hyper raises in
the same situations); the classes live in :mod:`hyper.exceptions`. 0.7's
``TLSUpgrade`` and ``HTTPUpgrade`` were internal control flow of its
``HTTPConnection`` and are gone: nothing raises them.
"""

from ..exceptions import (
    ConnectionTerminated as ConnectionResetError,  # noqa: A004 - 0.7's name, kept on purpose
)
from ..exceptions import MissingCertFile, ProxyError, TransportError
from ..exceptions import ProtocolError as ChunkedDecodeError
from ..exceptions import ProtocolError as InvalidResponseError
from ..exceptions import ProtocolError as LineTooLongError

#: 0.7 raised this when a socket operation failed.
SocketError = TransportError

__all__ = [
    "ChunkedDecodeError",
    "ConnectionResetError",
    "InvalidResponseError",
    "LineTooLongError",
    "MissingCertFile",
    "ProxyError",
    "SocketError",
]
