"""Fixtures for tests that prove a connection's memory is freed.

``made`` records a weak reference to every h2 connection a core creates;
``no_cyclic_gc`` turns the cyclic collector off for the test, so whatever
is still freed was freed by reference counting alone.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import h2.connection
import pytest

from hyper.http20 import core as core_module

Refs = list[weakref.ref[h2.connection.H2Connection]]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Refs:
    """Weak references to every h2 connection a core makes during the test."""
    refs: Refs = []
    original = core_module.new_client_connection

    def recording() -> h2.connection.H2Connection:
        conn = original()
        refs.append(weakref.ref(conn))
        return conn

    monkeypatch.setattr(core_module, "new_client_connection", recording)
    return refs


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector is off while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
