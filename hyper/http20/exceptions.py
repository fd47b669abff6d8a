"""hyper 0.7's ``hyper.http20.exceptions``: its names, bound to the exceptions hyper raises now.

Aliases only; the classes live in :mod:`hyper.exceptions`. ``HTTP20Error``
(0.7's base of every HTTP/2 error) is :class:`~hyper.HyperError`, the base of
everything hyper raises, so an ``except HTTP20Error`` still catches them all.
"""

from ..exceptions import ConnectionTerminated as ConnectionError  # noqa: A004 - 0.7's name
from ..exceptions import HyperError as HTTP20Error
from ..exceptions import InvalidHeader as HPACKEncodingError
from ..exceptions import ProtocolError, StreamResetError
from ..exceptions import ProtocolError as HPACKDecodingError

__all__ = [
    "ConnectionError",
    "HPACKDecodingError",
    "HPACKEncodingError",
    "HTTP20Error",
    "ProtocolError",
    "StreamResetError",
]
