"""The relay validator pipeline: order of checks, verdicts, counters, and the publisher's signer."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE, WakuMessage
from chat.waku.protected import MissingTimestamp, ShardKeyPair
from chat.waku.validation import (
    DEFAULT_MAX_CLOCK_SKEW_NS,
    Outcome,
    RelayValidator,
    ShardSigner,
    Verdict,
)

NOW = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
OPEN = "/waku/2/rs/42/0"
COMMUNITY = "/waku/2/rs/42/7"
PAIR = ShardKeyPair.from_hex("5526a8990317c9b7b58d07843d270f9cd1d9aaee129294c1c478abf7261dd9e6")


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def message(ts: int = NOW, payload: bytes = b"hi there") -> WakuMessage:
    return WakuMessage(payload, "/chinwag/1/test/proto", timestamp=ts)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def validator(clock: Clock) -> RelayValidator:
    return RelayValidator(clock, protected={COMMUNITY: PAIR.public_key})


def test_plain_message_is_accepted_with_its_decoded_form(validator: RelayValidator) -> None:
    msg = message()
    verdict = validator(OPEN, msg.encode(), "peer-a")
    assert verdict == Verdict(Outcome.ACCEPT)
    assert verdict.accepted and verdict.message == msg
    assert validator.counters() == {"accepted": 1}


def test_size_is_checked_first_and_is_configurable(clock: Clock) -> None:
    small = RelayValidator(clock, max_message_size=120)
    fits = message(payload=b"x" * 80).encode()
    assert len(fits) <= 120
    assert small(OPEN, fits).accepted
    # Over the limit and not even a protobuf: size wins, decode never runs.
    verdict = small(OPEN, b"\xff" * 121)
    assert verdict == Verdict(Outcome.REJECT, "too_large")
    default = RelayValidator(clock)
    assert default.max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 150 * 1024
    at_limit = message(payload=b"x" * (DEFAULT_MAX_MESSAGE_SIZE - 100))
    assert len(at_limit.encode()) <= DEFAULT_MAX_MESSAGE_SIZE
    assert default(OPEN, at_limit.encode()).accepted
    over = message(payload=b"x" * DEFAULT_MAX_MESSAGE_SIZE)
    assert default(OPEN, over.encode()).reason == "too_large"


@pytest.mark.parametrize("data", [b"\xff", b"\x0a\x05hi", b"\x5a\x41" + b"m" * 65])
def test_undecodable_is_rejected(validator: RelayValidator, data: bytes) -> None:
    assert validator(OPEN, data) == Verdict(Outcome.REJECT, "undecodable")


def test_decode_comes_before_the_signature_check(validator: RelayValidator) -> None:
    assert validator(COMMUNITY, b"\xff").reason == "undecodable"


def test_signed_message_passes_on_protected_shard(validator: RelayValidator) -> None:
    signed = PAIR.sign(COMMUNITY, message())
    assert validator(COMMUNITY, signed.encode()).accepted


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: message(), "signature_length"),
        (lambda: ShardKeyPair.generate().sign(COMMUNITY, message()), "signature_mismatch"),
        (lambda: PAIR.sign(OPEN, message()), "signature_mismatch"),  # signed for another shard
        (
            lambda: replace(PAIR.sign(COMMUNITY, message()), payload=b"tampered"),
            "signature_mismatch",
        ),
        (lambda: message(ts=0), "signed_no_timestamp"),
        (
            lambda: PAIR.sign(COMMUNITY, message(ts=NOW - 6 * 60 * SECOND)),
            "signed_timestamp_out_of_window",
        ),
        (
            lambda: PAIR.sign(COMMUNITY, message(ts=NOW + 6 * 60 * SECOND)),
            "signed_timestamp_out_of_window",
        ),
    ],
)
def test_protected_shard_rejections(validator: RelayValidator, make: object, reason: str) -> None:
    assert callable(make)
    msg: WakuMessage = make()
    verdict = validator(COMMUNITY, msg.encode(), "peer-b")
    assert verdict == Verdict(Outcome.REJECT, reason)
    assert validator.rejected[reason] == 1


def test_high_s_signature_is_rejected(validator: RelayValidator) -> None:
    signed = PAIR.sign(COMMUNITY, message())
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signed.meta[32:], "big")
    high = replace(signed, meta=signed.meta[:32] + (order - s).to_bytes(32, "big"))
    assert validator(COMMUNITY, high.encode()).reason == "signature_high_s"


def test_unprotected_shard_ignores_meta(validator: RelayValidator) -> None:
    msg = replace(message(), meta=b"not a signature")
    assert validator(OPEN, msg.encode()).accepted


def test_protect_and_unprotect_at_runtime(validator: RelayValidator) -> None:
    data = message().encode()
    assert validator(OPEN, data).accepted
    validator.protect(OPEN, PAIR.public_key)
    assert validator.is_protected(OPEN)
    assert validator(OPEN, data).reason == "signature_length"
    validator.unprotect(OPEN)
    assert validator(OPEN, data).accepted


def test_timestamp_zero_is_rejected(validator: RelayValidator) -> None:
    assert validator(OPEN, message(ts=0).encode()) == Verdict(Outcome.REJECT, "timestamp_missing")


@pytest.mark.parametrize(
    ("offset", "outcome"),
    [
        (0, Outcome.ACCEPT),
        (DEFAULT_MAX_CLOCK_SKEW_NS, Outcome.ACCEPT),
        (-DEFAULT_MAX_CLOCK_SKEW_NS, Outcome.ACCEPT),
        (DEFAULT_MAX_CLOCK_SKEW_NS + 1, Outcome.IGNORE),
        (-DEFAULT_MAX_CLOCK_SKEW_NS - 1, Outcome.IGNORE),
        (-3600 * SECOND, Outcome.IGNORE),
    ],
)
def test_timestamp_window_ignores_without_blame(
    validator: RelayValidator, offset: int, outcome: Outcome
) -> None:
    verdict = validator(OPEN, message(ts=NOW + offset).encode())
    assert verdict.outcome is outcome
    if outcome is Outcome.IGNORE:
        assert verdict.reason == "timestamp_out_of_window"
        assert validator.ignored["timestamp_out_of_window"] == 1
        assert not validator.rejected


def test_clock_is_read_per_message(clock: Clock, validator: RelayValidator) -> None:
    data = message().encode()
    assert validator(OPEN, data).accepted
    clock.now += DEFAULT_MAX_CLOCK_SKEW_NS + SECOND
    assert validator(OPEN, data).outcome is Outcome.IGNORE


def test_tighter_bound_is_configurable(clock: Clock) -> None:
    strict = RelayValidator(clock, max_clock_skew_ns=20 * SECOND)
    assert strict(OPEN, message(ts=NOW - 20 * SECOND).encode()).accepted
    assert strict(OPEN, message(ts=NOW - 21 * SECOND).encode()).outcome is Outcome.IGNORE


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        RelayValidator(Clock(NOW), max_message_size=0)
    with pytest.raises(ValueError):
        RelayValidator(Clock(NOW), max_clock_skew_ns=0)


def test_counters_per_reason(validator: RelayValidator) -> None:
    validator(OPEN, message().encode())
    validator(OPEN, b"\xff")
    validator(OPEN, b"\xff")
    validator(OPEN, message(ts=0).encode())
    validator(OPEN, message(ts=1).encode())
    validator(COMMUNITY, message().encode())
    assert validator.counters() == {
        "accepted": 1,
        "rejected.undecodable": 2,
        "rejected.timestamp_missing": 1,
        "rejected.signature_length": 1,
        "ignored.timestamp_out_of_window": 1,
    }


@settings(max_examples=200)
@given(data=st.binary(max_size=300), protected=st.booleans())
def test_any_bytes_give_a_verdict(data: bytes, protected: bool) -> None:
    validator = RelayValidator(Clock(NOW), protected={COMMUNITY: PAIR.public_key})
    verdict = validator(COMMUNITY if protected else OPEN, data)
    assert isinstance(verdict.outcome, Outcome)
    assert verdict.accepted == (verdict.message is not None)
    assert verdict.accepted or verdict.reason


# --- publisher side ---------------------------------------------------------------------


def test_signer_signs_only_protected_topics(validator: RelayValidator) -> None:
    signer = ShardSigner({COMMUNITY: PAIR})
    msg = message()
    assert signer.prepare(OPEN, msg) is msg
    signed = signer.prepare(COMMUNITY, msg)
    assert len(signed.meta) == 64
    assert validator(COMMUNITY, signed.encode()).accepted
    assert signer.is_protected(COMMUNITY) and not signer.is_protected(OPEN)


def test_signer_keys_change_at_runtime() -> None:
    signer = ShardSigner()
    msg = message()
    assert signer.prepare(COMMUNITY, msg).meta == b""
    signer.add_key(COMMUNITY, PAIR)
    assert signer.prepare(COMMUNITY, msg).meta == PAIR.signature(COMMUNITY, msg)
    signer.remove_key(COMMUNITY)
    assert signer.prepare(COMMUNITY, msg).meta == b""


def test_signer_refuses_timestamp_zero() -> None:
    with pytest.raises(MissingTimestamp):
        ShardSigner({COMMUNITY: PAIR}).prepare(COMMUNITY, message(ts=0))
    with pytest.raises(MissingTimestamp):
        ShardSigner().prepare(OPEN, message(ts=0))
