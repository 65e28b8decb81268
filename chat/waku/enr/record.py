"""An Ethereum Node Record (EIP-778) with the "v4" identity scheme: decode, verify, sign.

A record is the RLP list [signature, seq, k1, v1, k2, v2, ...] of at most 300 bytes, keys
sorted and unique. "v4": `id` = "v4", `secp256k1` = the 33-byte compressed public key, and
the signature is the 64-byte r‖s secp256k1 ECDSA signature of keccak256(RLP([seq, k1, v1,
...])). The text form is "enr:" + base64url without padding.

Decoding checks all of it, and the standard address keys (`ip`, `tcp`, `udp`, `ip6`, `tcp6`,
`udp6`); anything wrong raises EnrError, the one error of this package. Values of other keys
are kept as their raw RLP items, unread.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from coincurve import PrivateKey, PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from Crypto.Hash import keccak

from chat.waku.enr import rlp

MAX_RECORD_SIZE = 300
"""EIP-778: a record is at most 300 bytes."""
MAX_TEXT_SIZE = 4 + (MAX_RECORD_SIZE * 4 + 2) // 3
TEXT_PREFIX = "enr:"
IDENTITY_SCHEME = b"v4"
SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 33
MAX_SEQ_BYTES = 8


class EnrError(ValueError):
    """A node record that cannot be used: malformed, too large, or wrongly signed."""


class RecordTooLarge(EnrError):
    """Over the 300 bytes EIP-778 allows."""


class BadSignature(EnrError):
    """Well formed, but not signed by the key it names."""


def keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def _ip(value: bytes, size: int, key: str) -> str:
    if len(value) != size:
        raise EnrError(f"`{key}` is {len(value)} bytes, not {size}")
    return str(ipaddress.ip_address(value))


def _port(value: bytes, key: str) -> int:
    if not 1 <= len(value) <= 2:
        raise EnrError(f"`{key}` is {len(value)} bytes; a port is 1 or 2")
    port = int.from_bytes(value, "big")
    if port == 0:
        raise EnrError(f"`{key}` is port 0")
    return port


@dataclass(frozen=True)
class Enr:
    """A decoded, verified record. `pairs` holds every key's raw RLP item, in key order."""

    raw: bytes
    seq: int
    signature: bytes
    public_key: bytes
    pairs: Mapping[str, rlp.Item] = field(repr=False)
    ip: str | None = None
    tcp: int | None = None
    udp: int | None = None
    ip6: str | None = None
    tcp6: int | None = None
    udp6: int | None = None

    def value(self, key: str) -> bytes | None:
        """The byte-string value of `key`, or None when absent (EnrError if it is a list)."""
        item = self.pairs.get(key)
        if item is None:
            return None
        if item.is_list:
            raise EnrError(f"`{key}` is a list, not a byte string")
        return item.payload

    @property
    def text(self) -> str:
        return TEXT_PREFIX + base64.urlsafe_b64encode(self.raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Enr:
        """A record from its binary (RLP) form; EnrError on anything wrong."""
        if len(data) > MAX_RECORD_SIZE:
            raise RecordTooLarge(
                f"a record of {len(data)} bytes is over the {MAX_RECORD_SIZE}-byte limit"
            )
        try:
            items = rlp.decode_list(bytes(data))
        except rlp.RlpError as exc:
            raise EnrError(f"not a node record: {exc}") from None
        if len(items) < 2 or len(items) % 2:
            raise EnrError("a record is a signature, a sequence number and key/value pairs")
        signature_item, seq_item, *rest = items
        if signature_item.is_list or seq_item.is_list:
            raise EnrError("the signature and the sequence number must be byte strings")
        seq_bytes = seq_item.payload
        if len(seq_bytes) > MAX_SEQ_BYTES:
            raise EnrError(f"the sequence number is {len(seq_bytes)} bytes, over 8")
        pairs: dict[str, rlp.Item] = {}
        previous = b""
        for key_item, value_item in zip(rest[::2], rest[1::2], strict=True):
            if key_item.is_list:
                raise EnrError("a key must be a byte string")
            key_bytes = key_item.payload
            if pairs and key_bytes <= previous:
                raise EnrError("the keys are not sorted and unique")
            previous = key_bytes
            try:
                key = key_bytes.decode("ascii")
            except UnicodeDecodeError:
                raise EnrError("a key is not ASCII text") from None
            pairs[key] = value_item
        seq = int.from_bytes(seq_bytes, "big")
        record = cls._with_fields(bytes(data), seq, signature_item.payload, pairs)
        record._verify([i.raw for i in items[1:]])
        return record

    @classmethod
    def _with_fields(
        cls, raw: bytes, seq: int, signature: bytes, pairs: dict[str, rlp.Item]
    ) -> Enr:
        def byte_value(key: str) -> bytes | None:
            item = pairs.get(key)
            if item is not None and item.is_list:
                raise EnrError(f"`{key}` is a list, not a byte string")
            return None if item is None else item.payload

        if byte_value("id") != IDENTITY_SCHEME:
            raise EnrError('the identity scheme (`id`) is not "v4"')
        public_key = byte_value("secp256k1")
        if public_key is None or len(public_key) != PUBLIC_KEY_SIZE:
            raise EnrError("`secp256k1` must be a 33-byte compressed public key")
        ports = {key: byte_value(key) for key in ("tcp", "udp", "tcp6", "udp6")}
        ip4, ip6 = byte_value("ip"), byte_value("ip6")
        return cls(
            raw=raw,
            seq=seq,
            signature=signature,
            public_key=public_key,
            pairs=pairs,
            ip=None if ip4 is None else _ip(ip4, 4, "ip"),
            ip6=None if ip6 is None else _ip(ip6, 16, "ip6"),
            **{k: None if v is None else _port(v, k) for k, v in ports.items()},
        )

    def _verify(self, content_items: list[bytes]) -> None:
        if len(self.signature) != SIGNATURE_SIZE:
            raise EnrError(f"the signature is {len(self.signature)} bytes, not {SIGNATURE_SIZE}")
        digest = keccak256(rlp.encode_list(content_items))
        try:
            key = PublicKey(self.public_key)
            der = cdata_to_der(deserialize_compact(self.signature))
            valid = key.verify(der, digest, hasher=None)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise BadSignature("the signature does not verify")

    @classmethod
    def from_text(cls, text: str) -> Enr:
        """A record from its text form, "enr:" + base64url."""
        text = text.strip()
        if len(text) > MAX_TEXT_SIZE:
            raise EnrError(f"the text is over {MAX_TEXT_SIZE} characters: not a node record")
        if not text.startswith(TEXT_PREFIX):
            raise EnrError(f'a node record\'s text form starts with "{TEXT_PREFIX}"')
        body = text[len(TEXT_PREFIX) :]
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise EnrError("the text after enr: is not base64url") from None
        return cls.decode(data)

    @classmethod
    def sign(cls, secret: bytes, seq: int, values: Mapping[str, bytes]) -> Enr:
        """A record of these byte-string values (plus `id` and `secp256k1`), signed with the
        32-byte secp256k1 secret. EnrError when it does not fit in 300 bytes."""
        if seq < 0 or seq.bit_length() > 8 * MAX_SEQ_BYTES:
            raise EnrError(f"the sequence number {seq} is not a uint64")
        private = PrivateKey(secret)
        pairs = dict(values)
        pairs["id"] = IDENTITY_SCHEME
        pairs["secp256k1"] = bytes(private.public_key.format(compressed=True))
        content = [rlp.encode_uint(seq)]
        for key in sorted(pairs):
            content += [rlp.encode_bytes(key.encode("ascii")), rlp.encode_bytes(pairs[key])]
        digest = keccak256(rlp.encode_list(content))
        signature = bytes(private.sign_recoverable(digest, hasher=None))[:SIGNATURE_SIZE]
        raw = rlp.encode_list([rlp.encode_bytes(signature), *content])
        if len(raw) > MAX_RECORD_SIZE:
            raise RecordTooLarge(
                f"the record would be {len(raw)} bytes, over the {MAX_RECORD_SIZE}-byte limit"
            )
        return cls.decode(raw)
