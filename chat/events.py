"""What the messenger shows its faces: read-only views, the events it emits, its errors.

Every face (TUI, REST API, CLI) sees the messenger only through these types. Views are frozen
dataclasses of plain values (str, int, float, bool, None, dicts and lists of those), so a face
can render them directly and the REST API can serialise them with `to_json`. Times are Unix
seconds (float).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from chat.errors import UserError

if TYPE_CHECKING:
    from chat.reliability.outbox import OutboxEntry
    from storage.repositories.conversations import Conversation
    from storage.repositories.messages import StoredMessage
    from storage.repositories.recipients import Recipient


MAX_TEXT_LENGTH = 16 * 1024
"""Characters in one message (every face checks it before sending; chat.messenger refuses
more); far below the 150 KiB Waku limit after SDS and Olm."""


# ---- errors ------------------------------------------------------------------------------
class MessengerError(UserError):
    """A command that cannot be done; the message is a sentence for the user."""


class NotFound(MessengerError):
    """No such chat, contact or message (REST: 404)."""


class InvalidInput(MessengerError):
    """The command's arguments are not acceptable (REST: 400)."""


class NotPossible(MessengerError):
    """The command is understood but not possible in the current state (REST: 409)."""


class NotAllowed(NotPossible):
    """The command is understood but we may not do it: a group change by a member who is
    no admin (REST: 403). A NotPossible, so faces that catch that still do."""


# ---- views -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IdentityView:
    chat_key: str
    display_name: str
    contact_link: str


@dataclass(frozen=True, slots=True)
class ContactView:
    chat_key: str
    display_name: str
    state: str
    """A chat.contacts.RequestState value: request_sent, request_received, mutual, ..."""
    chat_id: str | None
    """The 1:1 chat, once the request is mutual."""
    intro: str
    """The intro text of the current request (theirs or ours)."""
    verified: bool
    updated_at: float
    next_send_at: float | None = None
    """When our open request is re-sent next."""
    expires_at: float | None = None
    sends: int = 0
    """How often our current request went out."""


@dataclass(frozen=True, slots=True)
class ChatView:
    id: str
    kind: str
    """'direct', 'group' or 'channel' (a community's channel)."""
    name: str
    unread: int
    last_activity_at: float
    peer_chat_key: str | None = None


@dataclass(frozen=True, slots=True)
class MessageView:
    id: str
    chat_id: str
    sender: str
    """The sender's chat key (ours for outgoing messages)."""
    text: str
    outgoing: bool
    timestamp: float
    """The sender's clock at sending time."""
    state: str
    """Outgoing: queued, sent, stored, delivered, failed. Incoming: received."""
    state_reason: str | None = None
    attempts: int = 0
    """Outgoing, still in the outbox: how much of its current budget (`budget`) is spent;
    never more than `max_attempts`, the budget's size."""
    max_attempts: int = 0
    next_attempt_at: float | None = None
    reply_to: str | None = None
    received_at: float | None = None
    kind: str = "text"
    """'text', or 'system': a line about the chat (a join, a leave, a rename), not a message
    someone wrote."""
    recipients: int = 0
    """Outgoing: how many members it was sent to (1 in a 1:1 chat)."""
    delivered_to: list[str] = field(default_factory=list)
    """Outgoing: the recipients (chat keys) who acknowledged it so far; it is delivered when
    every recipient still a member is in here ("delivered 3/5")."""
    budget: str = "attempt"
    """Which budget `attempts` counts: 'attempt' (getting it onto the network) or
    're-send' (sent; re-sent until the recipient acknowledges it)."""
    total_attempts: int = 0
    """Every attempt ever made to send it (the trace), across manual retries."""


def chat_view_of(
    conv: Conversation, *, name: str | None = None, peer: str | None = None
) -> ChatView:
    """A conversation row as the faces see it; `name` overrides the stored title (a contact's
    current display name)."""
    kind = "channel" if conv.kind == "community" else conv.kind  # stored per community
    return ChatView(
        conv.id, kind, name or conv.title, conv.unread, conv.last_activity_at / 1000, peer
    )


