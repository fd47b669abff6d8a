"""How big each uploaded DATA frame is: the peer's maximum, its frames laid out back to back.

A TLS record carries at most 16,384 bytes of plaintext (RFC 8446 section
5.1), and every ``send()`` on a TLS socket starts a new record. hyper frames
a run of upload DATA as one buffer, headers and payloads back to back
(:mod:`hyper.http20.data_frames`), and sends it in one piece: TLS cuts it into
full records, wherever the frame boundaries fall. So the frames need not be
sized to records: they take the largest payload the peer allows
(SETTINGS_MAX_FRAME_SIZE, RFC 9113 section 6.5.2; 16,384 for nghttpd, h2o,
Apache and most servers), the fewest frames for the body, and payloads that
are whole 16 KiB blocks, which h2o 2.2 handles with about a fifth less CPU
per MB than the 16,375 bytes a frame filling exactly one record carries.

Frames that are sent as two pieces (header, then the payload by reference:
:data:`JOINED_BELOW` and up, e.g. nginx's 16 MiB frames) cost one small
record per frame whatever their size, so they keep the core's own framing.
"""

from __future__ import annotations

#: The most plaintext one TLS record carries (RFC 8446 section 5.1; TLS 1.2 the same).
TLS_RECORD_PLAINTEXT = 16384

#: Every HTTP/2 frame starts with a 9-byte header (RFC 9113 section 4.1).
FRAME_HEADER = 9

#: Frames below this size are framed as runs, back to back in one buffer
#: (hyper.http20.h2_connections sends bigger ones as header + payload).
JOINED_BELOW = 64 * 1024


def run_frame_payload(max_frame_size: int) -> int | None:
    """The DATA payload per frame of a run, for a peer allowing frames of ``max_frame_size`` bytes.

    Returns ``max_frame_size`` (RFC 9113 section 4.2: a frame's payload may
    not exceed the peer's SETTINGS_MAX_FRAME_SIZE) when such frames are
    framed as runs, or ``None`` when frames that big are sent as two pieces
    anyway (then the core's own framing, at the same limit, is best).
    """
    if max_frame_size >= JOINED_BELOW:
        return None
    return max_frame_size
