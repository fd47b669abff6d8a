"""Unit tests for hyper.headers.HTTPHeaderMap and to_bytes."""

from __future__ import annotations

import pytest

from hyper.headers import HTTPHeaderMap, decode_value, to_bytes

COOKIE_1 = "id=a3fWa; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure"
COOKIE_2 = "lang=en-US, fr; Path=/"


def sample() -> HTTPHeaderMap:
    return HTTPHeaderMap(
        [
            (b"content-type", b"text/html"),
            (b"set-cookie", COOKIE_1),
            (b"date", b"Tue, 15 Nov 1994 08:12:31 GMT"),
            (b"set-cookie", COOKIE_2),
        ]
    )


# --- to_bytes ----------------------------------------------------------------


def test_to_bytes() -> None:
    raw = b"abc"
    assert to_bytes(raw) is raw
    assert to_bytes("abc") == b"abc"
    assert to_bytes("caf\u00e9") == b"caf\xc3\xa9"
    assert to_bytes(0) == b"0"
    assert to_bytes(1234) == b"1234"
    assert to_bytes(-5) == b"-5"


@pytest.mark.parametrize("value", [True, False, None, 1.5, ["a"], bytearray(b"a"), object()])
def test_to_bytes_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        to_bytes(value)  # type: ignore[arg-type]


# --- construction and storage ------------------------------------------------


def test_empty_map() -> None:
    headers = HTTPHeaderMap()
    assert len(headers) == 0
    assert not headers
    assert list(headers) == []
    assert headers.items() == []
    assert list(headers.iter_raw()) == []
    assert "a" not in headers
    assert headers.get("a") is None
    assert headers.get_first("a") is None
    with pytest.raises(KeyError):
        headers["a"]
    assert HTTPHeaderMap(None) == headers
    assert HTTPHeaderMap([]) == headers


def test_values_are_stored_as_bytes() -> None:
    headers = HTTPHeaderMap([("name", "caf\u00e9"), (b"n2", b"\xff\x00raw"), ("content-length", 42)])
    assert headers.items() == [
        (b"name", b"caf\xc3\xa9"),
        (b"n2", b"\xff\x00raw"),
        (b"content-length", b"42"),
    ]
    assert headers["content-length"] == [b"42"]


def test_constructor_accepts_a_generator() -> None:
    headers = HTTPHeaderMap((f"x-{i}", i) for i in range(3))
    assert headers.items() == [(b"x-0", b"0"), (b"x-1", b"1"), (b"x-2", b"2")]


@pytest.mark.parametrize("field", [("a", None), ("a", 1.5), (None, "b"), ("a", True)])
def test_constructor_refuses_bad_types(field: tuple[object, object]) -> None:
    with pytest.raises(TypeError):
        HTTPHeaderMap([field])  # type: ignore[list-item]


