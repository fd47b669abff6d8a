"""Limits: every bound hyper puts on what a server can make it do, in one place.

Pass ``limits=Limits(...)`` to any connection class to change them; the
defaults suit the open internet. Each bound ends in a clear ``hyper`` exception, never
in unbounded memory or a hang. ``docs/security.rst`` explains each and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common.decoding import DEFAULT_MAX_DECODED_SIZE, MAX_CODINGS


@dataclass(frozen=True)
class Limits:
    """Bounds on what one server may make a connection do.

    :param max_header_list_size: the largest decoded header block we accept
        (advertised as SETTINGS_MAX_HEADER_LIST_SIZE); beyond it, an HPACK
        bomb, the connection ends with ENHANCE_YOUR_CALM.
    :param max_decoded_size: the largest decoded body, in bytes, of one
        content-encoded response (``None``: no cap); a decompression bomb ends
        in :class:`~hyper.DecodedSizeExceeded`. Each ``read(amt)`` also
        decodes at most ``amt`` bytes, whatever this is.
    :param max_codings: the most stacked ``content-encoding`` codings accepted.
    :param max_control_frames_per_second: PING, SETTINGS and empty DATA
        frames accepted per second without response progress; more is a
        flood (GOAWAY ENHANCE_YOUR_CALM).
    :param max_informational_responses: 1xx responses accepted on one stream.
    :param max_buffered: received-but-unread body bytes, over all streams,
        beyond which connection window is only given back as the application
        reads (``None``: the connection window). Over HTTP/1.1: the most
        bytes of unread earlier responses buffered so that a new request can
        go out (``None``: 16 MiB).
    :param max_pushed_streams: with push enabled, pushed streams held at once
        (promised and not yet read to the end, cancelled or closed); more are
        refused with RST_STREAM REFUSED_STREAM. Also advertised as
        SETTINGS_MAX_CONCURRENT_STREAMS.

    The same limits apply to HTTP/1.1 connections: ``max_header_list_size``
    bounds a response head (its bytes, and its fields counted as HTTP/2
    counts them), and the decoding and 1xx limits work as for HTTP/2.
    """

    max_header_list_size: int = 64 * 1024
    max_decoded_size: int | None = DEFAULT_MAX_DECODED_SIZE
    max_codings: int = MAX_CODINGS
    max_control_frames_per_second: int = 1000
    max_informational_responses: int = 32
    max_buffered: int | None = None
    max_pushed_streams: int = 100

    def __post_init__(self) -> None:
        for name in (
            "max_header_list_size",
            "max_codings",
            "max_control_frames_per_second",
            "max_informational_responses",
            "max_pushed_streams",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, not {value!r}")
        for name in ("max_decoded_size", "max_buffered"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"Limits.{name} must be a non-negative int or None, not {value!r}")
