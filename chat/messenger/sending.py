"""The sending half of the conversation pipeline, and the outbox behind it.

    app payload -> SDS frame -> outbox (committed)            `submit`
    -> crypto.seal -> state saved -> WakuMessage -> publish   `attempt`, on the outbox's schedule

An attempt has three steps: prepare it under the messenger's lock (seal, sign, count it and
save the ratchet), publish, and record the outcome under the lock. Relay's publish is
synchronous, so the three run in one go. A light push waits for a service node's answer
(seconds when nodes fail): it runs in a task of its own without the lock, at most
`MAX_PUSHES_IN_FLIGHT` at once, and its outcome is recorded only if the message is still the
same attempt (not discarded or delivered meanwhile; the outbox's `in_flight` keeps a second
attempt of it from starting).

Every step that moves a message's state records its evidence (chat/reliability/outbox.py):
'sent' when the transport took it, 'stored' when a store node lists its hash, 'delivered'
when every member it was sent to who is still a member acknowledged it in their SDS
traffic (receipts.py keeps the tally). Nothing leaves before the outbox entry and the
ratchet state are committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from chat import events as ev
from chat.history import ChatHistory
from chat.messenger import observed
from chat.messenger.channels import SdsChannels
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import (
    Conversation,
    Conversations,
    PublishFailed,
    SealFailed,
    Transport,
    waku_message,
)
from chat.messenger.olm import NOT_A_CONTACT
from chat.messenger.persist import StateWriter
from chat.messenger.receipts import Receipts
from chat.reliability import outbox as ob
from chat.reliability.store_checks import StoreChecks, Stored
from chat.waku.message import WakuMessage
from storage.errors import StorageError
from storage.repositories.messages import StoredMessage
from storage.repositories.outbox import OutboxEntry as OutboxRow
from storage.repositories.recipients import Recipient
from storage.store import Store

log = logging.getLogger(__name__)

ConfirmedPublish = Callable[[str, WakuMessage], Awaitable[dict[str, Any]]]

MAX_PUSHES_IN_FLIGHT = 8
"""Light mode: outbox pushes waiting for their answer at once, at most (each holds a stream to
one or two service nodes); further due messages wait for one to end."""


@dataclass
class OutgoingMessage:
    """What an outbox entry needs to go on the wire again."""

    rowid: int
    conversation_id: str
    pubsub_topic: str
    content_topic: str
    frame: bytes
    """The SDS frame, sealed afresh for every attempt."""


@dataclass(frozen=True)
class PreparedAttempt:
    """An attempt sealed, counted and saved, ready for the wire."""

    message_id: str
    number: int
    """The entry's attempt count when it started: the outcome must be for this attempt."""
    outgoing: OutgoingMessage
    conversation: Conversation
    message: WakuMessage
    msg_hash: bytes
    resend_for: dict[str, Any]


