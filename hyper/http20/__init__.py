"""HTTP/2: the protocol core, the connection, responses and flow-control windows."""

from .connection import HTTP20Connection
from .response import HTTP20Response

__all__ = ["HTTP20Connection", "HTTP20Response"]
