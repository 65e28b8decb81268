"""WakuMessage and the relay validator pipeline (chat/waku/message.py, validation.py,
protected.py): the decode every relayed, stored, pushed or light-pushed message goes through,
and protected-shard signatures with the shard keys they are checked against."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from chat.waku.message import MessageError, WakuMessage
from chat.waku.protected import InvalidShardKey, ShardKeyPair, ShardPublicKey
from chat.waku.validation import Outcome, RelayValidator
from fuzz.contract import Target, check, round_trip

NOW_NS = 1_700_000_000 * 10**9
OPEN_TOPIC = "/waku/2/rs/42/0"
PROTECTED_TOPIC = "/waku/2/rs/42/7"
TOPICS = (OPEN_TOPIC, PROTECTED_TOPIC)


@cache
def shard_key() -> ShardKeyPair:
    return ShardKeyPair.from_secret_bytes(bytes(range(1, 33)))


def sample_messages() -> list[WakuMessage]:
    """Real messages: plain, with every optional field, and one signed for the protected shard."""
    plain = WakuMessage(b"hello", "/chinwag/1/dm-abc/proto", timestamp=NOW_NS)
    full = WakuMessage(
        b"\x00" * 40,
        "/app/1/name/proto",
        version=1,
        timestamp=NOW_NS - 1,
        meta=b"m" * 64,
        rate_limit_proof=b"proof",
        ephemeral=True,
    )
    signed = shard_key().sign(PROTECTED_TOPIC, WakuMessage(b"sig", "/a/1/b/c", timestamp=NOW_NS))
    return [plain, full, signed, WakuMessage(b"", "")]


def fuzz_message(data: bytes) -> None:
    try:
        message = WakuMessage.decode(data)
    except MessageError:
        return
    round_trip(message, WakuMessage.decode(message.encode()))
    check(len(message.hash(OPEN_TOPIC)) == 32, "hash is not 32 bytes")


@cache
def validator() -> RelayValidator:
    return RelayValidator(lambda: NOW_NS, protected={PROTECTED_TOPIC: shard_key().public_key})


def fuzz_validator(data: bytes) -> None:
    if not data:
        return
    topic = TOPICS[data[0] % 2]
    verdict = validator()(topic, data[1:], "peer")
    if verdict.outcome is Outcome.ACCEPT:
        check(verdict.message is not None, "accepted without the decoded message")
    else:
        check(bool(verdict.reason), "a refusal without a reason")


def _validator_seeds() -> Iterable[bytes]:
    for index, message in enumerate(sample_messages()):
        yield bytes([index % 2]) + message.encode()
    yield b"\x01" + sample_messages()[2].encode()


def fuzz_shard_key(data: bytes) -> None:
    """Shard keys come as hex from flags and community descriptions, and as bytes."""
    text = data.decode("utf-8", errors="replace")
    for parse in (ShardPublicKey.from_hex, ShardKeyPair.from_hex):
        try:
            parse(text)
        except InvalidShardKey:
            pass
    try:
        key = ShardPublicKey.from_bytes(data)
    except InvalidShardKey:
        return
    round_trip(key, ShardPublicKey.from_bytes(key.to_bytes(compressed=False)))


def _key_seeds() -> Iterable[bytes]:
    public = shard_key().public_key
    yield public.to_bytes()
    yield public.to_bytes(compressed=False)
    yield public.to_hex().encode()
    yield ("0x" + shard_key().secret_hex()).encode()


TARGETS = (
    Target(
        name="waku_message",
        decoder="chat.waku.message.WakuMessage.decode",
        contract="MessageError only; decode(encode(m)) == m; hash is 32 bytes",
        fuzz=fuzz_message,
        seeds=lambda: [m.encode() for m in sample_messages()],
    ),
    Target(
        name="relay_validator",
        decoder="chat.waku.validation.RelayValidator (size, decode, protected-shard signature, "
        "timestamp)",
        contract="never raises: every input gets a verdict; refusals carry a reason",
        fuzz=fuzz_validator,
        seeds=_validator_seeds,
    ),
    Target(
        name="shard_key",
        decoder="chat.waku.protected.ShardPublicKey.from_bytes/from_hex, ShardKeyPair.from_hex",
        contract="InvalidShardKey only; a parsed key re-encodes to itself",
        fuzz=fuzz_shard_key,
        seeds=_key_seeds,
        max_len=256,
    ),
)
