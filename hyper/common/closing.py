"""``with`` support for objects that have a ``close()``: leaving the block closes them.

The three connection classes and both responses share it, so
``__enter__``/``__exit__`` are written once and behave the same for each.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

_Closing = TypeVar("_Closing", bound="ClosesOnExit")


class ClosesOnExit:
    """A context manager whose ``__exit__`` calls ``self.close()``, whatever ended the block.

    ``__enter__`` returns the object itself. An exception leaving the block
    is never swallowed.
    """

    if TYPE_CHECKING:
        # The class that mixes this in supplies close() (possibly with
        # optional parameters); called here without arguments.
        def close(self) -> None: ...

    def __enter__(self: _Closing) -> _Closing:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
