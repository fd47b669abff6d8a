"""``:status`` from an HPACK header block, without a decoder's table: the floor client's only HPACK.

RFC 9113 section 8.3.2 puts ``:status`` first in a response header block, so
reading the first field is enough.  Servers send it as a static-table index
(RFC 7541 section 6.1) or as a literal with the indexed name ``:status``
(section 6.2), its digits plain or Huffman-coded (section 5.2).  The floor
keeps no dynamic table, so a ``:status`` that refers to one is refused
loudly instead of guessed; nginx, nghttpd and h2o never send that.
"""

from __future__ import annotations


class FloorError(Exception):
    """The peer did something the floor client does not handle, or a wait ran out."""


# RFC 7541 Appendix A: static-table entries 8-14 are the ``:status`` values.
_STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}
# RFC 7541 Appendix B: Huffman codes of the digits (5 bits for 0-2, 6 bits for 3-9).
_HUFFMAN_DIGITS = {(0x0, 5): "0", (0x1, 5): "1", (0x2, 5): "2"}
_HUFFMAN_DIGITS.update({(0x19 + d, 6): str(3 + d) for d in range(7)})


def _hpack_int(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """An HPACK integer (RFC 7541 section 5.1) at *pos*; (value, next position)."""
    mask = (1 << prefix_bits) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _huffman_digits(data: bytes) -> str:
    """Decode a Huffman-coded string made only of digits (section 5.2); enough for ``:status``."""
    bits = int.from_bytes(data, "big")
    left = len(data) * 8
    out = []
    while left >= 5:
        five = (bits >> (left - 5)) & 0x1F
        if (five, 5) in _HUFFMAN_DIGITS:
            out.append(_HUFFMAN_DIGITS[(five, 5)])
            left -= 5
            continue
        if left >= 6 and ((bits >> (left - 6)) & 0x3F, 6) in _HUFFMAN_DIGITS:
            out.append(_HUFFMAN_DIGITS[((bits >> (left - 6)) & 0x3F, 6)])
            left -= 6
            continue
        break
    # What is left must be EOS padding: fewer than 8 one-bits (section 5.2).
    if left >= 8 or bits & ((1 << left) - 1) != (1 << left) - 1:
        raise FloorError(f"Huffman-coded :status is not three digits: {data.hex()}")
    return "".join(out)


def decode_status(block: bytes) -> int:
    """``:status`` of a response header block: its first field (RFC 9113 section 8.3)."""
    try:
        return _decode_status(block)
    except (IndexError, UnicodeDecodeError) as exc:
        # A block cut short, or bytes that are no ASCII: say so, do not crash.
        raise FloorError(f"garbled response header block {block[:16].hex()}: {exc}") from exc


def _decode_status(block: bytes) -> int:
    pos = 0
    # Dynamic-table size updates may precede the first field (RFC 7541 section 4.2).
    while pos < len(block) and block[pos] & 0xE0 == 0x20:
        _, pos = _hpack_int(block, pos, 5)
    if pos >= len(block):
        raise FloorError("empty response header block")
    first = block[pos]
    if first & 0x80:  # indexed field (section 6.1)
        index, _ = _hpack_int(block, pos, 7)
        if index in _STATIC_STATUS:
            return _STATIC_STATUS[index]
        raise FloorError(f"first field is table entry {index}, not a static :status")
    # Literal forms (section 6.2): 6-bit name index with incremental indexing,
    # 4-bit without indexing / never indexed.  :status is static entry 8-14.
    name_index, pos = _hpack_int(block, pos, 6 if first & 0x40 else 4)
    if not 8 <= name_index <= 14:
        raise FloorError(f"first field has name index {name_index}, not :status")
    huffman = block[pos] & 0x80
    length, pos = _hpack_int(block, pos, 7)
    if pos + length > len(block):
        raise FloorError(f":status value of {length} bytes runs past the end of the block")
    raw = block[pos : pos + length]
    text = _huffman_digits(raw) if huffman else raw.decode("ascii")
    if len(text) != 3 or not text.isdigit():
        raise FloorError(f":status {text!r} is not three digits")
    return int(text)
