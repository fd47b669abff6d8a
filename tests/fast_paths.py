"""A fixture for tests that compare hyper's fast paths with h2's own paths.

Those comparisons need the fast paths on even in the CI run that forces them
off with ``HYPER_FAST_PATHS=0`` (which checks the public-API mode with the
rest of the suite). When the fence's self-test fails, the fast paths are
unusable and the comparisons are skipped; ``tests/test_fence.py`` then fails
loudly instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hyper.http20 import h2_internals


def force_fast_paths_on(patch: pytest.MonkeyPatch) -> None:
    """Turn the fast paths on through ``patch`` (undone with it), or skip if the fence's self-test fails."""
    problem = h2_internals.self_test()
    if problem is not None:
        pytest.skip(f"the fence keeps the fast paths off: {problem}")
    patch.setattr(h2_internals, "_enabled", True)
    patch.setattr(h2_internals, "_problem", None)


@pytest.fixture(scope="module")
def fast_paths_on() -> Iterator[None]:
    """The fast paths on for connections built in this module, whatever ``HYPER_FAST_PATHS`` says."""
    with pytest.MonkeyPatch.context() as patch:
        force_fast_paths_on(patch)
        yield
