"""The conversation pipeline's pluggable parts, and the conversations the pipeline serves.

Every conversation kind goes through one pipeline (docs/architecture.md, "How a conversation
kind plugs in"):

    send:     app payload -> SDS frame -> crypto.seal -> WakuMessage on the conversation's
              content topic and shard -> transport.publish
    receive:  transport -> dedupe by Waku hash -> crypto.open -> the authenticated sender
              must be a member and the SDS sender -> SDS (dedupe by id, order, acks) -> app

What differs between kinds is three parts, each a small interface here:

- `ConversationCrypto` seals frames for the members and opens what they sent, proving who
  sent it (1:1: pairwise Olm; next: a group key, a community key).
- `Membership` says which member a proven key belongs to, and who the other members are
  now: a message is delivered when every member it was sent to who is still one has
  acknowledged it (1:1: the one contact; a group: k of n, persisted per message).
- `Transport` puts a WakuMessage on the network (relay today; light push next). It is the
  profile's, shared by every conversation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chat.reliability.store_checks import NS
from chat.waku.bandwidth import MessageKinds
from chat.waku.message import WakuMessage


class SealFailed(Exception):
    """The crypto cannot seal for this conversation now: a sentence for the trace.
    `permanent` when trying again cannot help (the recipient is no longer a member)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class OpenRefused(Exception):
    """A received payload the crypto refuses (undecodable, tampered, replayed, not for us)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PublishFailed(Exception):
    """The transport did not get a message onto the network. `permanent` when sending the
    same bytes again cannot help (too large, invalid)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Unsealed:
    """What a conversation's crypto opened."""

    sender_key: bytes
    """The key the crypto proved the sender holds."""
    frame: bytes | None
    """An SDS frame, for the pipeline; None for a message the kind handles itself."""
    detail: Any = None
    """The kind's own decoded payload (1:1: a chat.direct.Opened), for its control messages."""
    assume_delivered: tuple[str, ...] = ()
    """SDS message ids this conversation can never deliver to us (a group: what was sent
    before we joined): frames must not wait for them."""


class ConversationCrypto(Protocol):
    name: str
    """Names the crypto in reasons ('an SDS frame whose sender is not the Olm-authenticated
    sender')."""

    def seal(self, frame: bytes) -> bytes:
        """An SDS frame sealed for the members: a WakuMessage payload. Raises SealFailed.
        The crypto's state may move: it is saved before the bytes leave."""
        ...

    def open(self, message: WakuMessage) -> Unsealed | None:
        """Open a received message; None when it is our own (echoed by relay or listed by a
        store). Raises OpenRefused."""
        ...


class Membership(Protocol):
    def member_of(self, sender_key: bytes) -> str | None:
        """The member (their SDS sender id) whose key the crypto proved, None for anyone else."""
        ...

    def members(self) -> frozenset[str]:
        """The other members now (their SDS sender ids): whom a new message is sent to, and
        whose acknowledgements a pending one still waits for (one who left is not)."""
        ...

    def acknowledged(self, member: str, message_id: str) -> None:
        """A member's SDS traffic named one of our messages (the crypto may learn from it
        that they hold a key)."""
        ...


class Transport(Protocol):
    def publish(self, pubsub_topic: str, message: WakuMessage) -> dict[str, Any]:
        """Put the message on the network; returns the evidence that it got there (relay:
        the peers reached). Raises PublishFailed."""
        ...

    def reachable(self, pubsub_topic: str) -> bool:
        """Whether a publish on this topic could reach anyone now (relay: a peer on it)."""
        ...


ControlHandler = Callable[["Conversation", Unsealed], Awaitable[None]]
"""A kind's handler for what its crypto opened that is not an SDS frame. Under the lock."""


@dataclass(frozen=True, slots=True)
class Content:
    """What a delivered content frame shows in the conversation."""

    message_id: str
    text: str
    sent_at_ms: int
    reply_to: str = ""
    kind: str = "text"
    """'text', or 'system' (a line about the chat: a join, a leave, a rename)."""


ContentReader = Callable[["Conversation", bytes, str, str], Awaitable[Content | None]]
"""A kind's reader of a content frame: (conversation, frame content, SDS message id, SDS
sender) -> what to show, or None when it refused it (it said why with `reject`). Under the
lock. Without one, the content is a ChatMessage (chat/proto/direct.proto)."""


@dataclass(frozen=True)
class Conversation:
    id: str
    """Also the SDS channel id."""
    kind: str
    """As stored (storage.repositories.conversations): 'direct', later 'group', 'community'."""
    pubsub_topic: str
    content_topic: str
    crypto: ConversationCrypto
    membership: Membership
    on_control: ControlHandler
    read_content: ContentReader | None = None


class Conversations:
    """The conversations the pipeline serves, by id and by content topic."""

    def __init__(self, kinds: MessageKinds | None = None) -> None:
        self._by_id: dict[str, Conversation] = {}
        self._by_topic: dict[str, Conversation] = {}
        self._kinds = kinds
        """The bandwidth meter's classifier: a conversation's topic carries chat messages."""

    def add(self, conversation: Conversation) -> None:
        self._by_id[conversation.id] = conversation
        self._by_topic[conversation.content_topic] = conversation
        if self._kinds is not None:
            self._kinds.set_topic(conversation.content_topic, "chat")

    def of_kind(self, kind: str) -> list[Conversation]:
        return [c for c in self._by_id.values() if c.kind == kind]

    def get(self, conversation_id: str) -> Conversation | None:
        return self._by_id.get(conversation_id)

    def by_topic(self, content_topic: str) -> Conversation | None:
        return self._by_topic.get(content_topic)


def waku_message(content_topic: str, payload: bytes, now: float) -> WakuMessage:
    """A sealed payload as it goes on the wire."""
    return WakuMessage(payload=payload, content_topic=content_topic, timestamp=int(now * NS))