def test_add_refuses_bad_types_and_keeps_map_unchanged() -> None:
    headers = sample()
    before = headers.items()
    with pytest.raises(TypeError):
        headers.add("x", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        headers.add(None, "x")  # type: ignore[arg-type]
    assert headers.items() == before


def test_names_keep_their_case_when_stored() -> None:
    headers = HTTPHeaderMap([("Content-Type", "text/plain"), (b"X-Mixed", b"1")])
    assert headers.items() == [(b"Content-Type", b"text/plain"), (b"X-Mixed", b"1")]
    assert list(headers) == [b"Content-Type", b"X-Mixed"]


# --- case-insensitive lookup -------------------------------------------------


@pytest.mark.parametrize(
    "key", ["content-type", "Content-Type", "CONTENT-TYPE", b"content-type", b"Content-Type", b"CONTENT-TYPE"]
)
def test_lookup_is_case_insensitive_for_str_and_bytes(key: str | bytes) -> None:
    headers = HTTPHeaderMap([("Content-Type", "text/html")])
    assert headers[key] == [b"text/html"]
    assert key in headers
    assert headers.get(key) == [b"text/html"]
    assert headers.get_first(key) == b"text/html"


def test_stored_name_case_does_not_matter() -> None:
    headers = HTTPHeaderMap([(b"X-FOO", b"1"), (b"x-foo", b"2"), ("X-Foo", "3")])
    assert headers["x-foo"] == [b"1", b"2", b"3"]
    assert len(headers) == 1
    assert list(headers) == [b"X-FOO"]


def test_missing_key_raises_key_error_with_the_key() -> None:
    headers = sample()
    with pytest.raises(KeyError) as info:
        headers["X-Missing"]
    assert info.value.args == ("X-Missing",)
    with pytest.raises(KeyError):
        headers[b"x-missing"]


@pytest.mark.parametrize("key", [None, 1, 1.5, ("set-cookie",), [b"set-cookie"]])
def test_contains_with_non_string_keys_is_false(key: object) -> None:
    assert key not in sample()


def test_contains_does_not_match_prefixes_or_values() -> None:
    headers = sample()
    assert "content" not in headers
    assert "content-type-x" not in headers
    assert "text/html" not in headers
    assert "" not in headers


# --- multiple values, never split on commas ----------------------------------


def test_multiple_values_in_order() -> None:
    headers = sample()
    assert headers["set-cookie"] == [COOKIE_1.encode(), COOKIE_2.encode()]
    assert headers.get_first("set-cookie") == COOKIE_1.encode()
    assert headers.get("SET-COOKIE") == [COOKIE_1.encode(), COOKIE_2.encode()]


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 15 Nov 1994 08:12:31 GMT",
        "a, b, c",
        ",",
        ",leading",
        "trailing,",
        "gzip, br",
        'W/"x,y", "z"',
    ],
)
def test_values_are_never_split_on_commas(value: str) -> None:
    headers = HTTPHeaderMap([("x-list", value)])
    assert headers["x-list"] == [value.encode()]
    assert headers.items() == [(b"x-list", value.encode())]
    headers.add("x-list", value)
    assert headers["x-list"] == [value.encode(), value.encode()]
    headers["x-other"] = value
    assert headers["x-other"] == [value.encode()]


def test_add_appends_and_keeps_earlier_values() -> None:
    headers = HTTPHeaderMap()
    headers.add("Accept", "text/html")
    headers.add(b"accept", b"application/json")
    headers.add("x-n", 7)
    assert headers["accept"] == [b"text/html", b"application/json"]
    assert headers.items() == [(b"Accept", b"text/html"), (b"accept", b"application/json"), (b"x-n", b"7")]


def test_get_first_default() -> None:
    headers = sample()
    assert headers.get_first("x-missing") is None
    assert headers.get_first("x-missing", b"fallback") == b"fallback"
    assert headers.get_first("date", b"fallback") == b"Tue, 15 Nov 1994 08:12:31 GMT"


def test_get_default() -> None:
    headers = sample()
    marker = object()
    assert headers.get("x-missing", marker) is marker
    assert headers.get("x-missing", []) == []
    assert headers.get("content-type", marker) == [b"text/html"]


def test_get_returns_a_new_list_each_time() -> None:
    headers = sample()
    values = headers["set-cookie"]
    values.append(b"injected")
    assert headers["set-cookie"] == [COOKIE_1.encode(), COOKIE_2.encode()]


# --- order, iteration, length, items ----------------------------------------


def test_iteration_gives_each_name_once_in_first_seen_order() -> None:
    headers = sample()
    assert list(headers) == [b"content-type", b"set-cookie", b"date"]
    assert list(headers.keys()) == [b"content-type", b"set-cookie", b"date"]
    assert all(isinstance(name, bytes) for name in headers)


def test_len_counts_distinct_names() -> None:
    headers = sample()
    assert len(headers) == 3
    headers.add("SET-COOKIE", "c=3")
    assert len(headers) == 3
    headers.add("x-new", "1")
    assert len(headers) == 4


def test_items_gives_every_field_in_order() -> None:
    headers = sample()
    assert headers.items() == [
        (b"content-type", b"text/html"),
        (b"set-cookie", COOKIE_1.encode()),
        (b"date", b"Tue, 15 Nov 1994 08:12:31 GMT"),
        (b"set-cookie", COOKIE_2.encode()),
    ]
    assert list(headers.iter_raw()) == headers.items()


def test_items_is_a_snapshot() -> None:
    headers = sample()
    items = headers.items()
    items.clear()
    assert len(headers.items()) == 4


def test_iter_raw_is_a_snapshot() -> None:
    headers = sample()
    seen = []
    for name, value in headers.iter_raw():
        headers.add("x-added", "1")
        seen.append((name, value))
    assert seen == sample().items()
    assert headers["x-added"] == [b"1"] * 4