def message_view_of(
    stored: StoredMessage,
    entry: OutboxEntry | None = None,
    recipients: list[Recipient] | None = None,
) -> MessageView:
    """A stored message as the faces see it; an outgoing message still in the outbox takes its
    live state, reason and retry schedule from the entry, and its recipients say who has
    acknowledged it."""
    sent_to = recipients or []
    budget, used, size = entry.budget() if entry else ("attempt", 0, 0)
    return MessageView(
        id=stored.message_id,
        chat_id=stored.conversation_id,
        sender=stored.sender,
        text=stored.body,
        outgoing=stored.outgoing,
        timestamp=stored.sent_at / 1000,
        state=entry.state.value if entry else stored.state,
        state_reason=entry.reason if entry else stored.state_reason,
        attempts=used,
        max_attempts=size,
        next_attempt_at=entry.next_attempt_at if entry else None,
        reply_to=stored.reply_to or None,
        received_at=stored.received_at / 1000 if stored.received_at else None,
        kind=stored.kind,
        recipients=len(sent_to),
        delivered_to=[r.member for r in sent_to if r.acknowledged_at is not None],
        budget=budget,
        total_attempts=entry.attempts if entry else 0,
    )


@dataclass(frozen=True, slots=True)
class GroupMemberView:
    chat_key: str
    display_name: str
    """The name in the member's own (signed) contact link."""
    state: str
    """joined, invited, expired (an invitation nobody answered in time), declined, left or
    removed."""
    admin: bool = False


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str
    """Also the group's chat id (its messages go through /v1/chats/{id}/messages)."""
    name: str
    admins: list[str]
    """Chat keys of the members who may add, remove and rename (the creator first)."""
    members: list[GroupMemberView]
    """Everyone the group's membership log names, with their state."""
    creator: str
    my_state: str
    """Our own state in the group: joined, left or removed."""
    undecryptable: int = 0
    """Messages on the group's topic we could not decrypt since start (sent before we
    joined, after we left or were removed, or whose key has not reached us yet)."""


@dataclass(frozen=True, slots=True)
class InviteView:
    id: str
    group_id: str
    name: str
    """The group's name when the invitation was made."""
    from_: str
    """Who invited (a chat key); sent as `from`."""
    to: str
    """Who is invited (a chat key)."""
    direction: str
    """'received' (someone invited us) or 'sent' (we invited a contact)."""
    state: str
    """invited, joined, declined, expired, cancelled or failed (chat/groups/invites.py)."""
    expires_at: float | None
    reason: str | None = None
    """Why it failed (a sent invitation that reached nobody)."""
    created_at: float = 0.0
    updated_at: float = 0.0
    next_send_at: float | None = None
    """Sent and open: when the invitation goes out again."""
    sends: int = 0


@dataclass(frozen=True, slots=True)
class CommunityMemberView:
    chat_key: str
    display_name: str
    role: str
    """owner, admin or member."""


@dataclass(frozen=True, slots=True)
class CommunityChannelView:
    id: str
    """Also the channel's chat id (its messages go through /v1/chats/{id}/messages)."""
    name: str


@dataclass(frozen=True, slots=True)
class CommunityView:
    id: str
    name: str
    about: str
    join_policy: str
    """open or approval."""
    shard: str
    """The shard's pubsub topic (/waku/2/rs/<cluster>/<index>)."""
    protection_key: str
    """The shard's protection public key (hex, compressed secp256k1); empty: unprotected."""
    channels: list[CommunityChannelView]
    members: list[CommunityMemberView]
    my_role: str
    """owner, admin, member, or none (fetched, not joined)."""
    owner_last_seen: float | None = None
    version: int = 0
    """The description's version we hold (the newest validly signed one)."""
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class CommunityFetchView:
    community_id: str
    state: str
    """fetching, found, not_found (peers and a store node had none) or timed_out (no peer
    on its shard, or no store node)."""
    reason: str | None = None
    started_at: float = 0.0
    community: CommunityView | None = None
    """When found: the community as its description says."""


@dataclass(frozen=True, slots=True)
class CommunityRequestView:
    id: str
    community_id: str
    chat_key: str
    """The requester."""
    display_name: str
    direction: str
    """'sent' (we asked) or 'received' (someone asked a community we moderate)."""
    state: str
    """pending, accepted, declined, cancelled or expired (chat/communities/join.py)."""
    state_reason: str | None
    owner_last_seen: float | None
    expires_at: float | None
    message: str = ""
    sends: int = 0
    next_send_at: float | None = None


