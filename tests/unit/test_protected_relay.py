"""Protected shards in the relay validator: the §10 vectors as relays receive them, tampering,
the ±5 min rule against an injected clock, key rotation, and the per-shard counters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chat.waku.message import WakuMessage
from chat.waku.protected import ShardKeyPair, ShardPublicKey
from chat.waku.relay.service import RelayService
from chat.waku.validation import Outcome, RelayValidator, ShardSigner, Verdict

# waku-wire.md §10: nwaku's validator-test key, its message, and both signatures.
SECRET = "5526a8990317c9b7b58d07843d270f9cd1d9aaee129294c1c478abf7261dd9e6"
PUBLIC = "029c5fac802da41e07e6cdf51c3b9a6351ad5e65921527f2df5b7d59fd9b56ab02"
VECTOR_TOPIC = "/waku/2/rs/16/32"
TS = 1_700_000_000_000_000_000
VECTOR_MESSAGE = WakuMessage(b"hello", "/waku/1/0x01020304/rfc26", timestamp=TS)
VECTOR_META = {
    False: "5526759f2af1a9a79e915f04d538d9fa87d8e9007a0bec2679b2683d3b49cbe2"
    "6646e500a8765d39f2377d5d42a0cd45d81f9c5283b6e274be7bdea521ebe9cc",
    True: "71f54a5d8c913dd576856806e2583a31710635914d643eb1d5f3f06054747843"
    "7a2481e9f7c237665defe6e478c3182abb2b2c3aaddd5c74979d89653826a774",
}
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
COMMUNITY = "/waku/2/rs/42/7"
OTHER_COMMUNITY = "/waku/2/rs/42/8"


class Clock:
    """Injected Unix-nanosecond time that a test moves by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def vector(ephemeral: bool) -> WakuMessage:
    """The §10 message carrying the §10 signature bytes (not ones we computed)."""
    return replace(VECTOR_MESSAGE, ephemeral=ephemeral, meta=bytes.fromhex(VECTOR_META[ephemeral]))


@pytest.mark.parametrize("ephemeral", [False, True])
def test_the_vector_signatures_are_ours_and_a_relay_accepts_them(ephemeral: bool) -> None:
    ours = ShardKeyPair.from_hex(SECRET).sign(VECTOR_TOPIC, replace(vector(ephemeral), meta=b""))
    assert ours.meta == vector(ephemeral).meta
    validator = RelayValidator(Clock(TS), protected={VECTOR_TOPIC: ShardPublicKey.from_hex(PUBLIC)})
    verdict = validator(VECTOR_TOPIC, vector(ephemeral).encode(), "peer")
    assert verdict.accepted and verdict.message == vector(ephemeral)


