"""Unit tests for hyper.common.body: prepare_body, RequestBody, LengthCounter."""

from __future__ import annotations

import array
import io
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyper.common.body import READ_BLOCK, LengthCounter, RequestBody, prepare_body
from hyper.exceptions import BodyLengthError, HyperError


def collect(body: RequestBody) -> list[bytes]:
    """Every block as bytes, checking each is a non-empty byte memoryview."""
    blocks = []
    for block in body.blocks():
        assert isinstance(block, memoryview)
        assert block.format == "B"
        assert block.ndim == 1
        assert block.nbytes > 0
        blocks.append(block.tobytes())
    return blocks


def sent(body: Any) -> tuple[int | None, bytes]:
    prepared = prepare_body(body)
    return prepared.length, b"".join(collect(prepared))


class ReadOnly:
    """A file-like object with nothing but read(); records the sizes asked for."""

    def __init__(self, data: bytes | str) -> None:
        self._data = data
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes | str:
        self.asked.append(size)
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


# --- in-memory bodies --------------------------------------------------------


def test_none_is_an_empty_body() -> None:
    assert sent(None) == (0, b"")


@pytest.mark.parametrize("body", [b"", bytearray(), memoryview(b""), ""])
def test_empty_bodies_have_length_zero_and_no_blocks(body: Any) -> None:
    prepared = prepare_body(body)
    assert prepared.length == 0
    assert collect(prepared) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"hello", b"hello"),
        (bytearray(b"hello"), b"hello"),
        (memoryview(b"hello"), b"hello"),
        (b"\x00\xff" * 1000, b"\x00\xff" * 1000),
    ],
)
def test_bytes_like_bodies(body: Any, expected: bytes) -> None:
    prepared = prepare_body(body)
    assert prepared.length == len(expected)
    assert collect(prepared) == [expected]


@pytest.mark.parametrize(
    ("text", "length"),
    [("hello", 5), ("h\u00e9llo", 6), ("\u20ac", 3), ("\U0001f600", 4), ("a\u00e9\u20ac\U0001f600", 10)],
)
def test_str_body_is_utf8_and_length_counts_bytes(text: str, length: int) -> None:
    assert sent(text) == (length, text.encode("utf-8"))


def test_memoryview_of_wide_items_counts_bytes() -> None:
    numbers = array.array("i", [1, 2, 3])
    length, data = sent(memoryview(numbers))
    assert length == 3 * numbers.itemsize
    assert data == numbers.tobytes()


def test_multidimensional_memoryview() -> None:
    view = memoryview(bytes(range(12))).cast("B", (3, 4))
    assert sent(view) == (12, bytes(range(12)))


def test_memoryview_slice() -> None:
    assert sent(memoryview(b"0123456789")[2:5]) == (3, b"234")


def test_bytearray_body_is_not_copied_before_sending() -> None:
    buffer = bytearray(b"abc")
    prepared = prepare_body(buffer)
    blocks = list(prepared.blocks())
    assert len(blocks) == 1
    assert blocks[0].obj is buffer


# --- real files --------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.bin"
    path.write_bytes(bytes(range(256)) * 4)  # 1024 bytes
    return path


def test_file_length_from_start(data_file: Path) -> None:
    with data_file.open("rb") as f:
        prepared = prepare_body(f)
        assert prepared.length == 1024
        assert f.tell() == 0  # nothing read yet: blocks are read lazily
        assert b"".join(collect(prepared)) == data_file.read_bytes()


def test_file_length_minus_current_position(data_file: Path) -> None:
    with data_file.open("rb") as f:
        f.read(100)
        prepared = prepare_body(f)
        assert prepared.length == 924
        assert f.tell() == 100
        assert b"".join(collect(prepared)) == data_file.read_bytes()[100:]


def test_unbuffered_file(data_file: Path) -> None:
    with data_file.open("rb", buffering=0) as f:
        f.seek(1000)
        assert sent(f) == (24, data_file.read_bytes()[1000:])


