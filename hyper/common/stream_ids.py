"""Checking the stream ids callers pass, and saying what is wrong with one.

Both connection classes hand out ids from a counter that only grows (odd
numbers over HTTP/2, like client-initiated stream ids; 1, 2, 3... over
HTTP/1.1) and forget an id once its response has been taken. So an id the
connection no longer holds, but has handed out, is one whose response was
taken (or abandoned after a failed wait); any other id was never handed out.
That is enough to tell the two mistakes apart without remembering every id.
"""

from __future__ import annotations

from ..exceptions import InvalidStreamID


def checked_stream_id(stream_id: object) -> int:
    """``stream_id`` if it is an ``int``; :class:`TypeError` otherwise (``bool`` included).

    A string such as ``'1'`` or a float would otherwise just miss every
    lookup and read as "no request was sent", hiding the caller's mistake;
    ``True`` would quietly mean stream 1.
    """
    if isinstance(stream_id, bool) or not isinstance(stream_id, int):
        raise TypeError(f"stream_id must be an int, not {type(stream_id).__name__} {stream_id!r}")
    return stream_id


def unknown_stream_id(stream_id: int, next_id: int, *, odd_only: bool) -> InvalidStreamID:
    """The error for an id the connection holds no request or response for.

    :param stream_id: the id the caller asked for.
    :param next_id: the id the connection will hand out next: every id below
        it (and above 0, and odd with ``odd_only``) was handed out.
    :param odd_only: ids are odd (HTTP/2): an even id is a pushed stream's.
    """
    if odd_only and stream_id > 0 and stream_id % 2 == 0:
        return InvalidStreamID(
            f"no request was sent on stream {stream_id}: requests use odd stream ids "
            "(even ones carry server pushes, which come from get_pushes())",
            stream_id,
        )
    if 0 < stream_id < next_id:
        return InvalidStreamID(
            f"the response to stream {stream_id} was already taken "
            "(by an earlier getresponse(), or abandoned when its wait failed)",
            stream_id,
        )
    return InvalidStreamID(f"no request was sent on stream {stream_id}", stream_id)
