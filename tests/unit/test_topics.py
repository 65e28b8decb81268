"""Static shard topics, content topics and every autosharding vector in waku-wire.md §4."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.topics import (
    ContentTopic,
    InvalidContentTopic,
    InvalidPubsubTopic,
    InvalidShardCount,
    RelayShard,
    TopicError,
    UnsupportedGeneration,
    autoshard,
    format_pubsub_topic,
    parse_content_topic,
    parse_pubsub_topic,
)

# --- static shard pubsub topics ---------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "cluster", "shard"),
    [
        ("/waku/2/rs/0/0", 0, 0),
        ("/waku/2/rs/42/1", 42, 1),
        ("/waku/2/rs/16/32", 16, 32),
        ("/waku/2/rs/65535/1023", 65535, 1023),
    ],
)
def test_shard_topic_round_trip(topic: str, cluster: int, shard: int) -> None:
    parsed = parse_pubsub_topic(topic)
    assert parsed == RelayShard(cluster, shard)
    assert parsed.pubsub_topic == topic == str(parsed)
    assert format_pubsub_topic(cluster, shard) == topic


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "/waku/2/rs",
        "/waku/2/rs/",
        "/waku/2/rs/42",
        "/waku/2/rs/42/",
        "/waku/2/rs//1",
        "/waku/2/rs/42/1/",
        "/waku/2/rs/42/1/2",
        "/waku/2/rs/65536/0",  # cluster over uint16
        "/waku/2/rs/42/1024",  # shard over MaxShardIndex
        "/waku/2/rs/-1/0",
        "/waku/2/rs/+1/0",
        "/waku/2/rs/ 1/0",
        "/waku/2/rs/1 /0",
        "/waku/2/rs/01/0",  # leading zero: not canonical
        "/waku/2/rs/1/00",
        "/waku/2/rs/1/0x1",
        "/waku/2/rs/\u0661/0",  # Arabic-Indic one: int() would take it
        "/waku/2/rs/1/\u00b2",  # superscript two: isdigit() would take it
        "/waku/2/rs/1/0\n",
        "/waku/2/default-waku/proto",  # named sharding is deprecated
        "/WAKU/2/rs/1/0",
        "waku/2/rs/1/0",
        "/waku/2/rs/" + "9" * 5000 + "/0",  # int() would raise a plain ValueError here
    ],
)
def test_malformed_shard_topics(topic: str) -> None:
    with pytest.raises(InvalidPubsubTopic):
        parse_pubsub_topic(topic)


@pytest.mark.parametrize(("cluster", "shard"), [(-1, 0), (65536, 0), (0, -1), (0, 1024)])
def test_shard_out_of_range_cannot_be_built(cluster: int, shard: int) -> None:
    with pytest.raises(InvalidPubsubTopic):
        RelayShard(cluster, shard)


@given(st.integers(0, 65535), st.integers(0, 1023))
def test_every_valid_shard_round_trips(cluster: int, shard: int) -> None:
    assert parse_pubsub_topic(format_pubsub_topic(cluster, shard)) == RelayShard(cluster, shard)


@given(st.text(max_size=40))
def test_pubsub_parsing_raises_only_topic_errors(text: str) -> None:
    for candidate in (text, "/waku/2/rs/" + text):
        try:
            shard = parse_pubsub_topic(candidate)
        except TopicError:
            continue
        assert shard.pubsub_topic == candidate


# --- content topics ---------------------------------------------------------------------


def test_content_topic_without_generation() -> None:
    topic = parse_content_topic("/toychat/2/huilong/proto")
    assert topic == ContentTopic("toychat", "2", "huilong", "proto")
    assert topic.generation is None
    assert str(topic) == "/toychat/2/huilong/proto"


def test_content_topic_with_generation_zero() -> None:
    topic = parse_content_topic("/0/toychat/2/huilong/proto")
    assert topic == ContentTopic("toychat", "2", "huilong", "proto", generation=0)
    assert str(topic) == "/0/toychat/2/huilong/proto"


def test_status_style_content_topic() -> None:
    topic = parse_content_topic("/waku/1/0x01020304/rfc26")
    assert (topic.application, topic.version, topic.name, topic.encoding) == (
        "waku",
        "1",
        "0x01020304",
        "rfc26",
    )


@pytest.mark.parametrize("topic", ["/1/toychat/2/huilong/proto", "/7/a/b/c/d", "/10/a/b/c/d"])
def test_generation_other_than_zero_is_unsupported(topic: str) -> None:
    with pytest.raises(UnsupportedGeneration):
        parse_content_topic(topic)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "/",
        "toychat/2/huilong/proto",
        "/toychat/2/huilong",
        "/toychat/2/huilong/proto/",
        "/toychat//huilong/proto",
        "//toychat/2/huilong/proto",
        "/x/toychat/2/huilong/proto",  # generation must be a number
        "/00/toychat/2/huilong/proto",
        "/-0/toychat/2/huilong/proto",
        "/0/toychat/2/huilong/proto/extra",
        "/a/b/c/d/e/f/g",
        "/" + "9" * 5000 + "/a/b/c/d",
        "/" + "/" * 10000,
    ],
)
def test_malformed_content_topics(topic: str) -> None:
    with pytest.raises(InvalidContentTopic):
        parse_content_topic(topic)


@given(st.text(max_size=60))
def test_content_parsing_raises_only_topic_errors(text: str) -> None:
    for candidate in (text, "/" + text, "/0/" + text):
        try:
            topic = parse_content_topic(candidate)
        except TopicError:
            continue
        assert str(topic) == candidate


@given(
    st.lists(st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s), min_size=4, max_size=4)
)
def test_content_topics_round_trip(parts: list[str]) -> None:
    for text in ("/" + "/".join(parts), "/0/" + "/".join(parts)):
        assert str(parse_content_topic(text)) == text


# --- autosharding (waku-wire.md §4) -------------------------------------------------------


def test_spec_example_hash_and_shard() -> None:
    digest = hashlib.sha256(b"myapp" + b"1").digest()
    assert digest.hex() == "8e541178adbd8126068c47be6a221d77d64837221893a8e4e53139fb802d4928"
    assert ContentTopic("myapp", "1", "chat", "proto").autoshard(8) == 0


@pytest.mark.parametrize(
    ("topic", "shard"),
    [
        # nwaku tests/waku_core/topics/test_sharding.nim, cluster 1, 8 shards
        ("/toychat/2/huilong/proto", 3),
        ("/0/toychat/2/huilong/proto", 3),
        ("/toychat2/2/huilong/proto", 6),
        ("/toychat/2/huilong/proto2", 3),
        ("/0/toychat/4/huilong/proto2", 7),
        # [DERIVED]
        ("/waku/1/0x01020304/rfc26", 4),
    ],
)
def test_autoshard_vectors_eight_shards(topic: str, shard: int) -> None:
    assert autoshard(topic, 1, 8) == RelayShard(1, shard)
    assert autoshard(topic, 1, 8).pubsub_topic == f"/waku/2/rs/1/{shard}"


def test_autoshard_uses_last_eight_bytes_with_non_power_of_two_count() -> None:
    # [DERIVED] vector: the last 8 bytes give 1, the whole hash mod 5 would give 2.
    topic = parse_content_topic("/toychat/2/huilong/proto")
    assert topic.autoshard(5) == 1
    whole = int.from_bytes(hashlib.sha256(b"toychat2").digest(), "big")
    assert whole % 5 == 2


def test_autoshard_ignores_name_and_encoding() -> None:
    assert autoshard("/myapp/1/a/b", 42, 64) == autoshard("/myapp/1/zzz/rfc26", 42, 64)


def test_single_shard_network_maps_everything_to_zero() -> None:
    assert autoshard("/toychat2/2/huilong/proto", 0, 1) == RelayShard(0, 0)


@pytest.mark.parametrize("count", [0, -1, 1025])
def test_shard_count_bounds(count: int) -> None:
    with pytest.raises(InvalidShardCount):
        ContentTopic("a", "1", "b", "c").autoshard(count)


def test_autoshard_rejects_bad_topic_with_topic_error() -> None:
    with pytest.raises(TopicError):
        autoshard("/not-a-topic", 1, 8)