def test_file_positioned_at_or_past_the_end(data_file: Path) -> None:
    with data_file.open("rb") as f:
        f.seek(1024)
        assert sent(f) == (0, b"")
        f.seek(5000)
        assert sent(f) == (0, b"")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with path.open("rb") as f:
        assert sent(f) == (0, b"")


def test_large_file_is_read_in_bounded_non_empty_blocks(tmp_path: Path) -> None:
    data = os.urandom(2 * READ_BLOCK + 123)
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    with path.open("rb") as f:
        prepared = prepare_body(f)
        assert prepared.length == len(data)
        blocks = collect(prepared)
    assert [len(b) for b in blocks] == [READ_BLOCK, READ_BLOCK, 123]
    assert b"".join(blocks) == data


def test_temporary_file_wrapper(tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=tmp_path) as f:
        f.write(b"abcdef")
        f.flush()
        f.seek(2)
        assert sent(f) == (4, b"cdef")


def test_pipe_has_unknown_length() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"through a pipe")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        assert sent(f) == (None, b"through a pipe")


def test_read_only_file_like_object() -> None:
    data = b"x" * (READ_BLOCK + 7)
    source = ReadOnly(data)
    prepared = prepare_body(source)
    assert prepared.length is None
    assert source.asked == []  # nothing read before the body is sent
    blocks = collect(prepared)
    assert [len(b) for b in blocks] == [READ_BLOCK, 7]
    assert b"".join(blocks) == data
    assert all(size == READ_BLOCK for size in source.asked)


def test_read_only_object_returning_str() -> None:
    assert sent(ReadOnly("caf\u00e9")) == (None, b"caf\xc3\xa9")


def test_mmap_is_read_from_its_position() -> None:
    # BUG: in Python < 3.13 mmap.seek() returns None, so file_length's
    # 'end - position' raises a bare TypeError from prepare_body. Taking the
    # end from tell() after seek(0, SEEK_END) works for every file object.
    with mmap.mmap(-1, 100) as mapped:
        mapped.write(bytes(range(100)))
        mapped.seek(10)
        assert sent(mapped) == (90, bytes(range(10, 100)))


# --- BytesIO and text files --------------------------------------------------


def test_bytesio_length_from_position() -> None:
    buffer = io.BytesIO(b"0123456789")
    assert prepare_body(buffer).length == 10
    buffer.seek(3)
    prepared = prepare_body(buffer)
    assert prepared.length == 7
    assert buffer.tell() == 3  # measuring the length left the position alone
    assert b"".join(collect(prepared)) == b"3456789"


def test_bytesio_past_the_end() -> None:
    buffer = io.BytesIO(b"0123")
    buffer.seek(10)
    assert sent(buffer) == (0, b"")


def test_large_bytesio_blocks() -> None:
    data = os.urandom(READ_BLOCK * 2)
    prepared = prepare_body(io.BytesIO(data))
    assert prepared.length == len(data)
    assert [len(b) for b in collect(prepared)] == [READ_BLOCK, READ_BLOCK]


def test_text_file_is_sent_as_utf8_with_unknown_length(tmp_path: Path) -> None:
    text = "line one\nd\u00e9j\u00e0 vu \u20ac\n"
    path = tmp_path / "body.txt"
    path.write_text(text, encoding="utf-8")
    with path.open("r", encoding="utf-8") as f:
        assert sent(f) == (None, text.encode("utf-8"))


def test_text_file_in_another_encoding_is_sent_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9".encode("latin-1"))
    with path.open("r", encoding="latin-1") as f:
        assert sent(f) == (None, b"caf\xc3\xa9")


def test_stringio_is_sent_as_utf8() -> None:
    assert sent(io.StringIO("h\u00e9llo")) == (None, b"h\xc3\xa9llo")


