"""How big each uploaded DATA frame is, so that frames fill whole TLS records.

A TLS record carries at most 16,384 bytes of plaintext (RFC 8446 section
5.1), and every ``send()`` on a TLS socket starts a new record. hyper sends a
DATA frame of less than :data:`JOINED_BELOW` bytes as one piece (its 9-byte
header joined to the payload, RFC 9113 section 4.1), one ``send()`` each.
With the smallest SETTINGS_MAX_FRAME_SIZE a server may announce (16,384,
RFC 9113 section 6.5.2; nghttpd, h2o, Apache and most servers keep it) a full
frame is 16,393 bytes: one full record plus one record of 9 bytes, each its
own write system call, encryption and, on the server, decryption and read.
Frames of 16,375 payload bytes fill exactly one record instead: half the
records and writes for the same body, no extra copy.

Frames that are sent as two pieces (header, then the payload by reference:
:data:`JOINED_BELOW` and up, e.g. nginx's 16 MiB frames) cost one small
record per frame whatever their size, so they keep the server's maximum.
"""

from __future__ import annotations

#: The most plaintext one TLS record carries (RFC 8446 section 5.1; TLS 1.2 the same).
TLS_RECORD_PLAINTEXT = 16384

#: Every HTTP/2 frame starts with a 9-byte header (RFC 9113 section 4.1).
FRAME_HEADER = 9

#: Frames below this size leave as one piece, header and payload joined
#: (hyper.http20.h2_connections sends bigger ones as header + payload).
JOINED_BELOW = 64 * 1024


def record_filling_payload(max_frame_size: int) -> int | None:
    """The DATA payload per frame for a peer allowing frames of ``max_frame_size`` bytes.

    Returns the largest payload whose frame (header included) is a whole
    number of full TLS records and still fits ``max_frame_size``, or ``None``
    when frames that big are sent as two pieces anyway (then the largest
    frame the peer allows is best). RFC 9113 section 4.2: a frame's payload
    may not exceed the peer's SETTINGS_MAX_FRAME_SIZE, which is never below
    16,384, so the answer is never below 16,375.
    """
    if max_frame_size >= JOINED_BELOW:
        return None
    records = (max_frame_size + FRAME_HEADER) // TLS_RECORD_PLAINTEXT
    if records < 1:  # below the RFC's minimum: nothing to align, obey the peer
        return max_frame_size
    return records * TLS_RECORD_PLAINTEXT - FRAME_HEADER
