"""Pubsub topics (static shards), content topics and autosharding (WAKU2-RELAY-SHARDING).

A static shard pubsub topic is `/waku/2/rs/<cluster>/<shard>`: cluster 0..65535, shard
0..1023, both canonical ASCII decimal (no sign, no leading zeros, no spaces), so that parsing
and formatting round-trip and two spellings never name the same shard.

A content topic is `/{application}/{version}/{name}/{encoding}`, optionally preceded by a
generation: `/{generation}/{application}/{version}/{name}/{encoding}`. Every part is
non-empty; the only generation anyone supports is 0.

Autosharding maps a content topic to a shard: SHA-256(application ‖ version), the last 8
bytes read big-endian, modulo the number of shards. nwaku, go-waku and js-waku all use the
last 8 bytes rather than the whole hash; the two differ when the count is not a power of 2.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_CLUSTER_ID = 0xFFFF
MAX_SHARD_ID = 1023
SHARD_TOPIC_PREFIX = "/waku/2/rs/"

_CANONICAL_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
# The longest valid shard topic is "/waku/2/rs/65535/1023"; anything longer is rejected
# before any splitting or integer parsing happens.
_MAX_SHARD_TOPIC_LENGTH = len(SHARD_TOPIC_PREFIX) + 5 + 1 + 4
_MAX_GENERATION_DIGITS = 3


class TopicError(ValueError):
    """A topic string or topic parameter that is not valid."""


class InvalidPubsubTopic(TopicError):
    """Not a static shard pubsub topic `/waku/2/rs/<cluster>/<shard>`."""


class InvalidContentTopic(TopicError):
    """Not a content topic of four or five non-empty `/`-separated parts."""


class UnsupportedGeneration(InvalidContentTopic):
    """A content topic whose generation is a number other than 0."""


class InvalidShardCount(TopicError):
    """An autosharding shard count outside 1..1024."""


def _parse_decimal(text: str, max_value: int, what: str, topic: str) -> int:
    if not _CANONICAL_DECIMAL.fullmatch(text):
        raise InvalidPubsubTopic(f"{topic!r}: {what} {text!r} is not a canonical decimal number")
    value = int(text)
    if value > max_value:
        raise InvalidPubsubTopic(f"{topic!r}: {what} {value} is over {max_value}")
    return value


@dataclass(frozen=True, slots=True, order=True)
class RelayShard:
    """One static shard: a cluster id and a shard index, named by its pubsub topic."""

    cluster_id: int
    shard_id: int

    def __post_init__(self) -> None:
        if not 0 <= self.cluster_id <= MAX_CLUSTER_ID:
            raise InvalidPubsubTopic(f"cluster id {self.cluster_id} is outside 0..{MAX_CLUSTER_ID}")
        if not 0 <= self.shard_id <= MAX_SHARD_ID:
            raise InvalidPubsubTopic(f"shard {self.shard_id} is outside 0..{MAX_SHARD_ID}")

    @property
    def pubsub_topic(self) -> str:
        return f"{SHARD_TOPIC_PREFIX}{self.cluster_id}/{self.shard_id}"

    def __str__(self) -> str:
        return self.pubsub_topic

    @classmethod
    def parse(cls, topic: str) -> RelayShard:
        if len(topic) > _MAX_SHARD_TOPIC_LENGTH or not topic.startswith(SHARD_TOPIC_PREFIX):
            raise InvalidPubsubTopic(f"{topic[:64]!r} is not a /waku/2/rs/<cluster>/<shard> topic")
        parts = topic[len(SHARD_TOPIC_PREFIX) :].split("/")
        if len(parts) != 2:
            raise InvalidPubsubTopic(f"{topic!r} must have exactly a cluster and a shard")
        cluster = _parse_decimal(parts[0], MAX_CLUSTER_ID, "cluster id", topic)
        shard = _parse_decimal(parts[1], MAX_SHARD_ID, "shard", topic)
        return cls(cluster, shard)


def parse_pubsub_topic(topic: str) -> RelayShard:
    return RelayShard.parse(topic)


def format_pubsub_topic(cluster_id: int, shard_id: int) -> str:
    return RelayShard(cluster_id, shard_id).pubsub_topic


@dataclass(frozen=True, slots=True)
class ContentTopic:
    """A parsed content topic; `generation` is None when the topic has no generation prefix."""

    application: str
    version: str
    name: str
    encoding: str
    generation: int | None = None

    def __post_init__(self) -> None:
        for label in ("application", "version", "name", "encoding"):
            part = getattr(self, label)
            if not part or "/" in part:
                raise InvalidContentTopic(f"content topic {label} {part!r} is empty or has '/'")
        if self.generation is not None and self.generation != 0:
            raise UnsupportedGeneration(f"content topic generation {self.generation} is not 0")

    def __str__(self) -> str:
        body = f"/{self.application}/{self.version}/{self.name}/{self.encoding}"
        return body if self.generation is None else f"/{self.generation}{body}"

    @classmethod
    def parse(cls, topic: str) -> ContentTopic:
        if not topic.startswith("/"):
            raise InvalidContentTopic(f"content topic {topic[:64]!r} does not start with '/'")
        # At most six pieces are ever needed; a topic of thousands of slashes costs no more.
        parts = topic[1:].split("/", 5)
        if len(parts) == 4:
            return cls(parts[0], parts[1], parts[2], parts[3])
        if len(parts) == 5:
            generation = parts[0]
            if len(generation) > _MAX_GENERATION_DIGITS or not _CANONICAL_DECIMAL.fullmatch(
                generation
            ):
                raise InvalidContentTopic(
                    f"content topic {topic[:64]!r}: generation {generation[:16]!r} is not a number"
                )
            return cls(parts[1], parts[2], parts[3], parts[4], generation=int(generation))
        raise InvalidContentTopic(
            f"content topic {topic[:64]!r} must have 4 parts, or 5 with a generation"
        )

    def autoshard(self, num_shards: int) -> int:
        """The shard this topic lands on in a network of `num_shards` autosharded shards."""
        if not 1 <= num_shards <= MAX_SHARD_ID + 1:
            raise InvalidShardCount(f"shard count {num_shards} is outside 1..{MAX_SHARD_ID + 1}")
        digest = hashlib.sha256(self.application.encode() + self.version.encode()).digest()
        return int.from_bytes(digest[24:32], "big") % num_shards


def parse_content_topic(topic: str) -> ContentTopic:
    return ContentTopic.parse(topic)


def autoshard(content_topic: str | ContentTopic, cluster_id: int, num_shards: int) -> RelayShard:
    """The static shard that autosharding assigns to a content topic in a cluster."""
    parsed = (
        content_topic
        if isinstance(content_topic, ContentTopic)
        else ContentTopic.parse(content_topic)
    )
    return RelayShard(cluster_id, parsed.autoshard(num_shards))
