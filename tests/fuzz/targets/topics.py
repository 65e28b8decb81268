"""Pubsub and content topics (chat/waku/topics.py): every topic a peer names in a store
query, filter subscription or light push request is parsed here."""

from __future__ import annotations

from chat.waku.topics import ContentTopic, RelayShard, TopicError
from fuzz.contract import Target, round_trip


def fuzz_topics(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        shard = RelayShard.parse(text)
    except TopicError:
        pass
    else:
        round_trip(shard, RelayShard.parse(shard.pubsub_topic))
    try:
        topic = ContentTopic.parse(text)
    except TopicError:
        return
    round_trip(topic, ContentTopic.parse(str(topic)))
    topic.autoshard(8)


TARGETS = (
    Target(
        name="topics",
        decoder="chat.waku.topics.RelayShard.parse, ContentTopic.parse (+ autoshard)",
        contract="TopicError only; parse(str(t)) == t",
        fuzz=fuzz_topics,
        seeds=lambda: [
            b"/waku/2/rs/42/0",
            b"/waku/2/rs/65535/1023",
            b"/chinwag/1/dm-abc/proto",
            b"/0/app/1/name/json",
        ],
        max_len=512,
    ),
)
