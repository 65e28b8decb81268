"""Light push service decisions, sans-IO: a decoded request in, a status out.

Publishing itself is a callable the node supplies (relay), returning how many peers the
message reached; it may raise PublishRejected with a light push status. Topic derivation by
autosharding is another injected callable. Codes and descriptions follow nwaku.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chat.waku.lightpush.wire import LightPushStatus
from chat.waku.message import WakuMessage

TOO_MANY_REQUESTS_DESC = "Request rejected due to too many requests"
NO_PEERS_DESC = "No peers for topic, skipping publish"
EMPTY_TOPIC_DESC = "topic must not be empty"
STATIC_SHARDING_DESC = "pubsub topic must be given: this node does not autoshard"

Publish = Callable[[str, WakuMessage], int]
"""publish(pubsub_topic, message) -> number of relay peers it reached."""
ShardFor = Callable[[str], str | None]
"""shard_for(content_topic) -> pubsub topic, or None if the content topic is not valid."""


class PublishRejected(Exception):
    """Raised by a publish callable: the message was not relayed, for this reason."""

    def __init__(self, status: LightPushStatus, desc: str) -> None:
        super().__init__(desc)
        self.status = status
        self.desc = desc


@dataclass(frozen=True, slots=True)
class Outcome:
    status: LightPushStatus
    desc: str | None = None
    relay_peer_count: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is LightPushStatus.SUCCESS


def push(
    publish: Publish,
    shard_for: ShardFor | None,
    pubsub_topic: str | None,
    message: WakuMessage,
) -> Outcome:
    """What a light push service node answers for one valid request."""
    if pubsub_topic is None:
        if shard_for is None:
            return Outcome(LightPushStatus.INVALID_MESSAGE, STATIC_SHARDING_DESC)
        pubsub_topic = shard_for(message.content_topic)
        if pubsub_topic is None:
            return Outcome(
                LightPushStatus.INVALID_MESSAGE,
                f"Invalid content-topic: {message.content_topic!r}",
            )
    if not pubsub_topic.strip():
        return Outcome(LightPushStatus.BAD_REQUEST, EMPTY_TOPIC_DESC)
    try:
        reached = publish(pubsub_topic, message)
    except PublishRejected as rejected:
        return Outcome(rejected.status, rejected.desc)
    if reached < 1:
        # nwaku clients treat 200 without relay peers as failure; say what happened instead.
        return Outcome(LightPushStatus.NO_PEERS_TO_RELAY, NO_PEERS_DESC)
    return Outcome(LightPushStatus.SUCCESS, None, reached)
