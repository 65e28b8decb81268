"""Bech32m (BIP-350) text encoding: short, case-insensitive, and its checksum catches typos.

We use it for chat keys so that a key read aloud or retyped either arrives intact or is
refused, never silently mistaken for someone else's.
"""

from __future__ import annotations

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
MAX_LENGTH = 120


class Bech32Error(ValueError):
    pass


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= gen
    return checksum


def _expand_prefix(prefix: str) -> list[int]:
    return [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]


def _to_5bit(data: bytes) -> list[int]:
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = acc << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(acc >> bits & 31)
    if bits:
        out.append(acc << (5 - bits) & 31)
    return out


def _from_5bit(groups: list[int]) -> bytes:
    acc, bits, out = 0, 0, bytearray()
    for group in groups:
        acc = acc << 5 | group
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(acc >> bits & 0xFF)
    if bits >= 5 or acc & ((1 << bits) - 1):
        raise Bech32Error("invalid padding")
    return bytes(out)


def encode(prefix: str, data: bytes) -> str:
    groups = _to_5bit(data)
    polymod = _polymod([*_expand_prefix(prefix), *groups, 0, 0, 0, 0, 0, 0]) ^ _BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return prefix + "1" + "".join(CHARSET[g] for g in groups + checksum)


def decode(text: str, expected_prefix: str) -> bytes:
    if len(text) > MAX_LENGTH:
        raise Bech32Error("too long")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixes upper and lower case")
    text = text.lower()
    prefix, sep, rest = text.rpartition("1")
    if not sep or prefix != expected_prefix:
        raise Bech32Error(f"does not start with {expected_prefix}1")
    if len(rest) < 6 or any(c not in CHARSET for c in rest):
        raise Bech32Error("has characters that do not belong")
    groups = [CHARSET.index(c) for c in rest]
    if _polymod([*_expand_prefix(prefix), *groups]) != _BECH32M_CONST:
        raise Bech32Error("checksum does not match (a typo?)")
    return _from_5bit(groups[:-6])
