"""HTTP/1.1: the connection and its responses, with h11 doing the wire format."""

from .connection import HTTP11Connection
from .response import HTTP11Response

__all__ = ["HTTP11Connection", "HTTP11Response"]
