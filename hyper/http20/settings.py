"""The server's HTTP/2 SETTINGS as a read-only snapshot, and hyper 0.7's ``_conn`` shim.

RFC 9113 section 6.5.2 defines the settings; a server sends them in its first
frame and may change them at any time, so every read is a fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from h2.settings import SettingCodes

# h2's value for a limit the server never set: MAX_CONCURRENT_STREAMS is
# unlimited by default (RFC 9113 section 6.5.2), which h2 reports as 2**32 + 1.
_H2_UNLIMITED = 2**32 + 1


@dataclass(frozen=True)
class RemoteSettings:
    """The SETTINGS the server sent, with h2's defaults for those it left out.

    Attribute names follow h2's ``Settings`` object (which hyper 0.7 exposed
    through ``conn._conn``); ``settings[SettingCodes.X]`` and ``settings[0x3]``
    work too.
    """

    #: SETTINGS_HEADER_TABLE_SIZE: the HPACK table size the server decodes with.
    header_table_size: int
    #: SETTINGS_ENABLE_PUSH as the server sent it (servers send 0 or nothing).
    enable_push: int
    #: SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window.
    initial_window_size: int
    #: SETTINGS_MAX_FRAME_SIZE: the largest frame payload the server accepts.
    max_frame_size: int
    #: SETTINGS_MAX_CONCURRENT_STREAMS: how many streams we may have open at
    #: once; ``2**32 + 1`` (h2's "unlimited") when the server set no limit.
    max_concurrent_streams: int
    #: SETTINGS_MAX_HEADER_LIST_SIZE, or ``None`` when the server set none.
    max_header_list_size: int | None
    #: Every setting by numeric code, including ones h2 has no name for.
    values: Mapping[int, int] = field(repr=False)

    @classmethod
    def from_codes(cls, values: Mapping[int, int]) -> RemoteSettings:
        """Build the snapshot from ``{code: value}`` as h2 holds it."""
        return cls(
            header_table_size=values.get(SettingCodes.HEADER_TABLE_SIZE, 4096),
            enable_push=values.get(SettingCodes.ENABLE_PUSH, 1),
            initial_window_size=values.get(SettingCodes.INITIAL_WINDOW_SIZE, 65535),
            max_frame_size=values.get(SettingCodes.MAX_FRAME_SIZE, 16384),
            max_concurrent_streams=values.get(SettingCodes.MAX_CONCURRENT_STREAMS, _H2_UNLIMITED),
            max_header_list_size=values.get(SettingCodes.MAX_HEADER_LIST_SIZE),
            values={int(code): value for code, value in values.items()},
        )

    def __getitem__(self, code: int) -> int:
        """A setting by code (``KeyError`` when the server sent none and h2 has no default)."""
        return self.values[int(code)]


@dataclass(frozen=True)
class LegacyConnectionView:
    """What ``with conn._conn as h2conn:`` yields: the part of h2's connection 0.7 code reads."""

    #: The server's settings, read when the ``with`` block was entered.
    remote_settings: RemoteSettings


class LegacySettingsGuard:
    """hyper 0.7's ``conn._conn``: a context manager around the connection state.

    In 0.7, ``_conn`` held the connection's lock while the block ran and
    yielded h2's live connection object. Here entering the block connects if
    needed and takes a snapshot of the server's settings under the
    connection's lock; the block then reads that immutable snapshot, so no
    lock is held while it runs (a block that sends a request cannot deadlock).
    """

    def __init__(self, read_settings: Callable[[], RemoteSettings]) -> None:
        self._read_settings = read_settings

    def __enter__(self) -> LegacyConnectionView:
        return LegacyConnectionView(self._read_settings())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
