"""The frame splitter's buffer for frames cut across reads: reused, yet safe with a view kept.

A 100 MiB download cuts about 190 frames across two socket reads. A new
buffer for each of them made malloc return heap to the system and fault it
back in, which cost the download about 4 % more client CPU (issue 14's
figures); so the buffer is reused once a frame in it is processed, unless a
view of it lives on (an h2 reference cycle can keep one until the garbage
collector runs), when a fresh buffer takes its place.
"""

from __future__ import annotations

from typing import Any

import pytest

from hyper.http20 import h2_adapters
from tests import hostile_frames as hf
from tests.test_fuzz_core import connected


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
def test_the_buffer_of_a_split_frame_is_reused_for_the_next(fast: bool) -> None:
    core = connected()
    core._frames.fast_path = fast
    core.receive(hf.settings() + hf.response_headers(1))
    first, second = hf.data(1, b"a" * 100), hf.data(1, b"b" * 100, end_stream=True)
    core.receive(first[:40])
    buffer = core._frames._partial
    core.receive(first[40:] + second[:30])  # completes the first, starts the second
    assert core._frames._partial is buffer  # nothing viewed it: the same buffer
    assert bytes(buffer) == second[:30]
    core.receive(second[30:])
    assert core.fatal is None
    assert core.take_data(1, None) == b"a" * 100 + b"b" * 100


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "h2"])
def test_a_viewed_buffer_is_replaced_and_the_view_keeps_its_bytes(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = connected()
    core._frames.fast_path = fast
    core.receive(hf.settings() + hf.response_headers(1))
    kept: list[memoryview] = []
    original = h2_adapters.FrameSplitter._frame

    def keep_a_view(self: Any, view: memoryview, offset: int, length: int, events: list[Any]) -> None:
        kept.append(view[offset : offset + 9 + length])
        original(self, view, offset, length, events)

    monkeypatch.setattr(h2_adapters.FrameSplitter, "_frame", keep_a_view)
    first, second = hf.data(1, b"a" * 100), hf.data(1, b"b" * 100, end_stream=True)
    core.receive(first[:40])
    buffer = core._frames._partial
    core.receive(first[40:] + second[:30])
    assert core._frames._partial is not buffer  # viewed: a fresh buffer took its place
    assert bytes(kept[0]) == first  # and the view still sees the whole first frame
    core.receive(second[30:])
    assert core.fatal is None
    assert core.take_data(1, None) == b"a" * 100 + b"b" * 100
