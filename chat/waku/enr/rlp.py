"""Recursive Length Prefix (RLP), the part of it an ENR uses, bounded and canonical.

An item is a byte string or a list of items. Decoding returns each item as its raw encoded
slice, so a record's signed content can be rebuilt byte for byte; nested lists are parsed only
to check that they are well formed, never deeper than `MAX_DEPTH`. Non-canonical encodings
(a length in long form that fits the short one, a length with a leading zero, a single byte
below 0x80 wrapped as a string) are refused, as go-ethereum refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DEPTH = 8
SHORT_LIMIT = 55
_STRING = 0x80
_LONG_STRING = 0xB7
_LIST = 0xC0
_LONG_LIST = 0xF7


class RlpError(ValueError):
    """Bytes that are not one canonical RLP item."""


@dataclass(frozen=True, slots=True)
class Item:
    """One decoded item: its whole encoding, and where its payload lies within it."""

    raw: bytes
    is_list: bool
    payload_offset: int

    @property
    def payload(self) -> bytes:
        return self.raw[self.payload_offset :]


def encode_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < _STRING:
        return value
    return _prefix(len(value), _STRING) + value


def encode_list(encoded_items: list[bytes]) -> bytes:
    """A list of items that are already encoded."""
    payload = b"".join(encoded_items)
    return _prefix(len(payload), _LIST) + payload


def encode_uint(value: int) -> bytes:
    """A non-negative integer as a big-endian byte string without leading zeros."""
    if value < 0:
        raise ValueError("RLP integers are not negative")
    return encode_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _prefix(length: int, base: int) -> bytes:
    if length <= SHORT_LIMIT:
        return bytes([base + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([base + SHORT_LIMIT + len(size)]) + size


def _header(data: bytes, offset: int) -> tuple[bool, int, int]:
    """(is_list, payload start, payload end) of the item starting at `offset`."""
    if offset >= len(data):
        raise RlpError("the data ends where an item should start")
    first = data[offset]
    if first < _STRING:
        return False, offset, offset + 1
    is_list = first >= _LIST
    short_base, long_base = (_LIST, _LONG_LIST) if is_list else (_STRING, _LONG_STRING)
    if first <= long_base:
        start, length = offset + 1, first - short_base
        if not is_list and length == 1 and start < len(data) and data[start] < _STRING:
            raise RlpError("a single byte below 0x80 must be encoded as itself")
    else:
        size = first - long_base
        start = offset + 1 + size
        if start > len(data):
            raise RlpError("the data ends inside a length")
        length_bytes = data[offset + 1 : start]
        if length_bytes[0] == 0:
            raise RlpError("a length has a leading zero byte")
        length = int.from_bytes(length_bytes, "big")
        if length <= SHORT_LIMIT:
            raise RlpError("a short length is written in the long form")
    end = start + length
    if end > len(data):
        raise RlpError(f"an item of {length} bytes runs past the end of the data")
    return is_list, start, end


def _check_list_payload(data: bytes, start: int, end: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise RlpError(f"lists are nested more than {MAX_DEPTH} deep")
    offset = start
    while offset < end:
        is_list, payload_start, payload_end = _header(data, offset)
        if payload_end > end:
            raise RlpError("an item runs past the end of its list")
        if is_list:
            _check_list_payload(data, payload_start, payload_end, depth + 1)
        offset = payload_end


def decode_list(data: bytes) -> list[Item]:
    """The items of the one list `data` holds (nothing may follow it)."""
    is_list, start, end = _header(data, 0)
    if not is_list:
        raise RlpError("the data is a byte string, not a list")
    if end != len(data):
        raise RlpError(f"{len(data) - end} bytes follow the list")
    items: list[Item] = []
    offset = start
    while offset < end:
        item_is_list, payload_start, payload_end = _header(data, offset)
        if payload_end > end:
            raise RlpError("an item runs past the end of the list")
        if item_is_list:
            _check_list_payload(data, payload_start, payload_end, 2)
        raw = data[offset:payload_end]
        items.append(Item(raw, item_is_list, payload_start - offset))
        offset = payload_end
    return items
