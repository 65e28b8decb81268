"""Protected shards: secp256k1 signatures over Waku messages, as Status communities use them.

A protected shard has one secp256k1 key pair. Publishers sign the *signing hash*

    SHA-256(pubsub_topic ‖ payload ‖ content_topic ‖ timestamp as 8 bytes little-endian
            ‖ 0x01 if ephemeral else 0x00)

(meta and version are not covered: meta carries the signature) with deterministic RFC 6979
ECDSA, and put the 64-byte compact r‖s (low-S, recovery byte dropped) in `meta`. Relays on
the shard accept a message only if that signature verifies against the shard's public key
and its timestamp is set and within five minutes of their clock. This is byte-compatible
with go-waku's and nwaku's signed-topic validators (waku-wire.md §10).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import ClassVar

from coincurve import PrivateKey, PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from chat.waku.message import WakuMessage

SIGNATURE_SIZE = 64
TIMESTAMP_WINDOW_NS = 5 * 60 * 1_000_000_000
"""A signed message more than five minutes away from our clock is rejected."""

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = SECP256K1_ORDER // 2
_UINT64_MASK = 0xFFFF_FFFF_FFFF_FFFF


class ProtectedShardError(ValueError):
    """A protected-shard key, or a message on a protected shard, that does not pass."""

    reason: ClassVar[str] = "protected_shard"
    """A short stable label, used as the counter name when a relay rejects a message."""


class InvalidShardKey(ProtectedShardError):
    reason = "invalid_key"


class MissingTimestamp(ProtectedShardError):
    reason = "signed_no_timestamp"


class TimestampOutOfWindow(ProtectedShardError):
    reason = "signed_timestamp_out_of_window"


class BadSignatureLength(ProtectedShardError):
    reason = "signature_length"


class MalformedSignature(ProtectedShardError):
    reason = "signature_malformed"


class HighSSignature(ProtectedShardError):
    reason = "signature_high_s"


class WrongSignature(ProtectedShardError):
    reason = "signature_mismatch"


def signing_hash(pubsub_topic: str, msg: WakuMessage) -> bytes:
    h = hashlib.sha256()
    h.update(pubsub_topic.encode())
    h.update(msg.payload)
    h.update(msg.content_topic.encode())
    h.update((msg.timestamp & _UINT64_MASK).to_bytes(8, "little"))
    h.update(b"\x01" if msg.ephemeral else b"\x00")
    return h.digest()


def _from_hex(text: str, what: str) -> bytes:
    cleaned = text.strip()
    if cleaned[:2] in ("0x", "0X"):
        cleaned = cleaned[2:]
    if len(cleaned) > 2 * 65:
        raise InvalidShardKey(f"{what} is too long to be a secp256k1 key")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidShardKey(f"{what} is not hexadecimal") from None


@dataclass(frozen=True, slots=True)
class ShardPublicKey:
    """The verifying half of a protected shard's key."""

    key: PublicKey

    @classmethod
    def from_bytes(cls, data: bytes) -> ShardPublicKey:
        """Compressed (33 bytes) or uncompressed (65 bytes) SEC1 encoding, as nwaku accepts."""
        if len(data) not in (33, 65):
            raise InvalidShardKey(f"a public key is 33 or 65 bytes, not {len(data)}")
        try:
            return cls(PublicKey(data))
        except ValueError:
            raise InvalidShardKey("those bytes are not a point on secp256k1") from None

    @classmethod
    def from_hex(cls, text: str) -> ShardPublicKey:
        return cls.from_bytes(_from_hex(text, "public key"))

    def to_bytes(self, *, compressed: bool = True) -> bytes:
        return bytes(self.key.format(compressed=compressed))

    def to_hex(self, *, compressed: bool = True) -> str:
        return self.to_bytes(compressed=compressed).hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShardPublicKey) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"ShardPublicKey({self.to_hex()})"

    def check_signature(self, pubsub_topic: str, msg: WakuMessage) -> None:
        """Raise a `ProtectedShardError` unless `msg.meta` is our signature over the message."""
        sig = msg.meta
        if len(sig) != SIGNATURE_SIZE:
            raise BadSignatureLength(f"signature is {len(sig)} bytes, not {SIGNATURE_SIZE}")
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:], "big")
        if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
            raise MalformedSignature("signature r or s is outside 1..n-1")
        # libsecp256k1 refuses high-S too; saying so explicitly gives it its own reason.
        if s > _HALF_ORDER:
            raise HighSSignature("signature is not in low-S form")
        der = cdata_to_der(deserialize_compact(sig))
        if not self.key.verify(der, signing_hash(pubsub_topic, msg), hasher=None):
            raise WrongSignature("signature does not match the shard key")


def check_signed_message(
    pubsub_topic: str,
    msg: WakuMessage,
    public_key: ShardPublicKey,
    now_ns: int,
    *,
    window_ns: int = TIMESTAMP_WINDOW_NS,
) -> None:
    """The protected-shard relay check: timestamp set and within the window, then signature."""
    if msg.timestamp == 0:
        raise MissingTimestamp("signed messages must carry a timestamp")
    if abs(now_ns - msg.timestamp) > window_ns:
        raise TimestampOutOfWindow(
            f"timestamp is {(msg.timestamp - now_ns) / 1e9:+.1f} s from now; "
            f"at most ±{window_ns / 1e9:.0f} s allowed"
        )
    public_key.check_signature(pubsub_topic, msg)


@dataclass(frozen=True, slots=True)
class ShardKeyPair:
    """A protected shard's secp256k1 key pair (the owner's and members' signing key)."""

    secret: PrivateKey

    @classmethod
    def generate(cls) -> ShardKeyPair:
        while True:
            candidate = secrets.token_bytes(32)
            if 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
                return cls(PrivateKey(candidate))

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> ShardKeyPair:
        if len(data) != 32 or not 0 < int.from_bytes(data, "big") < SECP256K1_ORDER:
            raise InvalidShardKey("a secret key is 32 bytes encoding 1..n-1")
        return cls(PrivateKey(data))

    @classmethod
    def from_hex(cls, text: str) -> ShardKeyPair:
        return cls.from_secret_bytes(_from_hex(text, "secret key"))

    def secret_bytes(self) -> bytes:
        return bytes(self.secret.secret)

    def secret_hex(self) -> str:
        return self.secret_bytes().hex()

    @property
    def public_key(self) -> ShardPublicKey:
        return ShardPublicKey(self.secret.public_key)

    def __repr__(self) -> str:
        # Never print the secret, not even in a traceback.
        return f"ShardKeyPair(public={self.public_key.to_hex()})"

    def signature(self, pubsub_topic: str, msg: WakuMessage) -> bytes:
        """The 64-byte low-S compact signature for `msg` on `pubsub_topic`."""
        recoverable = self.secret.sign_recoverable(signing_hash(pubsub_topic, msg), hasher=None)
        sig = bytes(recoverable[:SIGNATURE_SIZE])
        # libsecp256k1 always produces low-S; a violation would make every relay drop us.
        assert int.from_bytes(sig[32:], "big") <= _HALF_ORDER
        return sig

    def sign(self, pubsub_topic: str, msg: WakuMessage) -> WakuMessage:
        """`msg` with its meta replaced by the signature (the timestamp must already be set)."""
        if msg.timestamp == 0:
            raise MissingTimestamp("set the timestamp before signing: relays reject timestamp 0")
        return replace(msg, meta=self.signature(pubsub_topic, msg))