class Sending:
    def __init__(
        self,
        ctx: MessengerContext,
        conversations: Conversations,
        channels: SdsChannels,
        transport: Transport,
        checks: StoreChecks,
        writer: StateWriter,
        history: ChatHistory,
    ) -> None:
        self._ctx = ctx
        self._history = history
        self._conversations = conversations
        self._channels = channels
        self._transport = transport
        self._checks = checks
        self._writer = writer
        self.outbox = ob.Outbox(ctx.config.retry)
        self.outgoing: dict[str, OutgoingMessage] = {}
        self._by_hash: dict[bytes, str] = {}
        """Message id by the Waku hash of each copy we published (store evidence names it)."""
        self.receipts = Receipts()
        self.confirm: ConfirmedPublish | None = None
        """Light mode: a publish that waits for the push's answer (`sent` is its success)."""
        self.sign: Callable[[str, WakuMessage], WakuMessage] | None = None
        """The node's `signed`: the message as it will be published (MessengerNode)."""
        self.lock: trio.Lock | None = None
        """The messenger's lock, re-taken to record a confirmed push's outcome."""
        self._pushes: trio.Nursery | None = None
        self._pushing: set[str] = set()
        """Messages whose confirmed push is under way (without the lock)."""

    def attach(self, nursery: trio.Nursery | None) -> None:
        """The messenger's nursery, which owns the confirmed pushes' tasks (None: stopped)."""
        self._pushes = nursery

    def restore(
        self,
        rows: list[tuple[OutboxRow, StoredMessage | None]],
        recipients: Mapping[int, list[Recipient]],
    ) -> None:
        """The outbox as the profile kept it, with each entry's recipients and their
        acknowledgements; an entry this version cannot read is skipped."""
        for row, message in rows:
            if message is None:
                continue
            try:
                entry = ob.entry_from_json(message.message_id, row.entry)
            except ob.OutboxError as exc:
                log.warning("%s", exc)
                continue
            self.outbox.restore(entry)
            self.receipts.restore(message.message_id, recipients.get(row.message, []))
            self.outgoing[message.message_id] = OutgoingMessage(
                row.message,
                message.conversation_id,
                row.pubsub_topic,
                row.content_topic,
                row.payload,
            )

    def pending_count(self) -> int:
        return len(self.outbox.pending())

    def pushes_in_flight(self) -> frozenset[str]:
        """Messages whose light push is waiting for its answer now."""
        return frozenset(self._pushing)

    # ---- views -------------------------------------------------------------------------------
    def view(
        self, stored: StoredMessage, recipients: list[Recipient] | None = None
    ) -> ev.MessageView:
        """A stored message with its live outbox state, if it is outgoing and still there,
        and (outgoing) whom it went to and who acknowledged it."""
        entry = None
        if stored.outgoing and stored.message_id in self.outbox:
            entry = self.outbox.get(stored.message_id)
        return ev.message_view_of(stored, entry, recipients or [])

    async def views(self, page: list[StoredMessage]) -> list[ev.MessageView]:
        rowids = [m.id for m in page if m.outgoing]
        found = await self._ctx.db.run(lambda s: s.recipients.of(rowids)) if rowids else {}
        return [self.view(m, found.get(m.id)) for m in page]

    async def message(self, message_id: str) -> ev.MessageView:
        def read(store: Store) -> tuple[StoredMessage | None, list[Recipient]]:
            stored = store.messages.by_id(message_id)
            if stored is None or not stored.outgoing:
                return stored, []
            return stored, store.recipients.of([stored.id]).get(stored.id, [])

        stored, recipients = await self._ctx.db.run(read)  # one call: one checkpoint
        if stored is None:
            raise ev.NotFound(f"no message {message_id[:64]}")
        return self.view(stored, recipients)

    async def outbox_items(self) -> list[ev.OutboxItemView]:
        """Every message not delivered yet, failed ones included."""
        items: list[ev.OutboxItemView] = []
        for entry in self.outbox.undelivered():
            outgoing = self.outgoing.get(entry.message_id)
            stored = await self._ctx.db.run(_by_id(entry.message_id))
            summary = (stored.body if stored else "")[:80]
            budget, used, size = entry.budget()
            items.append(
                ev.OutboxItemView(
                    id=entry.message_id,
                    kind="message",
                    chat_id=outgoing.conversation_id if outgoing else entry.conversation_id,
                    summary=summary,
                    state=entry.state.value,
                    reason=entry.reason,
                    attempts=used,
                    max_attempts=size,
                    next_attempt_at=entry.next_attempt_at,
                    created_at=entry.created_at,
                    budget=budget,
                    total_attempts=entry.attempts,
                )
            )
        return items

    # ---- commands (under the lock) -----------------------------------------------------------
    async def submit(
        self,
        conversation: Conversation,
        message_id: str,
        content: bytes,
        *,
        text: str,
        reply_to: str | None,
        now: float,
        kind: str = "text",
        also: Callable[[Store], None] | None = None,
    ) -> ev.MessageView:
        """A new message: its SDS frame, the message row, the outbox entry and its recipients
        (the conversation's other members now), committed together with `also`. The
        scheduler makes the first attempt."""
        now_ms = int(now * 1000)
        channel = await self._channels.get(conversation.id)
        frame = channel.wrap(content, message_id, now_ms).encode()
        transition = self.outbox.enqueue(message_id, conversation.id, now)
        entry = self.outbox.get(message_id)
        sds_state = self._channels.state_row(conversation.id, now)
        sender = self._ctx.me.chat_key_text
        recipients = conversation.membership.members()

        def commit(store: Store) -> int:
            with store.db.transaction():
                rowid = store.messages.add(
                    conversation_id=conversation.id,
                    message_id=message_id,
                    sender=sender,
                    outgoing=True,
                    body=text,
                    sent_at=now_ms,
                    state=transition.new.value,
                    now=now_ms,
                    reply_to=reply_to,
                    kind=kind,
                )
                store.recipients.add(rowid, sorted(recipients))
                store.outbox.enqueue(
                    rowid,
                    pubsub_topic=conversation.pubsub_topic,
                    content_topic=conversation.content_topic,
                    payload=frame,
                    now=now_ms,
                    entry=ob.entry_to_json(entry),
                )
                store.sds_channels.save(sds_state)
                store.conversations.touch(conversation.id, now=now_ms)
                if also is not None:
                    also(store)
            return rowid

        try:
            rowid = await self._ctx.db.run(commit)
        except StorageError:
            self.outbox.discard(message_id)
            raise
        self.outgoing[message_id] = OutgoingMessage(
            rowid, conversation.id, conversation.pubsub_topic, conversation.content_topic, frame
        )
        self.receipts.sent_to(message_id, recipients)
        return await self.message(message_id)

    async def retry(self, message_id: str) -> None:
        if message_id not in self.outbox:
            stored = await self._history.message(message_id)
            if stored.state == ob.State.DELIVERED.value:
                raise ev.NotPossible("a delivered message cannot be retried")
            raise ev.NotPossible("that message is not in the outbox")
        outgoing = self.outgoing.get(message_id)
        # With no peer to take it, an attempt now would only spend the budget.
        peers = outgoing is None or self._transport.reachable(outgoing.pubsub_topic)
        try:
            transition = self.outbox.retry(message_id, self._ctx.clock(), peers=peers)
        except ob.OutboxError as exc:
            raise ev.NotPossible(str(exc)) from None
        await self.record(message_id, transition)

    def undelivered_ids(self) -> list[str]:
        return [entry.message_id for entry in self.outbox.undelivered()]

    async def discard(self, message_id: str) -> None:
        if message_id not in self.outbox:
            raise ev.NotFound(f"no message {message_id[:64]} in the outbox")
        # A push under way (light mode) may still reach the network; its answer is ignored.
        in_flight = self.outbox.get(message_id).in_flight
        self.outbox.discard(message_id)
        self.receipts.forget(message_id)
        outgoing = self.outgoing.pop(message_id)
        now_ms = self._ctx.now_ms()

        def drop(store: Store) -> None:
            with store.db.transaction():
                store.outbox.remove(outgoing.rowid)
                store.messages.record_transition(
                    outgoing.rowid,
                    ob.State.FAILED.value,
                    at=now_ms,
                    evidence={
                        "discarded_by": "user",
                        **({"push_in_flight": True} if in_flight else {}),
                    },
                    reason="discarded",
                )

        await self._ctx.db.run(drop)

    def due_now(self, states: Iterable[ob.State]) -> None:
        """Messages in these states try again now rather than after their backoff."""
        wanted = tuple(states)
        for entry in self.outbox.pending():
            if entry.state in wanted and not entry.in_flight:
                try:
                    self.outbox.retry(entry.message_id, self._ctx.clock())
                except ob.OutboxError:
                    continue

    # ---- the timed feature: attempts on the outbox's schedule ---------------------------------
    def next_wakeup(self) -> float | None:
        if len(self._pushing) >= MAX_PUSHES_IN_FLIGHT:
            return None  # a push's end wakes the scheduler
        return self.outbox.next_wakeup()

    async def run_due(self, now: float) -> None:
        for entry in self.outbox.due(now):
            if len(self._pushing) >= MAX_PUSHES_IN_FLIGHT:
                return
            if entry.message_id in self.outgoing and not entry.in_flight:
                await self.attempt(entry.message_id)

    async def attempt(self, message_id: str) -> None:
        """One attempt to put an outbox message on the wire. Under the lock; a confirmed
        (light) push continues in a task of its own, without it."""
        prepared = await self._prepare(message_id)
        if prepared is None:
            return
        topic = prepared.outgoing.pubsub_topic
        if self.confirm is not None and self._pushes is not None:
            self._pushing.add(message_id)
            self._pushes.start_soon(self._push, prepared, self.confirm)
            return
        try:
            if self.confirm is not None:  # not running: no task to hand it to
                evidence = await self.confirm(topic, prepared.message)
            else:
                evidence = self._transport.publish(topic, prepared.message)
        except PublishFailed as exc:
            await self._attempt_failed(prepared, exc)
            return
        await self._published(prepared, evidence)

    async def _prepare(self, message_id: str) -> PreparedAttempt | None:
        """Seal, sign and count the attempt, and save it with the ratchet before the bytes
        leave. None when it ended here (its outcome is recorded). Under the lock."""
        clock = self._ctx.clock
        now = clock()
        entry = self.outbox.get(message_id)
        if entry.state in (ob.State.SENT, ob.State.STORED):
            failed = self.outbox.ack_overdue(message_id, now)
            if failed is not None:
                await self.record(message_id, failed)
                return None
        outgoing = self.outgoing[message_id]
        conversation = self._conversations.get(outgoing.conversation_id)
        number = self.outbox.attempt_started(message_id)
        if conversation is None:
            await self.record(message_id, self.outbox.rejected(message_id, now, NOT_A_CONTACT))
            return None
        try:
            payload = conversation.crypto.seal(outgoing.frame)
        except SealFailed as exc:
            if exc.permanent:
                transition = self.outbox.rejected(message_id, now, exc.reason)
            else:
                transition = self.outbox.attempt_failed(message_id, now, exc.reason)
            await self.record(message_id, transition)
            return None
        message = waku_message(outgoing.content_topic, payload, clock())
        if self.sign is not None:
            # On a protected shard the signature is part of the message and of its hash:
            # the hash we track and give as the SDS retrieval hint must be the stored one.
            message = self.sign(outgoing.pubsub_topic, message)
        msg_hash = message.hash(outgoing.pubsub_topic)
        data = ob.entry_to_json(entry)
        resend_for = self._missing(conversation, message_id, entry)

        def attempt_counted(store: Store) -> None:
            store.outbox.save_entry(
                outgoing.rowid, data, attempts=entry.attempts, next_attempt_at=0
            )

        # The ratchet moved: persist it (and the attempt count) before the bytes leave.
        await self._writer.save_crypto_now(also=attempt_counted)
        return PreparedAttempt(
            message_id, number, outgoing, conversation, message, msg_hash, resend_for
        )

    async def _push(self, prepared: PreparedAttempt, confirm: ConfirmedPublish) -> None:
        """A confirmed push, without the lock; its outcome recorded under it."""
        assert self.lock is not None, "a confirmed push needs the messenger's lock"
        message_id = prepared.message_id
        try:
            failure: PublishFailed | None = None
            evidence: dict[str, Any] = {}
            try:
                evidence = await confirm(prepared.outgoing.pubsub_topic, prepared.message)
            except PublishFailed as exc:
                failure = exc
            async with self.lock:
                if not self._same_attempt(prepared):
                    await self._late_outcome(prepared, evidence, failure)
                elif failure is not None:
                    await self._attempt_failed(prepared, failure)
                else:
                    await self._published(prepared, evidence)
        finally:
            self._pushing.discard(message_id)
            self._ctx.wake_scheduler()

    async def _late_outcome(
        self, prepared: PreparedAttempt, evidence: dict[str, Any], failure: PublishFailed | None
    ) -> None:
        """The push answered after its message left the outbox. Delivered meanwhile (the
        acknowledgement overtook the push's answer): the answer is a step of its trace and
        changes nothing. Discarded: only logged. Under the lock."""
        message_id, rowid, now_ms = prepared.message_id, prepared.outgoing.rowid, self._ctx.now_ms()
        step: dict[str, Any] = {"attempt": prepared.number, "after": "acknowledgement"}
        if failure is None:
            step.update(evidence, waku_hash=prepared.msg_hash.hex())
        else:
            step["reason"] = failure.reason
        delivered = ob.State.DELIVERED.value

        def note(store: Store) -> bool:
            with store.db.transaction():
                stored = store.messages.get(rowid)
                if stored is None or stored.state != delivered:
                    return False
                store.messages.record_transition(rowid, delivered, at=now_ms, evidence=step)
            return True

        if await self._ctx.db.run(note):
            self._ctx.emit(ev.MessageUpdated(await self.message(message_id)))
        else:
            log.info("push of %s answered after it was discarded: ignored", message_id)

    def _same_attempt(self, prepared: PreparedAttempt) -> bool:
        """The message is still in the outbox, and the attempt under way is this one."""
        message_id = prepared.message_id
        if message_id not in self.outbox or self.outgoing.get(message_id) is not prepared.outgoing:
            return False
        entry = self.outbox.get(message_id)
        return entry.in_flight and entry.attempts == prepared.number

    async def _attempt_failed(self, prepared: PreparedAttempt, exc: PublishFailed) -> None:
        message_id, now = prepared.message_id, self._ctx.clock()
        if exc.permanent:
            transition = self.outbox.rejected(message_id, now, exc.reason)
        else:
            transition = self.outbox.attempt_failed(message_id, now, exc.reason)
        await self.record(message_id, transition)

    async def _published(self, prepared: PreparedAttempt, evidence: dict[str, Any]) -> None:
        clock = self._ctx.clock
        message_id, outgoing, msg_hash = prepared.message_id, prepared.outgoing, prepared.msg_hash
        transition = self.outbox.published(
            message_id,
            clock(),
            **evidence,
            **prepared.resend_for,
            attempt=prepared.number,
            waku_hash=msg_hash.hex(),
        )
        channel = await self._channels.get(outgoing.conversation_id)
        channel.mark_sent(message_id, msg_hash)
        self._checks.track(msg_hash, clock())
        self._checks.received(msg_hash, clock())
        self._by_hash[msg_hash] = message_id
        self._ctx.note(published_fact(message_id, evidence))
        await self.record(message_id, transition, sds_chat=outgoing.conversation_id)
        await self.check_delivered(prepared.conversation, message_id)

    # ---- evidence ----------------------------------------------------------------------------
    def _missing(
        self, conversation: Conversation, message_id: str, entry: ob.OutboxEntry
    ) -> dict[str, Any]:
        """A re-send's evidence: the members it is for (those still missing)."""
        if entry.state not in (ob.State.SENT, ob.State.STORED):
            return {}
        tally = self.receipts.tally(message_id, conversation.membership.members())
        return {"resent_for": list(tally.missing)} if tally.acknowledged else {}

    async def acknowledged(
        self, conversation: Conversation, message_id: str, member: str, **evidence: Any
    ) -> None:
        """A member's SDS traffic names one of our messages: their acknowledgement is
        recorded (a trace step while others are missing); delivered once every recipient
        still a member has acknowledged it. Under the lock."""
        conversation.membership.acknowledged(member, message_id)
        outgoing = self.outgoing.get(message_id)
        if outgoing is None or message_id not in self.outbox:
            return
        tally = self.receipts.acknowledge(message_id, member, conversation.membership.members())
        if tally is None:
            return
        entry = self.outbox.get(message_id)
        now_ms = self._ctx.now_ms()
        partial = not tally.complete and entry.state is not ob.State.DELIVERED
        step = {**evidence, **tally.evidence()}

        def save(store: Store) -> None:
            with store.db.transaction():
                store.recipients.acknowledge(outgoing.rowid, member, at=now_ms)
                if partial:  # a step of the trace; the state stays
                    store.messages.record_transition(
                        outgoing.rowid, entry.state.value, at=now_ms, evidence=step,
                        reason=entry.reason,
                    )  # fmt: skip

        await self._ctx.db.run(save)
        if tally.complete:
            await self._apply_evidence(message_id, "acknowledged", **step, delivered=tally.count)
        else:
            self._ctx.emit(ev.MessageUpdated(await self.message(message_id)))

    async def check_delivered(self, conversation: Conversation, message_id: str) -> None:
        """Delivered without another acknowledgement: the members it still waited for
        left, or it went to nobody (a group with no other member). Under the lock."""
        known = message_id in self.outbox and message_id in self.outgoing
        if not known or not self.receipts.knows(message_id):
            return
        entry = self.outbox.get(message_id)
        if entry.state in (ob.State.QUEUED, ob.State.DELIVERED) or entry.in_flight:
            return
        tally = self.receipts.tally(message_id, conversation.membership.members())
        if tally.complete and (tally.acknowledged or not tally.recipients):
            await self._apply_evidence(
                message_id, "acknowledged", **tally.evidence(), delivered=tally.count
            )

    async def membership_changed(self, conversation: Conversation) -> None:
        """Members left: messages that waited only for them are delivered. Under the lock."""
        for message_id, outgoing in list(self.outgoing.items()):
            if outgoing.conversation_id == conversation.id:
                await self.check_delivered(conversation, message_id)

    async def store_confirmed(self, event: Stored) -> None:
        """A store node lists a copy we published. Under the lock."""
        message_id = self._by_hash.get(event.msg_hash)
        if message_id is None or message_id not in self.outbox:
            return
        state = self.outbox.get(message_id).state
        if state in (ob.State.QUEUED, ob.State.SENT, ob.State.FAILED):
            await self._apply_evidence(
                message_id,
                "store_confirmed",
                store_node=event.store_peer,
                waku_hash=event.msg_hash.hex(),
            )

    async def _apply_evidence(self, message_id: str, kind: str, **evidence: Any) -> None:
        if message_id not in self.outbox:
            return
        now = self._ctx.clock()
        try:
            if kind == "acknowledged":
                transition = self.outbox.acknowledged(message_id, now, **evidence)
            else:
                transition = self.outbox.store_confirmed(message_id, now, **evidence)
        except ob.InvalidTransition as exc:
            log.debug("evidence for %s not applicable: %s", message_id, exc)
            return
        await self.record(message_id, transition)

    async def record(
        self, message_id: str, transition: ob.Transition | None, *, sds_chat: str | None = None
    ) -> None:
        """Persist the entry's bookkeeping (and its transition), then tell the faces."""
        outgoing = self.outgoing.get(message_id)
        if outgoing is None:
            return
        entry = self.outbox.get(message_id)
        done = entry.state is ob.State.DELIVERED
        data = ob.entry_to_json(entry)
        next_ms = int((entry.next_attempt_at or 0) * 1000)
        sds_state = self._channels.state_row(sds_chat, self._ctx.clock()) if sds_chat else None

        def save(store: Store) -> None:
            with store.db.transaction():
                if transition is not None:
                    store.messages.record_transition(
                        outgoing.rowid,
                        transition.new.value,
                        at=int(transition.at * 1000),
                        evidence=transition.evidence,
                        reason=entry.reason,
                        waku_hash=_hash_of(transition.evidence),
                    )
                if done:
                    store.outbox.remove(outgoing.rowid)
                else:
                    store.outbox.save_entry(
                        outgoing.rowid, data, attempts=entry.attempts, next_attempt_at=next_ms
                    )
                if sds_state is not None:
                    store.sds_channels.save(sds_state)

        await self._ctx.db.run(save)
        if done:
            self.outgoing.pop(message_id, None)
            self.outbox.discard(message_id)
            self.receipts.forget(message_id)
        if transition is not None or not done:
            self._ctx.emit(ev.MessageUpdated(await self.message(message_id)))


def _by_id(message_id: str) -> Callable[[Store], StoredMessage | None]:
    return lambda store: store.messages.by_id(message_id)


def _hash_of(evidence: dict[str, Any]) -> bytes | None:
    value = evidence.get("waku_hash")
    if isinstance(value, str) and len(value) == 64:
        return bytes.fromhex(value)
    return None


def published_fact(message_id: str, evidence: dict[str, Any]) -> observed.Published:
    """The transport's evidence as telemetry's fact: light push names the service node and
    the relay peers it reached; relay, the peers it sent to."""
    light = "light_push" in evidence or "light_push_queued" in evidence
    peers = evidence.get("relay_peers" if light else "peers_reached")
    count = peers if isinstance(peers, int) and not isinstance(peers, bool) else 0
    return observed.Published(message_id, "lightpush" if light else "relay", max(0, count))
