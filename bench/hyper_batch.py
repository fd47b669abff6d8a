"""The ``hyper-batch`` client: hyper's mux workload with each burst in ``conn.batch()``.

A separate client (not a change to ``hyper``'s) so the ``hyper`` rows stay
comparable with earlier runs; the other workloads are hyper's own.
"""

from __future__ import annotations

from bench.clients import HyperClient


class HyperBatchClient(HyperClient):
    """hyper with ``HTTP20Connection.batch()``: each burst of requests leaves in one write."""

    def mux(self, path: str, count: int, in_flight: int) -> int:
        total = 0
        for start in range(0, count, in_flight):
            with self.conn.batch():
                stream_ids = [self.conn.request("GET", path) for _ in range(min(in_flight, count - start))]
            for stream_id in stream_ids:
                total += len(self.conn.getresponse(stream_id).read())
        return total
