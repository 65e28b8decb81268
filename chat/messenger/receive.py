"""The receiving half of the conversation pipeline.

    transport -> is the topic ours? -> dedupe by Waku hash -> crypto.open (the sender proven)
    -> a member? -> SDS frame whose sender and channel are that member and this conversation
    -> SDS (dedupe by id, causal order, acknowledgements of ours) -> stored and shown

Input is untrusted: anything that fails to decrypt, replays, or names a sender other than
the one the crypto proved is dropped, logged and reported as a `Rejected` event; the user
never sees it. A message whose handling fails for any other reason (a bug, a failing disk) is
dropped the same way, its traceback logged: one message never ends the receive loop.
Topics that are not conversations but are read the same way (our contact-request
partition) are `Inbox`es: they get the message once it is known to be new.

What the node hands over is sorted into two lanes first (lanes.py): conversations and
answers from people we chose before strangers' requests, whose backlog is bounded.

The other timed half of receiving lives here too: a message waiting too long for an earlier
one is shown anyway, and the gap reported (`run_due`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

import trio

from chat import events as ev
from chat.client_node import Received
from chat.identity import sanitize_display_text
from chat.messenger import observed
from chat.messenger.channels import SdsChannels
from chat.messenger.config import (
    MAX_MESSAGE_ID_LENGTH,
    MAX_SENT_AT_AHEAD_MS,
    MAX_TEXT_LENGTH,
    RECEIVED_STATE,
)
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import (
    Content,
    Conversation,
    Conversations,
    OpenRefused,
    Unsealed,
)
from chat.messenger.lanes import Lanes
from chat.messenger.persist import StateWriter
from chat.messenger.sending import Sending
from chat.messenger.syncs import Syncs
from chat.proto import direct_pb2
from chat.reliability.sds import (
    Acknowledged,
    Delivered,
    Lost,
    Missing,
    SdsError,
    SdsEvent,
    SdsFrame,
)
from chat.reliability.store_checks import StoreChecks
from chat.waku.bandwidth import IN, BandwidthMeter
from chat.waku.message import WakuMessage
from chat.waku.relay.traffic import published_frame_size
from storage.repositories.messages import StoredMessage
from storage.store import Store

log = logging.getLogger(__name__)

ChatViewer = Callable[[str], Awaitable[ev.ChatView]]
NOT_A_MEMBER = {"direct": "this chat's contact", "group": "a member of this group"}
"""Who a frame's sender should have been, by conversation kind (for the rejection)."""


class Inbox(Protocol):
    def urgent(self, message: WakuMessage) -> bool:
        """Whether the message goes before the strangers' backlog: a cheap look, before
        anything is decrypted (it names someone we chose as its sender)."""
        ...

    def shed(self, message: WakuMessage) -> None:
        """A message of this inbox was dropped unopened: the strangers' lane was full.
        Under the lock."""
        ...

    async def on_message(self, message: WakuMessage) -> None:
        """A message on this inbox's topic, seen for the first time. Under the lock."""
        ...