def test_text_file_blocks_are_bounded(tmp_path: Path) -> None:
    text = "\u00e9" * (READ_BLOCK + 10)
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    with path.open("r", encoding="utf-8") as f:
        blocks = collect(prepare_body(f))
    # READ_BLOCK characters per read; UTF-8 needs at most 4 bytes each.
    assert all(len(b) <= 4 * READ_BLOCK for b in blocks)
    assert [len(b) for b in blocks] == [2 * READ_BLOCK, 20]
    assert b"".join(blocks) == text.encode("utf-8")


def test_wrapped_text_file_length_matches_bytes_sent(tmp_path: Path) -> None:
    # BUG: a text file behind tempfile's wrapper is not an io.TextIOBase, so its
    # length is taken from the size on disk (10 latin-1 bytes) while 20 UTF-8
    # bytes are sent: a content-length mismatch.
    with tempfile.NamedTemporaryFile("w+", encoding="latin-1", dir=tmp_path) as f:
        f.write("\u00e9" * 10)
        f.flush()
        f.seek(0)
        length, data = sent(f)
    assert data == "\u00e9".encode() * 10
    assert length is None or length == len(data)


# --- iterables ---------------------------------------------------------------


def test_generator_has_unknown_length_and_is_consumed_lazily() -> None:
    produced: list[int] = []

    def generate() -> Iterator[bytes]:
        for i in range(3):
            produced.append(i)
            yield b"chunk%d;" % i

    prepared = prepare_body(generate())
    assert prepared.length is None
    assert produced == []
    assert collect(prepared) == [b"chunk0;", b"chunk1;", b"chunk2;"]
    assert produced == [0, 1, 2]


def test_generator_blocks_skip_empties_and_encode_str() -> None:
    def generate() -> Iterator[Any]:
        yield b""
        yield b"a"
        yield ""
        yield "\u00e9"
        yield bytearray(b"b")
        yield memoryview(b"")
        yield memoryview(b"c")

    assert collect(prepare_body(generate())) == [b"a", b"\xc3\xa9", b"b", b"c"]


@pytest.mark.parametrize(
    ("body", "length", "data"),
    [
        ([b"ab", b"cde"], 5, b"abcde"),
        ((b"ab", b"cde"), 5, b"abcde"),
        ([], 0, b""),
        ([b"", b""], 0, b""),
        ([b"a", b"", b"b"], 2, b"ab"),
        (["\u00e9", b"x"], 3, b"\xc3\xa9x"),
        ([bytearray(b"ab"), memoryview(b"cd")], 4, b"abcd"),
    ],
)
def test_list_and_tuple_length_is_summed(body: Any, length: int, data: bytes) -> None:
    assert sent(body) == (length, data)


def test_list_of_wide_memoryviews_counts_bytes() -> None:
    # BUG: len() of a memoryview counts items, not bytes: a list holding
    # memoryview(array('i', [1, 2, 3])) declares 3 bytes and sends 12.
    numbers = array.array("i", [1, 2, 3])
    assert sent([memoryview(numbers)]) == (len(numbers.tobytes()), numbers.tobytes())


def test_list_blocks_are_never_empty() -> None:
    blocks = collect(prepare_body([b"", b"x", b"", b"y", b""]))
    assert blocks == [b"x", b"y"]


def test_list_with_non_bytes_items_is_refused_before_sending() -> None:
    # A list is in memory: its items are checked before the request starts,
    # not after its headers went out.
    with pytest.raises(TypeError, match="item 1 of the body is a int"):
        prepare_body([b"ok", 42])


def test_iterator_of_ints_fails_when_sent() -> None:
    with pytest.raises(TypeError):
        collect(prepare_body(iter([1, 2, 3])))


@pytest.mark.parametrize("body", [42, 4.2, object(), True])
def test_unsupported_types(body: object) -> None:
    with pytest.raises(TypeError, match="a body is bytes, bytearray"):
        prepare_body(body)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [{"a": 1}, {b"a": b"1"}, {}])