def test_values_view_gives_lists() -> None:
    assert list(sample().values()) == [
        [b"text/html"],
        [COOKIE_1.encode(), COOKIE_2.encode()],
        [b"Tue, 15 Nov 1994 08:12:31 GMT"],
    ]


def test_keys_view_membership_is_case_insensitive() -> None:
    keys = sample().keys()
    assert "Set-Cookie" in keys
    assert b"DATE" in keys
    assert "x-missing" not in keys


def test_deleting_while_iterating_names() -> None:
    headers = sample()
    for name in headers:
        del headers[name]
    assert len(headers) == 0
    assert headers.items() == []


# --- set ---------------------------------------------------------------------


def test_setitem_replaces_every_value_case_insensitively() -> None:
    headers = sample()
    headers["Set-Cookie"] = "only=1"
    assert headers["set-cookie"] == [b"only=1"]
    assert headers.items() == [
        (b"content-type", b"text/html"),
        (b"date", b"Tue, 15 Nov 1994 08:12:31 GMT"),
        (b"Set-Cookie", b"only=1"),
    ]


def test_setitem_new_name() -> None:
    headers = sample()
    headers[b"x-new"] = b"v"
    assert headers["X-NEW"] == [b"v"]
    assert headers.items()[-1] == (b"x-new", b"v")
    assert len(headers) == 4


def test_setitem_int_and_str_values() -> None:
    headers = HTTPHeaderMap()
    headers["content-length"] = 10
    headers["x-text"] = "caf\u00e9"
    assert headers.items() == [(b"content-length", b"10"), (b"x-text", b"caf\xc3\xa9")]


def test_setitem_list_gives_several_values() -> None:
    headers = sample()
    headers["set-cookie"] = [b"a=1", b"b=2, c=3"]
    assert headers["set-cookie"] == [b"a=1", b"b=2, c=3"]
    assert len(headers.items()) == 4


def test_setitem_empty_list_removes_the_name() -> None:
    headers = sample()
    headers["set-cookie"] = []
    assert "set-cookie" not in headers
    assert len(headers) == 2
    headers["x-never-there"] = []
    assert "x-never-there" not in headers
    assert len(headers) == 2


def test_setitem_bad_value_type() -> None:
    headers = HTTPHeaderMap()
    with pytest.raises(TypeError):
        headers["x"] = None  # type: ignore[assignment]


# --- delete ------------------------------------------------------------------


def test_delitem_removes_every_value_case_insensitively() -> None:
    headers = sample()
    del headers["SET-COOKIE"]
    assert "set-cookie" not in headers
    assert headers.items() == [
        (b"content-type", b"text/html"),
        (b"date", b"Tue, 15 Nov 1994 08:12:31 GMT"),
    ]
    del headers[b"Date"]
    assert headers.items() == [(b"content-type", b"text/html")]


def test_delitem_missing_raises_key_error_and_changes_nothing() -> None:
    headers = sample()
    with pytest.raises(KeyError) as info:
        del headers["x-missing"]
    assert info.value.args == ("x-missing",)
    assert headers == sample()


def test_pop_and_clear_from_mutable_mapping() -> None:
    headers = sample()
    assert headers.pop("Set-Cookie") == [COOKIE_1.encode(), COOKIE_2.encode()]
    assert "set-cookie" not in headers
    assert headers.pop("set-cookie", None) is None
    with pytest.raises(KeyError):
        headers.pop("set-cookie")
    headers.clear()
    assert len(headers) == 0
    assert headers.items() == []


def test_update_with_a_mapping_of_lists() -> None:
    headers = sample()
    headers.update({"set-cookie": [b"x=1", b"y=2"], "x-new": [b"1"]})
    assert headers["set-cookie"] == [b"x=1", b"y=2"]
    assert headers["x-new"] == [b"1"]
    assert headers["content-type"] == [b"text/html"]


def test_update_with_another_header_map_copies_every_value() -> None:
    headers = HTTPHeaderMap([("a", "0")])
    headers.update(sample())
    assert headers["a"] == [b"0"]
    assert headers["set-cookie"] == [COOKIE_1.encode(), COOKIE_2.encode()]


# --- copy, equality, hashing, repr -------------------------------------------


