"""Records of a plain response's frames: what the core needs of them, without h2's event objects.

The frame splitter (:class:`~hyper.http20.h2_adapters.FrameSplitter`) takes
a response's HEADERS and its last DATA frame past h2's generic path, with
h2's own bookkeeping done by the fence
(:mod:`hyper.http20.h2_internals_receive`: stream state machine steps,
flow-control windows, content-length, RFC 9113 sections 5.1, 6.9 and
8.1.1). In the two commonest cases that bookkeeping ends in h2 event
objects (``ResponseReceived``; ``DataReceived`` with its ``StreamEnded``)
which the core only reads a stream id, a field list or a payload from and
drops: about 0.7 µs of objects per response. The fence then hands on a
plain tuple instead, tagged with one of the kinds below, and the core
(:meth:`~hyper.http20.core_receive.CoreReceiver.receive`) applies it with
the same steps it takes for the events. Every other case (1xx, trailers,
HEADERS with END_STREAM, DATA that does not end the stream or on a stream
in another state, the public-API mode) keeps h2's events. Nothing here
names h2's internals.
"""

from __future__ import annotations

from typing import Any

import h2.events

#: ``(RESPONSE_FIELDS, stream_id, fields)``: a final response's header
#: block, decoded and accepted by h2's steps, without END_STREAM; what a
#: ``ResponseReceived`` with those ``headers`` would tell.
RESPONSE_FIELDS = 0
#: ``(LAST_DATA, stream_id, payload, size)``: an unpadded, non-empty DATA
#: frame with END_STREAM that h2's steps accepted, closing the stream (both
#: windows debited by ``size``, content-length matched); what a
#: ``DataReceived`` and the ``StreamEnded`` it carries would tell.
LAST_DATA = 1


def as_events(item: Any) -> list[h2.events.Event]:
    """The h2 events a record stands for (an event: itself), as h2's own path makes them.

    For tests and debugging: the core applies records without making these.
    """
    if type(item) is not tuple:
        return [item]
    if item[0] == RESPONSE_FIELDS:
        _, stream_id, fields = item
        return [h2.events.ResponseReceived(stream_id=stream_id, headers=fields)]
    _, stream_id, payload, size = item
    ended = h2.events.StreamEnded(stream_id=stream_id)
    data = h2.events.DataReceived(
        stream_id=stream_id, data=payload, flow_controlled_length=size, stream_ended=ended
    )
    return [data, ended]