def test_dict_body_is_refused_not_sent_as_its_keys(body: object) -> None:
    # Issue 12 item 6: a dict is iterable, and was sent as its keys.
    with pytest.raises(TypeError, match=r"cannot be a request body: encode it first.*json\.dumps"):
        prepare_body(body)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [{b"a", b"b"}, frozenset({b"a"})])
def test_set_body_is_refused(body: object) -> None:
    with pytest.raises(TypeError, match="a set has no order"):
        prepare_body(body)  # type: ignore[arg-type]


def test_buffer_body_sends_its_bytes_not_its_items() -> None:
    import array

    data = array.array("H", [1, 2, 3])
    prepared = prepare_body(data)  # type: ignore[arg-type]
    assert prepared.length == 6
    assert b"".join(collect(prepared)) == data.tobytes()


def test_non_contiguous_buffer_body() -> None:
    view = memoryview(b"abcdef")[::2]
    prepared = prepare_body(view)
    assert prepared.length == 3
    assert b"".join(collect(prepared)) == b"ace"


# --- RequestBody -------------------------------------------------------------


def test_request_body_blocks() -> None:
    body = RequestBody(None, iter([b"a", b"", "\u00e9", bytearray(b"b"), memoryview(array.array("H", [1]))]))
    assert body.length is None
    assert collect(body) == [b"a", b"\xc3\xa9", b"b", array.array("H", [1]).tobytes()]


def test_request_body_rejects_non_bytes_blocks() -> None:
    body = RequestBody(3, iter([b"ok", None]))
    blocks = body.blocks()
    assert next(blocks).tobytes() == b"ok"
    with pytest.raises(TypeError):
        next(blocks)


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"abc",
        "h\u00e9llo",
        bytearray(b"xy"),
        memoryview(array.array("d", [1.0, 2.0])),
        [b"ab", "\u00e9", b""],
        (b"x",),
        io.BytesIO(b"0123456789"),
    ],
)
def test_known_length_always_matches_the_bytes_sent(body: Any) -> None:
    length, data = sent(body)
    assert length == len(data)


# --- LengthCounter -----------------------------------------------------------


def test_body_length_error_is_a_hyper_error() -> None:
    assert issubclass(BodyLengthError, HyperError)


def test_length_counter_exact() -> None:
    counter = LengthCounter(10)
    counter.add(4)
    counter.add(0)
    counter.add(6)
    assert counter.sent == 10
    assert counter.declared == 10
    counter.check_complete()


def test_length_counter_too_long_fails_before_counting() -> None:
    counter = LengthCounter(10)
    counter.add(5)
    with pytest.raises(BodyLengthError) as info:
        counter.add(6)
    assert info.value.expected == 10
    assert info.value.actual == 11
    assert counter.sent == 5  # the refused bytes were not counted


def test_length_counter_too_long_in_one_go() -> None:
    with pytest.raises(BodyLengthError) as info:
        LengthCounter(3).add(4)
    assert (info.value.expected, info.value.actual) == (3, 4)


def test_length_counter_too_short() -> None:
    counter = LengthCounter(10)
    counter.add(3)
    counter.add(4)
    with pytest.raises(BodyLengthError) as info:
        counter.check_complete()
    assert info.value.expected == 10
    assert info.value.actual == 7


def test_length_counter_nothing_sent() -> None:
    with pytest.raises(BodyLengthError) as info:
        LengthCounter(1).check_complete()
    assert (info.value.expected, info.value.actual) == (1, 0)


def test_length_counter_zero() -> None:
    counter = LengthCounter(0)
    counter.add(0)
    counter.check_complete()
    with pytest.raises(BodyLengthError) as info:
        counter.add(1)
    assert (info.value.expected, info.value.actual) == (0, 1)


def test_length_counter_without_declared_length() -> None:
    counter = LengthCounter(None)
    counter.add(10**12)
    counter.add(5)
    assert counter.sent == 10**12 + 5
    counter.check_complete()
    assert LengthCounter(None).sent == 0
    LengthCounter(None).check_complete()
