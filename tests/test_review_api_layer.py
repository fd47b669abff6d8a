"""Review of the API-layer speed-up (issue 14): what its fast paths changed for a caller.

Each test shows one difference from the code before the speed-up (6c8904f):

* ``HTTPHeaderMap.__setitem__`` appends to the live field list when the
  name is new, so a loop over the map that sets new names never ends
  (before, ``__setitem__`` always made a new list and the loop ended);
* the ``checked_field`` memo puts ``str`` and ``bytes`` keys with equal
  hashes in one dict, so under ``python -bb`` a ``bytes`` field after the
  same ``str`` field raises ``BytesWarning`` out of ``request()``;
* the same memo is bounded in entries, not in bytes: large header values
  (cookies, tokens, generated fields) stayed alive in a module global;
  credentials (``authorization``, ``cookie``) are never kept at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import hyper.common.request as request_module
from hyper.common.request import checked_field, to_header_map
from hyper.exceptions import InvalidHeader
from hyper.headers import HTTPHeaderMap

_ROOT = Path(__file__).resolve().parent.parent


def test_setting_new_names_while_iterating_a_header_map_ends() -> None:
    headers = HTTPHeaderMap([(b"a", b"1"), (b"b", b"2")])
    seen = []
    for name in headers:
        seen.append(name)
        if len(seen) > 10:  # bounded: without the fix the loop never ends by itself
            break
        headers[b"x-" + name] = b"copy"
    assert seen == [b"a", b"b"]
    assert headers.items() == [(b"a", b"1"), (b"b", b"2"), (b"x-a", b"copy"), (b"x-b", b"copy")]


def test_iteration_still_sees_the_names_present_when_it_started() -> None:
    headers = HTTPHeaderMap([(b"a", b"1"), (b"B", b"2"), (b"a", b"3"), (b"c", b"4")])
    seen = []
    for name in headers:
        seen.append(name)
        headers[name] = b"replaced"  # an existing name: replaced (a new list), as before
    assert seen == [b"a", b"B", b"c"]
    assert headers.items() == [(b"a", b"replaced"), (b"B", b"replaced"), (b"c", b"replaced")]


def test_str_then_bytes_fields_raise_no_bytes_warning_under_bb() -> None:
    # str and bytes of the same ASCII text hash alike: a memo keyed by the
    # bare (name, value) compares them, which -bb turns into an exception.
    program = textwrap.dedent(
        """
        from hyper.common.request import to_header_map
        first = to_header_map({"accept": "text/plain", "x-id": "7"})
        second = to_header_map({b"accept": b"text/plain", b"x-id": b"7"})
        assert first.items() == second.items(), (first, second)
        print("ok")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(_ROOT))
    result = subprocess.run(
        [sys.executable, "-bb", "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_checked_field_memo_does_not_keep_large_values_alive() -> None:
    request_module._CHECKED_FIELDS.clear()
    value_size = 64 * 1024
    count = request_module._MAX_REMEMBERED - 1  # all fit in the memo: none is emptied
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for index in range(count):
            # Each value is made here and dropped once checked.
            name, value = checked_field("x-blob", f"{index:08d}" + "a" * value_size)
            assert len(value) == value_size + 8 and name == b"x-blob"
        del name, value
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        request_module._CHECKED_FIELDS.clear()
    # Before the fix the memo held every key and result: ~2 * 16 MiB.
    assert after - before < 2 * 1024 * 1024, f"{(after - before) / 2**20:.1f} MiB still held"


def test_small_fields_are_still_remembered() -> None:
    request_module._CHECKED_FIELDS.clear()
    first = to_header_map({"user-agent": "review/1"}).items()
    assert request_module._CHECKED_FIELDS  # the common fields keep their memo
    assert to_header_map({"user-agent": "review/1"}).items() == first


def test_names_the_split_moved_are_still_importable_where_they_were() -> None:
    # 21a745e moved them to hyper/http11/route.py; code importing them from
    # the connection module (the only place they lived) kept working before.
    from hyper.http11.connection import HTTP11_ALPN

    assert HTTP11_ALPN == ("http/1.1",)


CREDENTIALS = [
    ("Authorization", "Bearer s3cret"),
    (b"proxy-authorization", b"Basic czNjcmV0"),
    ("cookie", "id=s3cret"),
]


@pytest.mark.parametrize(("name", "secret"), CREDENTIALS)
def test_credentials_are_checked_but_never_kept_in_the_memo(name: Any, secret: Any) -> None:
    request_module._CHECKED_FIELDS.clear()
    fields = to_header_map({name: secret, "user-agent": "review/1"}).items()
    assert [field.lower() for field, _ in fields] == [
        name.lower() if isinstance(name, bytes) else name.lower().encode(),
        b"user-agent",
    ]
    assert [key for key in request_module._CHECKED_FIELDS if secret in key] == []
    assert request_module._CHECKED_FIELDS  # the other field was remembered
    # Still refused when bad: the check itself runs every time.
    with pytest.raises(InvalidHeader):
        to_header_map({name: secret + (b"\n" if isinstance(secret, bytes) else "\n") + secret})
