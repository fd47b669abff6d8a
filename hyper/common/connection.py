"""hyper 0.7's ``hyper.common.connection``: ``from hyper.common.connection import HTTPConnection``.

An alias only; the class lives in :mod:`hyper.connection`. 0.7's module also
had the two protocol classes in its namespace, and code imported them from it.
"""

from ..connection import HTTPConnection
from ..http11.connection import HTTP11Connection
from ..http20.connection import HTTP20Connection

__all__ = ["HTTP11Connection", "HTTP20Connection", "HTTPConnection"]
