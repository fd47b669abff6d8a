"""h2's queued output, looked at without taking it (a fence module).

Part of the fence (:mod:`hyper.http20.h2_internals`): only the fence modules
name h2's private internals. h2 appends every frame it queues (its own ACKs,
RST_STREAM, WINDOW_UPDATE and GOAWAY among them, RFC 9113 sections 6.5.3,
6.7, 6.4, 6.9 and 6.8) to one output buffer, which ``data_to_send`` takes.
The session asks after each response whether anything is queued at all
(usually nothing is): :data:`queued_output` answers by looking at that
buffer, with no copy and no Python-level call, where
:func:`~hyper.http20.h2_internals_steps.take_output` already reads it (the
fast paths are on and the step check passed; the core decides).
``tests/test_core_questions.py`` checks the answer against what
``data_to_send`` then gives, after every step of random sequences.
"""

from __future__ import annotations

from operator import attrgetter

__all__ = ["queued_output"]

#: ``queued_output(conn)``: h2's output buffer of ``conn`` (empty: nothing queued).
queued_output = attrgetter("_data_to_send")