class Receiver:
    def __init__(
        self,
        ctx: MessengerContext,
        conversations: Conversations,
        channels: SdsChannels,
        checks: StoreChecks,
        writer: StateWriter,
        sending: Sending,
        syncs: Syncs,
        chat_view: ChatViewer,
        *,
        strangers_queue: int,
        bandwidth: BandwidthMeter | None = None,
    ) -> None:
        self._ctx = ctx
        self._bandwidth = bandwidth
        """Told when a frame that came in as a chat message was a sync (receipts only)."""
        self._conversations = conversations
        self._channels = channels
        self._checks = checks
        self._writer = writer
        self._sending = sending
        self._syncs = syncs
        self._chat_view = chat_view
        self._inboxes: dict[str, Inbox] = {}
        self.lanes: Lanes[Received] = Lanes(strangers_queue)
        self._shed: list[Received] = []
        self._arrived = trio.Event()
        self._inbox_closed = False

    def add_inbox(self, content_topic: str, inbox: Inbox) -> None:
        self._inboxes[content_topic] = inbox

    # ---- the receive loop --------------------------------------------------------------------
    async def run(self, inbox: trio.MemoryReceiveChannel[Received], lock: trio.Lock) -> None:
        """Sort what the node received into the lanes, and handle it: contacts first."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sort, inbox)
            while True:
                taken = self.lanes.take()
                if taken is None:
                    if self._inbox_closed:
                        return
                    self._arrived = trio.Event()
                    await self._arrived.wait()
                    continue
                received, _ = taken
                if not self._ours(received.message.content_topic):
                    continue  # someone else's conversation: nothing to lock for
                async with lock:
                    self._count_shed()
                    await self.on_received(received)

    async def _sort(self, inbox: trio.MemoryReceiveChannel[Received]) -> None:
        """Everything waiting in the node's inbox is sorted at once (no checkpoint between),
        so a contact's message behind a thousand requests is in its lane before the next
        one is handled."""
        try:
            while True:
                self._place(await inbox.receive())
                with contextlib.suppress(trio.WouldBlock):
                    while True:
                        self._place(inbox.receive_nowait())
                self._arrived.set()
        except trio.EndOfChannel:
            pass
        finally:
            self._inbox_closed = True
            self._arrived.set()

    def _place(self, received: Received) -> None:
        request_inbox = self._inboxes.get(received.message.content_topic)
        # Not ours now may be ours by the time it is handled (the answer before it creates
        # the chat): it keeps its place among the contacts' messages.
        urgent = request_inbox is None or request_inbox.urgent(received.message)
        shed = self.lanes.put(received, urgent=urgent)
        if shed is not None and urgent:
            # Not marked handled: the periodic store scan brings it back.
            log.warning("the receive queue for contacts is full; a store scan will fill in")
        elif shed is not None:
            self._shed.append(shed)

    def _ours(self, content_topic: str) -> bool:
        return (
            content_topic in self._inboxes
            or self._conversations.by_topic(content_topic) is not None
        )

    def _count_shed(self) -> None:
        """Strangers' messages shed from their full lane, unopened: marked handled, so that
        a store scan does not bring them back, and counted by their inbox. Under the lock."""
        shed, self._shed = self._shed, []
        now = self._ctx.clock()
        for received in shed:
            self._checks.received(received.msg_hash, now)
            self._writer.handled(received.msg_hash)
            request_inbox = self._inboxes.get(received.message.content_topic)
            if request_inbox is not None:
                request_inbox.shed(received.message)

    @contextlib.contextmanager
    def _contained(self, what: str) -> Iterator[None]:
        """Whatever fails in handling one message drops that message only: logged with its
        traceback and reported as refused. Cancellation (a BaseException) passes through."""
        try:
            yield
        except Exception as exc:
            log.exception("handling %s failed; it is dropped", what)
            self._ctx.reject(
                f"{what} could not be handled ({type(exc).__name__}) and was dropped;"
                " chinwag's log has the details"
            )

    async def on_received(self, received: Received) -> None:
        """One message from relay or from a store. Under the lock."""
        with self._contained("a received message"):
            await self._on_received(received)

    async def _on_received(self, received: Received) -> None:
        now = self._ctx.clock()
        topic = received.message.content_topic
        inbox = self._inboxes.get(topic)
        conversation = self._conversations.by_topic(topic)
        if inbox is None and conversation is None:
            return  # someone else's conversation
        if await self._handled_before(received):
            return  # a copy (relay and store both, or a scan after a restart): not a replay
        self._checks.received(received.msg_hash, now)
        self._writer.handled(received.msg_hash)
        if inbox is not None:
            await inbox.on_message(received.message)
        elif conversation is not None:
            await self._on_conversation_message(conversation, received, now)

    async def _on_conversation_message(
        self, conversation: Conversation, received: Received, now: float
    ) -> None:
        try:
            unsealed = conversation.crypto.open(received.message)
        except OpenRefused as exc:
            self._ctx.reject(exc.reason)
            return
        if unsealed is None:
            return  # our own message, echoed by relay or listed by a store
        self._writer.save_later(crypto=True)
        if unsealed.frame is None:
            await conversation.on_control(conversation, unsealed)
        else:
            await self._on_frame(conversation, unsealed, unsealed.frame, received, now)

    async def _handled_before(self, received: Received) -> bool:
        if self._checks.has_received(received.msg_hash):
            return True
        if received.via != "store":  # relay dedups its own copies; the DB is for older ones
            return False
        now_ms = self._ctx.now_ms()
        msg_hash = received.msg_hash
        return await self._ctx.db.run(lambda s: s.received_hashes.seen(msg_hash, now=now_ms))

    async def _on_frame(
        self,
        conversation: Conversation,
        unsealed: Unsealed,
        frame_bytes: bytes,
        received: Received,
        now: float,
    ) -> None:
        member = conversation.membership.member_of(unsealed.sender_key)
        if member is None:
            who = NOT_A_MEMBER.get(conversation.kind, "a member of this chat")
            self._ctx.reject(f"a chat message from someone who is not {who}")
            return
        try:
            frame = SdsFrame.decode(frame_bytes)
        except SdsError as exc:
            self._ctx.reject(f"bad SDS frame: {exc}")
            return
        if frame.sender_id != member or frame.channel_id != conversation.id:
            self._ctx.reject(
                f"an SDS frame whose sender is not the {conversation.crypto.name}-authenticated"
                " sender"
            )
            return
        channel = await self._channels.get(conversation.id)
        try:
            sds_events = channel.assume_delivered(list(unsealed.assume_delivered))
            sds_events += channel.receive(frame, int(now * 1000), received.msg_hash)
        except SdsError as exc:
            self._ctx.reject(str(exc))
            return
        # Every id in the frame's history is the sender's acknowledgement (a group counts
        # each member's; the SDS channel reports only the first).
        for entry in frame.causal_history:
            await self._sending.acknowledged(
                conversation,
                entry.message_id,
                member,
                ack_by="history",
                ack_from=member,
                ack_frame=frame.message_id,
            )
        added: list[ev.MessageView] = []
        for event in sds_events:
            if isinstance(event, Delivered) and event.frame.content:
                # Each on its own: one that fails does not take the others it released.
                with self._contained("a chat message"):
                    view = await self._store_incoming(
                        conversation.id,
                        event.frame,
                        now,
                        via=received.via,
                        msg_hash=received.msg_hash,
                    )
                    if view is not None:
                        added.append(view)
            elif isinstance(event, Acknowledged) and event.by != "history":
                await self._sending.acknowledged(
                    conversation,
                    event.message_id,
                    member,
                    ack_by=event.by,
                    ack_from=member,
                    ack_frame=frame.message_id,
                )
            elif isinstance(event, Missing):
                missing = tuple(entry.message_id for entry in event.entries)
                self._ctx.note(observed.GapFound(conversation.id, missing))
                for entry in event.entries:
                    if len(entry.retrieval_hint) == 32:
                        self._checks.want(entry.retrieval_hint, now)
                self._ctx.wake_scheduler()
            elif isinstance(event, Lost):
                self._ctx.emit(ev.MessagesLost(conversation.id, len(event.entries)))
        if frame.content:
            self._syncs.soon(conversation.id, now)
        elif self._bandwidth is not None and received.via == "relay":
            size = published_frame_size(received.pubsub_topic, len(received.message.encode()))
            self._bandwidth.relabel(IN, "chat", "sync", size)
        self._writer.save_later(crypto=True, channel=conversation.id)
        for view in added:
            self._ctx.note(observed.ReceivedVia(view.id, received.via))
            self._ctx.emit(ev.MessageAdded(view))
        if added:
            self._ctx.emit(ev.ChatUpdated(await self._chat_view(conversation.id)))

    async def _store_incoming(
        self,
        conversation_id: str,
        frame: SdsFrame,
        now: float,
        *,
        via: str,
        msg_hash: bytes | None,
    ) -> ev.MessageView | None:
        """A delivered content frame as a message of the conversation; None when it is not
        one (its kind's reader refused it), or a copy of one we have (dedupe by id). `via`:
        relay, store, or sds (released after waiting, with no Waku message of its own)."""
        conversation = self._conversations.get(conversation_id)
        if conversation is not None and conversation.read_content is not None:
            body = await conversation.read_content(
                conversation, frame.content, frame.message_id, frame.sender_id
            )
        else:
            body = self.chat_message(frame.content, frame.message_id)
        if body is None:
            return None
        text = body.text
        now_ms = int(now * 1000)
        sender = frame.sender_id  # checked against the crypto when the frame arrived

        def add(store: Store) -> StoredMessage | None:
            if store.messages.by_message_id(conversation_id, body.message_id) is not None:
                return None
            # A reply keeps its reference only to a message of this chat that we hold; the
            # message itself is kept either way.
            reply_to = body.reply_to
            if reply_to and (
                len(reply_to) > MAX_MESSAGE_ID_LENGTH
                or store.messages.by_message_id(conversation_id, reply_to) is None
            ):
                log.info("a reply to a message we do not hold: shown without the reference")
                reply_to = ""
            with store.db.transaction():
                rowid = store.messages.add(
                    conversation_id=conversation_id,
                    message_id=body.message_id,
                    sender=sender,
                    outgoing=False,
                    body=text,
                    sent_at=believable_sent_at(body.sent_at_ms, now_ms),
                    state=RECEIVED_STATE,
                    now=now_ms,
                    received_at=now_ms,
                    waku_hash=msg_hash or None,
                    evidence={"via": via, "waku_hash": msg_hash.hex() if msg_hash else ""},
                    reply_to=reply_to or None,
                    kind=body.kind,
                )
                unread = 1 if body.kind == "text" else 0  # a system line is not unread
                store.conversations.touch(conversation_id, now=now_ms, unread_delta=unread)
            return store.messages.get(rowid)

        stored = await self._ctx.db.run(add)
        return None if stored is None else self._sending.view(stored)

    def chat_message(self, content: bytes, message_id: str) -> Content | None:
        return chat_message(self._ctx, content, message_id)

    # ---- the timed feature: giving up on missing messages ------------------------------------
    def next_wakeup(self) -> float | None:
        return None  # looked at on every pass of the scheduler (at least every IDLE_WAKEUP)

    async def run_due(self, now: float) -> None:
        older_than_ms = int(self._ctx.config.give_up_missing_after * 1000)
        for conversation_id, channel in self._channels.loaded():
            if channel.waiting():
                lost = channel.give_up_waiting(int(now * 1000), older_than_ms)
                if lost:
                    await self._deliver_released(conversation_id, lost, now)

    async def _deliver_released(
        self, conversation_id: str, sds_events: list[SdsEvent], now: float
    ) -> None:
        """Frames that waited for a message that never came, shown now in their order."""
        for event in sds_events:
            if isinstance(event, Lost):
                self._ctx.emit(ev.MessagesLost(conversation_id, len(event.entries)))
            elif isinstance(event, Delivered) and event.frame.content:
                with self._contained("a chat message released after waiting"):
                    view = await self._store_incoming(
                        conversation_id, event.frame, now, via="sds", msg_hash=None
                    )
                    if view is not None:
                        self._ctx.note(observed.ReceivedVia(view.id, "sds"))
                        self._ctx.emit(ev.MessageAdded(view))
        self._writer.save_later(channel=conversation_id)


def chat_message(ctx: MessengerContext, content: bytes, message_id: str) -> Content | None:
    """A frame's content as a ChatMessage (chat/proto/direct.proto), cleaned to show; None
    (refused, said why) when it is not one, or names another id than its frame."""
    try:
        body = direct_pb2.ChatMessage.FromString(content)
    except Exception:  # protobuf's DecodeError, or worse: nothing to show
        ctx.reject("a chat message whose content is not a chat message")
        return None
    if body.id != message_id:
        ctx.reject("a chat message whose id differs from its SDS id")
        return None
    text = sanitize_display_text(body.text, multiline=True)[:MAX_TEXT_LENGTH]
    return Content(body.id, text, int(body.sent_at_ms), body.reply_to)


def believable_sent_at(claimed_ms: int, now_ms: int) -> int:
    """The send time a received message is shown with: the sender's claim, unless it gives
    none (0) or one that has not come yet (more than `MAX_SENT_AT_AHEAD_MS` ahead of our
    clock, up to 2^64 - 1 on the wire, which SQLite cannot even hold): then the time it
    arrived. A past time is kept: a message may wait days in a store."""
    if claimed_ms <= 0 or claimed_ms > now_ms + MAX_SENT_AT_AHEAD_MS:
        return now_ms
    return claimed_ms
