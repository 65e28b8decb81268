"""What travels on a community's requests topic (on the network's default shard), and the
small helpers every part of the join flow shares: an inbox that hands a topic's messages to
a handler, the publisher of the topic, and who an Olm-proven sender is in a description."""

from __future__ import annotations

import logging
from typing import Protocol

from chat.communities.answers import Answer
from chat.communities.channel import requests_content_topic
from chat.communities.description import Description
from chat.identity import ContactLink, IdentityError
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import PublishFailed, Transport, waku_message
from chat.proto import community_pb2
from chat.waku.message import WakuMessage

log = logging.getLogger(__name__)

MAX_REQUESTS_MESSAGE = 160 * 1024


class TopicInbox:
    """A content topic's messages handed to a handler (the receiver's Inbox protocol)."""

    def __init__(self, handler: object, *, urgent: bool = True) -> None:
        self._handler = handler
        self._urgent = urgent

    def urgent(self, message: WakuMessage) -> bool:
        """A requests topic carries strangers' join requests: they wait in the strangers'
        bounded lane behind contacts' messages (a flood cannot delay a chat)."""
        return self._urgent

    def shed(self, message: WakuMessage) -> None:
        return None

    async def on_message(self, message: WakuMessage) -> None:
        await self._handler(message)  # type: ignore[operator]


class AddInbox(Protocol):
    def __call__(self, content_topic: str, inbox: TopicInbox) -> None: ...


class WatchTopic(Protocol):
    async def __call__(self, pubsub_topic: str, content_topic: str) -> None: ...


class RequestsPublisher:
    """Publishes on a community's requests topic on the default shard."""

    def __init__(self, ctx: MessengerContext, transport: Transport, pubsub_topic: str) -> None:
        self._ctx = ctx
        self._transport = transport
        self.pubsub_topic = pubsub_topic

    def publish(self, community_id: str, payload: bytes) -> bool:
        message = waku_message(requests_content_topic(community_id), payload, self._ctx.clock())
        try:
            self._transport.publish(self.pubsub_topic, message)
        except PublishFailed as exc:
            log.info("community request message not published: %s", exc.reason)
            return False
        return True


def pairwise(recipient_identity_key: bytes, envelope: bytes) -> bytes:
    return community_pb2.RequestsMessage(
        recipient_identity_key=recipient_identity_key, envelope=envelope
    ).SerializeToString()


def answer_message(answer: Answer) -> bytes:
    return community_pb2.RequestsMessage(answer=answer.signed).SerializeToString()


def from_moderator(description: Description, identity_key: bytes) -> bool:
    """Whether an Olm-proven identity key is the owner's or an admin's (their links)."""
    for chat_key in description.moderators():
        member = description.member(chat_key)
        if member is None or not member.contact_link:
            continue
        try:
            if ContactLink.parse(member.contact_link).identity_key == identity_key:
                return True
        except IdentityError:
            continue
    return False


def identity_of(link_text: str) -> bytes | None:
    if not link_text:
        return None
    try:
        return ContactLink.parse(link_text).identity_key
    except IdentityError:
        return None