def _flip_last_bit(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@pytest.mark.parametrize("ephemeral", [False, True])
@pytest.mark.parametrize(
    ("tamper", "topic"),
    [
        (lambda m: replace(m, payload=b"hellO"), VECTOR_TOPIC),
        (lambda m: replace(m, content_topic="/waku/1/0x01020305/rfc26"), VECTOR_TOPIC),
        (lambda m: replace(m, timestamp=m.timestamp + 1), VECTOR_TOPIC),
        (lambda m: replace(m, ephemeral=not m.ephemeral), VECTOR_TOPIC),
        (lambda m: replace(m, meta=_flip_last_bit(m.meta)), VECTOR_TOPIC),
        (lambda m: replace(m, meta=bytes(64 - len(m.meta[:32])) + m.meta[:32]), VECTOR_TOPIC),
        (lambda m: m, "/waku/2/rs/16/33"),  # the same bytes replayed on another shard
    ],
    ids=[
        "payload",
        "content-topic",
        "timestamp",
        "ephemeral",
        "meta-bit",
        "meta-r-zero",
        "shard",
    ],
)
def test_a_tampered_vector_is_rejected(ephemeral: bool, tamper: object, topic: str) -> None:
    assert callable(tamper)
    tampered: WakuMessage = tamper(vector(ephemeral))
    key = ShardPublicKey.from_hex(PUBLIC)
    validator = RelayValidator(Clock(TS), protected={VECTOR_TOPIC: key, "/waku/2/rs/16/33": key})
    verdict = validator(topic, tampered.encode(), "peer")
    assert verdict.outcome is Outcome.REJECT
    assert verdict.reason in ("signature_mismatch", "signature_malformed")


def test_staleness_follows_the_injected_clock_both_ways() -> None:
    """One signed message, judged as our clock moves: inside ±5 min it passes, outside it is
    rejected (a reject, as nwaku and go-waku do: the forwarder is penalised)."""
    clock = Clock(TS)
    validator = RelayValidator(clock, protected={VECTOR_TOPIC: ShardPublicKey.from_hex(PUBLIC)})
    data = vector(False).encode()
    for offset, accepted in [
        (-5 * MINUTE, True),  # we are behind the sender by 5 min
        (-5 * MINUTE - 1, False),
        (0, True),
        (5 * MINUTE, True),
        (5 * MINUTE + 1, False),  # a replay 5 min and 1 ns later
        (24 * 60 * MINUTE, False),
    ]:
        clock.now = TS + offset
        verdict = validator(VECTOR_TOPIC, data, "peer")
        if accepted:
            assert verdict.accepted, offset
        else:
            assert verdict == Verdict(Outcome.REJECT, "signed_timestamp_out_of_window"), offset
    assert validator.rejected == {"signed_timestamp_out_of_window": 3}
    assert validator.protected_rejected == {(VECTOR_TOPIC, "signed_timestamp_out_of_window"): 3}


def test_rotation_rejects_the_old_key_at_once_and_accepts_the_new() -> None:
    old, new = ShardKeyPair.generate(), ShardKeyPair.generate()
    clock = Clock(TS)
    validator = RelayValidator(clock, protected={COMMUNITY: old.public_key})
    message = WakuMessage(b"hi", "/chinwag/1/community/proto", timestamp=TS)
    by_old = old.sign(COMMUNITY, message).encode()
    by_new = new.sign(COMMUNITY, replace(message, payload=b"hi again")).encode()
    assert validator(COMMUNITY, by_old).accepted
    assert validator(COMMUNITY, by_new).reason == "signature_mismatch"

    assert validator.protect(COMMUNITY, new.public_key) == old.public_key
    assert validator.protection_key(COMMUNITY) == new.public_key
    assert validator(COMMUNITY, by_old) == Verdict(Outcome.REJECT, "signature_mismatch")
    assert validator(COMMUNITY, by_new).accepted
    assert validator.key_changes == {COMMUNITY: 1}
    # Setting the same key again is not a rotation.
    assert validator.protect(COMMUNITY, new.public_key) == new.public_key
    assert validator.key_changes == {COMMUNITY: 1}


def test_rejections_are_counted_per_protected_shard_and_reason() -> None:
    pair = ShardKeyPair.generate()
    validator = RelayValidator(
        Clock(TS), protected={COMMUNITY: pair.public_key, OTHER_COMMUNITY: pair.public_key}
    )
    unsigned = WakuMessage(b"x", "/chinwag/1/c/proto", timestamp=TS)
    for _ in range(3):
        validator(COMMUNITY, unsigned.encode())
    validator(OTHER_COMMUNITY, ShardKeyPair.generate().sign(OTHER_COMMUNITY, unsigned).encode())
    validator("/waku/2/rs/42/0", b"\xff")  # an open shard's rejection is not a protected one
    assert validator.protected_rejected == {
        (COMMUNITY, "signature_length"): 3,
        (OTHER_COMMUNITY, "signature_mismatch"): 1,
    }
    assert validator.rejected == {"signature_length": 3, "signature_mismatch": 1, "undecodable": 1}


def test_relay_service_protect_and_sign_with_set_both_sides() -> None:
    """The API a messenger or a community follower uses: `protect` (verify only, or rotate),
    `sign_with` (a member: sign what we publish, verify with the pair's public key)."""
    relay = RelayService(["/waku/2/rs/42/0"], validator=RelayValidator(Clock(TS)))
    first, second = ShardKeyPair.generate(), ShardKeyPair.generate()
    relay.protect(COMMUNITY, first.public_key)
    assert (
        COMMUNITY in relay.topics and relay.validator.protection_key(COMMUNITY) == first.public_key
    )
    message = WakuMessage(b"m", "/chinwag/1/c/proto", timestamp=TS)
    with pytest.raises(ValueError, match="protected shard and this node holds no key"):
        relay.publish(COMMUNITY, message)
    relay.sign_with(COMMUNITY, second)
    assert relay.validator.protection_key(COMMUNITY) == second.public_key
    signed = relay.signer.prepare(COMMUNITY, message)
    assert relay.validator(COMMUNITY, signed.encode()).accepted
    assert relay.topics.count(COMMUNITY) == 1


def test_a_light_client_signs_without_a_relay() -> None:
    """The signer alone (for light push): only the topics it holds keys for are signed."""
    pair = ShardKeyPair.from_hex(SECRET)
    signer = ShardSigner({VECTOR_TOPIC: pair})
    signed = signer.prepare(VECTOR_TOPIC, replace(VECTOR_MESSAGE, meta=b"replaced"))
    assert signed.meta == bytes.fromhex(VECTOR_META[False])
    assert signer.prepare("/waku/2/rs/16/0", VECTOR_MESSAGE) == VECTOR_MESSAGE