@dataclass(frozen=True, slots=True)
class SearchResultView:
    """A message that matches a search, with the words around the match."""

    chat_id: str
    message_id: str
    text: str
    """The whole message."""
    timestamp: float
    """The sender's clock at sending time."""
    snippet: str
    """The part of the message around the matched words ('…' where it goes on)."""
    highlights: list[tuple[int, int]]
    """Where the matched words are in `snippet`: [start, end) character offsets."""
    chat_name: str
    sender: str
    """The sender's chat key (ours for outgoing messages)."""
    outgoing: bool


@dataclass(frozen=True, slots=True)
class VerificationView:
    chat_key: str
    state: str
    """started, compare, confirmed, verified, cancelled or failed (chat/verification.py)."""
    emoji: list[tuple[str, str]]
    """Seven (emoji, name) pairs to compare, once both keys are exchanged."""
    they_confirmed: bool = False


@dataclass(frozen=True, slots=True)
class TraceStep:
    at: float
    from_state: str | None
    to_state: str
    evidence: dict[str, Any] = field(default_factory=dict)
    """What proved the step: peers reached, the store node that confirmed, the ack's source,
    the error of a failed attempt."""


@dataclass(frozen=True, slots=True)
class OutboxItemView:
    id: str
    """The message id (kind 'message') or the contact's chat key (kind 'contact_request')."""
    kind: str
    chat_id: str | None
    summary: str
    """The start of the text, or who the request is for."""
    state: str
    reason: str | None
    attempts: int
    """How much of the current budget is spent (messages: see MessageView.budget; contact
    requests: how often it went out)."""
    max_attempts: int
    next_attempt_at: float | None
    created_at: float
    budget: str = "attempt"
    """'attempt' or 're-send' (see MessageView.budget)."""
    total_attempts: int = 0
    """Every attempt ever made (across manual retries)."""


@dataclass(frozen=True, slots=True)
class HealthView:
    status: str
    """online, degraded, offline or sleeping."""
    online: bool
    peers: int
    peers_per_shard: dict[str, int]
    """Relay peers per pubsub topic."""
    store_reachable: bool | None
    """None until a store node was asked at all."""
    services: dict[str, bool]
    """Per service ('store', ...): whether its last request succeeded."""
    last_catch_up: float | None
    outbox: int
    """Messages still being worked on (queued, sent or stored); failed ones wait for the user
    and are listed by the outbox view, not counted here."""
    stranger_requests_dropped: int = 0
    """Contact requests from strangers dropped by spam protection since the profile began
    (over the rate limit or the cap; chat/request_budget.py)."""
    stranger_requests_held: int = 0
    """Requests from strangers kept, waiting for an answer (at most the cap)."""
    dialing: int = 0
    """Dials to peers under way."""
    next_dial_at: float | None = None
    """While no peer is connected: when the next known peer is dialled (at most 10 s apart;
    `Messenger.reconnect_now` dials at once). None when online, while every known peer is
    being dialled, or when no peer is known."""
    known_peers: int = 0
    """Peers chinwag knows to dial: configured (--peer, fleet, config) or discovered."""
    mode: str = "relay"
    """'relay' or 'light' (filter, light push and store from service nodes)."""
    light_services: dict[str, int] = field(default_factory=dict)
    """Light mode: filter_held, filter_wanted, push_held, push_wanted (service nodes)."""
    light_line: str = ""
    """Light mode: the services held, as the health bar shows them
    ("filter 2/2, push 2/2, store ok")."""
    enr: str = ""
    """The node's record as `enr:` text ("" before it listens)."""


@dataclass(frozen=True, slots=True)
class BandwidthLineView:
    """Bytes one protocol or relay message kind moved, since start and lately."""

    name: str
    bytes_in: int
    bytes_out: int
    messages_in: int
    """Relay message kinds: messages (control: RPCs) counted; 0 for protocols."""
    messages_out: int
    minute_in: float
    """Bytes per second over the last minute (or since start, if shorter)."""
    minute_out: float
    hour_in: float
    """Bytes per second over the last hour (or since start, if shorter)."""
    hour_out: float


@dataclass(frozen=True, slots=True)
class BandwidthView:
    """The node's bandwidth meter (chat/waku/bandwidth.py)."""

    uptime: float
    """Seconds since the node started (the windows are at most this long)."""
    protocols: list[BandwidthLineView]
    """relay, store, filter, lightpush, metadata, identify, discovery, ping, other."""
    kinds: list[BandwidthLineView]
    """Relay bytes by what they carry: control, subscriptions, chat, sync,
    contact_request, join_request, message (a content topic not classified)."""
    wire: BandwidthLineView
    """Every byte of the node's connections after their handshakes."""
    transport: BandwidthLineView
    """Wire bytes no stream carried: Noise and muxer framing."""


