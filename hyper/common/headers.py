"""hyper 0.7's import path for the header map: ``from hyper.common.headers import HTTPHeaderMap``.

An alias only; the class lives in :mod:`hyper.headers`.
"""

from ..headers import HTTPHeaderMap

__all__ = ["HTTPHeaderMap"]