def test_copy_is_equal_and_independent() -> None:
    original = sample()
    duplicate = original.copy()
    assert type(duplicate) is HTTPHeaderMap
    assert duplicate == original
    assert duplicate is not original
    duplicate.add("x-copy", "1")
    del duplicate["date"]
    assert original == sample()
    original["content-type"] = "text/plain"
    assert duplicate["content-type"] == [b"text/html"]


def test_equality() -> None:
    assert sample() == sample()
    assert not (sample() != sample())
    lower = HTTPHeaderMap([("a", "1"), ("a", "2"), ("b", "3")])
    mixed = HTTPHeaderMap([(b"A", b"1"), ("a", 2), ("B", "3")])
    assert lower == mixed


def test_inequality() -> None:
    base = HTTPHeaderMap([("a", "1"), ("a", "2")])
    assert base != HTTPHeaderMap([("a", "2"), ("a", "1")])  # value order matters
    assert base != HTTPHeaderMap([("a", "1")])
    assert base != HTTPHeaderMap([("a", "1"), ("a", "2"), ("a", "2")])
    assert base != HTTPHeaderMap([("a", "1"), ("a", "2 ")])
    assert HTTPHeaderMap([("a", "x")]) != HTTPHeaderMap([("a", "X")])  # values are case-sensitive
    assert base != HTTPHeaderMap()


@pytest.mark.parametrize("other", [{}, {b"a": [b"1"]}, [(b"a", b"1")], None, "a: 1"])
def test_not_equal_to_other_types(other: object) -> None:
    headers = HTTPHeaderMap([("a", "1")])
    assert headers != other
    assert not (headers == other)


def test_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(HTTPHeaderMap())


def test_repr_shows_fields() -> None:
    assert repr(HTTPHeaderMap([("a", "1"), ("b", 2)])) == "HTTPHeaderMap([(b'a', b'1'), (b'b', b'2')])"


# --- the str view ----------------------------------------------------------------


def test_get_str_joins_values_and_leaves_get_alone() -> None:
    headers = sample()
    headers.add("Accept", "text/html")
    headers.add("accept", "application/json")
    assert headers.get_str("ACCEPT") == "text/html, application/json"
    assert headers.get_str(b"content-type") == "text/html"
    assert headers.get_str("x-missing") is None
    assert headers.get_str("x-missing", "") == ""
    # The bytes API 0.7 code relies on is unchanged.
    assert headers.get("accept") == [b"text/html", b"application/json"]
    assert headers["content-type"] == [b"text/html"]


def test_get_all_str_keeps_set_cookie_values_apart() -> None:
    headers = sample()
    assert headers.get_all_str("Set-Cookie") == [COOKIE_1, COOKIE_2]
    assert headers.get_all_str("x-missing") == []
    # Joined, the commas inside the cookies make it ambiguous: why get_all_str exists.
    assert headers.get_str("set-cookie") == f"{COOKIE_1}, {COOKIE_2}"


def test_items_str_decodes_every_field_in_order() -> None:
    assert sample().items_str() == [
        ("content-type", "text/html"),
        ("set-cookie", COOKIE_1),
        ("date", "Tue, 15 Nov 1994 08:12:31 GMT"),
        ("set-cookie", COOKIE_2),
    ]
    assert HTTPHeaderMap().items_str() == []


def test_str_view_round_trips_str_values_and_never_fails_on_other_bytes() -> None:
    headers = HTTPHeaderMap()
    headers.add("x-utf8", "na\u00efve \u2603")  # str in is stored as UTF-8...
    headers.add("x-latin1", b"caf\xe9")  # ...a legacy server's latin-1 is not UTF-8
    headers.add("x-binary", bytes(range(0x80, 0x100)))
    assert headers.get_str("x-utf8") == "na\u00efve \u2603"  # ...and comes back the same
    assert headers.get_str("x-latin1") == "caf\u00e9"
    binary = headers.get_str("x-binary")
    assert binary is not None and binary.encode("latin-1") == bytes(range(0x80, 0x100))


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", ""),
        (b"plain ascii", "plain ascii"),
        ("\u00e9t\u00e9".encode(), "\u00e9t\u00e9"),
        (b"\xe9t\xe9", "\u00e9t\u00e9"),
        (b"\xff\xfe", "\u00ff\u00fe"),
    ],
)
def test_decode_value(raw: bytes, text: str) -> None:
    assert decode_value(raw) == text
