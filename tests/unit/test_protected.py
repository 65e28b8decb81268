"""Protected-shard signing and verification, with both [DERIVED] vectors of waku-wire.md §10."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.waku.message import WakuMessage
from chat.waku.protected import (
    SECP256K1_ORDER,
    TIMESTAMP_WINDOW_NS,
    BadSignatureLength,
    HighSSignature,
    InvalidShardKey,
    MalformedSignature,
    MissingTimestamp,
    ProtectedShardError,
    ShardKeyPair,
    ShardPublicKey,
    TimestampOutOfWindow,
    WrongSignature,
    check_signed_message,
    signing_hash,
)

SECRET = "5526a8990317c9b7b58d07843d270f9cd1d9aaee129294c1c478abf7261dd9e6"
PUBLIC_COMPRESSED = "029c5fac802da41e07e6cdf51c3b9a6351ad5e65921527f2df5b7d59fd9b56ab02"
PUBSUB = "/waku/2/rs/16/32"
TS = 1_700_000_000_000_000_000
MESSAGE = WakuMessage(b"hello", "/waku/1/0x01020304/rfc26", timestamp=TS)
MINUTE_NS = 60 * 1_000_000_000

VECTORS = [
    (
        False,
        "ac82696e9a15e299104a021ec08613619c2ce81eef9a6b68392404a97f40f2be",
        "5526759f2af1a9a79e915f04d538d9fa87d8e9007a0bec2679b2683d3b49cbe2"
        "6646e500a8765d39f2377d5d42a0cd45d81f9c5283b6e274be7bdea521ebe9cc",
    ),
    (
        True,
        "faf4e6eec8bcca95401261198b2208249fa5383d93c67755ba63bbf8725fec37",
        "71f54a5d8c913dd576856806e2583a31710635914d643eb1d5f3f06054747843"
        "7a2481e9f7c237665defe6e478c3182abb2b2c3aaddd5c74979d89653826a774",
    ),
]


@pytest.fixture
def pair() -> ShardKeyPair:
    return ShardKeyPair.from_hex(SECRET)


def test_timestamp_is_little_endian_in_the_signing_hash() -> None:
    assert TS.to_bytes(8, "little").hex() == "00002a36fe9c9717"


@pytest.mark.parametrize(("ephemeral", "hash_hex", "meta_hex"), VECTORS)
def test_derived_vectors_byte_exact(
    pair: ShardKeyPair, ephemeral: bool, hash_hex: str, meta_hex: str
) -> None:
    msg = replace(MESSAGE, ephemeral=ephemeral)
    assert signing_hash(PUBSUB, msg).hex() == hash_hex
    signed = pair.sign(PUBSUB, msg)
    assert signed.meta.hex() == meta_hex
    check_signed_message(PUBSUB, signed, pair.public_key, TS)
    # The signature survives the wire: encode, decode, verify.
    check_signed_message(PUBSUB, WakuMessage.decode(signed.encode()), pair.public_key, TS)


def test_key_pair_hex_round_trip(pair: ShardKeyPair) -> None:
    assert pair.secret_hex() == SECRET
    assert pair.public_key.to_hex() == PUBLIC_COMPRESSED
    assert ShardKeyPair.from_hex("0x" + SECRET.upper()).secret_bytes() == pair.secret_bytes()
    assert SECRET not in repr(pair)


def test_compressed_and_uncompressed_public_keys(pair: ShardKeyPair) -> None:
    uncompressed = pair.public_key.to_hex(compressed=False)
    assert len(uncompressed) == 130 and uncompressed.startswith("04")
    from_long = ShardPublicKey.from_hex(uncompressed)
    from_short = ShardPublicKey.from_hex("0x" + PUBLIC_COMPRESSED)
    assert from_long == from_short == pair.public_key
    assert hash(from_long) == hash(from_short)
    signed = pair.sign(PUBSUB, MESSAGE)
    check_signed_message(PUBSUB, signed, from_long, TS)
    check_signed_message(PUBSUB, signed, from_short, TS)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zz",
        PUBLIC_COMPRESSED[:-2],  # 32 bytes
        "05" + PUBLIC_COMPRESSED[2:],  # bad prefix
        "02" + "ff" * 32,  # x not on the curve (x >= p)
        "ab" * 200,
    ],
)
def test_bad_public_keys(text: str) -> None:
    with pytest.raises(InvalidShardKey):
        ShardPublicKey.from_hex(text)


@pytest.mark.parametrize(
    "text", ["", "00" * 32, f"{SECP256K1_ORDER:064x}", "11" * 31, "11" * 33, "xy" * 32]
)
def test_bad_secret_keys(text: str) -> None:
    with pytest.raises(InvalidShardKey):
        ShardKeyPair.from_hex(text)


def test_generated_pairs_sign_and_verify() -> None:
    pair = ShardKeyPair.generate()
    signed = pair.sign(PUBSUB, MESSAGE)
    check_signed_message(PUBSUB, signed, pair.public_key, TS)
    assert ShardKeyPair.from_hex(pair.secret_hex()).public_key == pair.public_key


def test_wrong_key_is_rejected(pair: ShardKeyPair) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    with pytest.raises(WrongSignature):
        check_signed_message(PUBSUB, signed, ShardKeyPair.generate().public_key, TS)


@pytest.mark.parametrize(
    "change",
    [
        {"payload": b"hellO"},
        {"content_topic": "/waku/1/0x01020305/rfc26"},
        {"timestamp": TS + 1},
        {"ephemeral": True},
    ],
)
def test_any_covered_field_change_breaks_the_signature(
    pair: ShardKeyPair, change: dict[str, object]
) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    with pytest.raises(WrongSignature):
        check_signed_message(PUBSUB, replace(signed, **change), pair.public_key, TS)  # type: ignore[arg-type]


def test_signature_is_bound_to_the_pubsub_topic(pair: ShardKeyPair) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    with pytest.raises(WrongSignature):
        check_signed_message("/waku/2/rs/16/64", signed, pair.public_key, TS)


def test_version_is_not_covered(pair: ShardKeyPair) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    check_signed_message(PUBSUB, replace(signed, version=1), pair.public_key, TS)


def test_high_s_is_rejected(pair: ShardKeyPair) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    r, s = signed.meta[:32], int.from_bytes(signed.meta[32:], "big")
    # (r, n - s) is the same signature mathematically; libsecp256k1 refuses it.
    high = replace(signed, meta=r + (SECP256K1_ORDER - s).to_bytes(32, "big"))
    with pytest.raises(HighSSignature):
        check_signed_message(PUBSUB, high, pair.public_key, TS)


@pytest.mark.parametrize("length", [0, 1, 63, 65])
def test_bad_signature_length(pair: ShardKeyPair, length: int) -> None:
    msg = replace(MESSAGE, meta=b"\x01" * length)
    with pytest.raises(BadSignatureLength):
        check_signed_message(PUBSUB, msg, pair.public_key, TS)


def test_65_byte_recoverable_form_is_not_accepted(pair: ShardKeyPair) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    with pytest.raises(BadSignatureLength):
        check_signed_message(
            PUBSUB, replace(signed, meta=signed.meta + b"\x00"), pair.public_key, TS
        )


@pytest.mark.parametrize(
    "meta",
    [
        bytes(64),
        b"\x00" * 32 + b"\x01" * 32,
        SECP256K1_ORDER.to_bytes(32, "big") + b"\x01" * 32,
        b"\x01" * 32 + SECP256K1_ORDER.to_bytes(32, "big"),
    ],
)
def test_malformed_signature_values(pair: ShardKeyPair, meta: bytes) -> None:
    with pytest.raises(MalformedSignature):
        check_signed_message(PUBSUB, replace(MESSAGE, meta=meta), pair.public_key, TS)


def test_timestamp_zero_is_rejected_before_the_signature(pair: ShardKeyPair) -> None:
    msg = replace(MESSAGE, timestamp=0, meta=pair.signature(PUBSUB, replace(MESSAGE, timestamp=0)))
    with pytest.raises(MissingTimestamp):
        check_signed_message(PUBSUB, msg, pair.public_key, TS)
    with pytest.raises(MissingTimestamp):
        pair.sign(PUBSUB, replace(MESSAGE, timestamp=0))


@pytest.mark.parametrize(
    ("offset_ns", "accepted"),
    [
        (0, True),
        (5 * MINUTE_NS, True),
        (-5 * MINUTE_NS, True),
        (5 * MINUTE_NS + 1, False),
        (-5 * MINUTE_NS - 1, False),
        (60 * MINUTE_NS, False),
    ],
)
def test_timestamp_window(pair: ShardKeyPair, offset_ns: int, accepted: bool) -> None:
    signed = pair.sign(PUBSUB, MESSAGE)
    now = TS + offset_ns
    if accepted:
        check_signed_message(PUBSUB, signed, pair.public_key, now)
    else:
        with pytest.raises(TimestampOutOfWindow):
            check_signed_message(PUBSUB, signed, pair.public_key, now)
    assert TIMESTAMP_WINDOW_NS == 5 * MINUTE_NS


def test_reasons_are_distinct() -> None:
    classes = [
        InvalidShardKey,
        MissingTimestamp,
        TimestampOutOfWindow,
        BadSignatureLength,
        MalformedSignature,
        HighSSignature,
        WrongSignature,
    ]
    assert len({c.reason for c in classes}) == len(classes)
    assert all(issubclass(c, ProtectedShardError) for c in classes)


@settings(max_examples=50)
@given(meta=st.binary(min_size=64, max_size=64), payload=st.binary(min_size=1, max_size=64))
def test_random_signatures_only_raise_typed_errors(meta: bytes, payload: bytes) -> None:
    pair = ShardKeyPair.from_hex(SECRET)
    msg = WakuMessage(payload, "/a/1/b/c", timestamp=TS, meta=meta)
    with pytest.raises(ProtectedShardError):
        check_signed_message(PUBSUB, msg, pair.public_key, TS)


@settings(max_examples=30)
@given(payload=st.binary(max_size=200), ephemeral=st.booleans(), ts=st.integers(1, 2**63 - 1))
def test_every_signature_is_low_s_and_verifies(payload: bytes, ephemeral: bool, ts: int) -> None:
    pair = ShardKeyPair.from_hex(SECRET)
    msg = WakuMessage(payload, "/a/1/b/c", timestamp=ts, ephemeral=ephemeral)
    signed = pair.sign(PUBSUB, msg)
    assert int.from_bytes(signed.meta[32:], "big") <= SECP256K1_ORDER // 2
    check_signed_message(PUBSUB, signed, pair.public_key, ts)