# ---- events ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **to_json(self)}


@dataclass(frozen=True, slots=True)
class MessageAdded(Event):
    """A message appeared in a chat: one of ours just queued, or one received."""

    kind: ClassVar[str] = "message_added"
    message: MessageView


@dataclass(frozen=True, slots=True)
class MessageUpdated(Event):
    """An outgoing message changed state (or its schedule changed)."""

    kind: ClassVar[str] = "message_updated"
    message: MessageView


@dataclass(frozen=True, slots=True)
class ContactUpdated(Event):
    kind: ClassVar[str] = "contact_updated"
    contact: ContactView


@dataclass(frozen=True, slots=True)
class ChatUpdated(Event):
    kind: ClassVar[str] = "chat_updated"
    chat: ChatView


@dataclass(frozen=True, slots=True)
class HealthUpdated(Event):
    kind: ClassVar[str] = "health_updated"
    health: HealthView


@dataclass(frozen=True, slots=True)
class VerificationUpdated(Event):
    kind: ClassVar[str] = "verification_updated"
    verification: VerificationView


@dataclass(frozen=True, slots=True)
class GroupUpdated(Event):
    """A group's members, admins or name changed (or ours in it)."""

    kind: ClassVar[str] = "group_updated"
    group: GroupView


@dataclass(frozen=True, slots=True)
class InviteUpdated(Event):
    """An invitation to a group arrived or changed state (sent or received)."""

    kind: ClassVar[str] = "invite_updated"
    invite: InviteView


@dataclass(frozen=True, slots=True)
class CommunityUpdated(Event):
    """A community's description (members, channels, keys) or our place in it changed."""

    kind: ClassVar[str] = "community_updated"
    community: CommunityView


@dataclass(frozen=True, slots=True)
class CommunityRequestUpdated(Event):
    """A join request (ours, or one to a community we moderate) arrived or changed state."""

    kind: ClassVar[str] = "community_request_updated"
    request: CommunityRequestView


@dataclass(frozen=True, slots=True)
class MessagesLost(Event):
    """Earlier messages of a chat could not be retrieved; later ones are shown without them."""

    kind: ClassVar[str] = "messages_lost"
    chat_id: str
    count: int


@dataclass(frozen=True, slots=True)
class StrangerRequestsDropped(Event):
    """Spam protection dropped contact requests from strangers (over the rate limit, or to
    keep at most the cap of them); sent at most every few seconds, with the totals. Kept
    requests may have been dropped too: read the contacts again."""

    kind: ClassVar[str] = "stranger_requests_dropped"
    dropped: int
    """Since the profile began."""
    held: int
    """Requests from strangers kept now."""


@dataclass(frozen=True, slots=True)
class Rejected(Event):
    """Something arrived that we refused (tampered, replayed, forged sender, or its handling
    failed); nothing shown."""

    kind: ClassVar[str] = "rejected"
    reason: str


def json_name(field_name: str) -> str:
    """A field's name in JSON: a Python keyword's trailing underscore dropped (`from_`)."""
    return field_name[:-1] if field_name.endswith("_") else field_name


class Subscription(trio.abc.ReceiveChannel[Event]):
    """The messenger's events for one face (`Messenger.subscribe()`), in order; iterating
    ends when the messenger stops. Close it when done (`with`, `async with` or `close()`):
    the messenger forgets it at once, instead of when it next emits an event."""

    def __init__(
        self, channel: trio.MemoryReceiveChannel[Event], forget: Callable[[], None]
    ) -> None:
        self._channel = channel
        self._forget: Callable[[], None] | None = forget

    async def receive(self) -> Event:
        return await self._channel.receive()

    def receive_nowait(self) -> Event:
        return self._channel.receive_nowait()

    def close(self) -> None:
        self._channel.close()
        if self._forget is not None:
            forget, self._forget = self._forget, None
            forget()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def to_json(view: Any) -> dict[str, Any]:
    """A view (or event) as a JSON-ready dict."""
    return dataclasses.asdict(
        view, dict_factory=lambda items: {json_name(key): value for key, value in items}
    )
