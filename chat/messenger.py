"""The messenger: the one façade every face talks to. Commands in, typed events out.

It composes the sans-IO cores (contact request flows, Olm sessions, SDS channels, the outbox,
store checks) with a client node and the profile database. The rules it keeps:

- Persist before the wire. A command commits its effect (the outbox entry, the request flow,
  the ratcheted Olm session) before anything is published, so a crash loses nothing and
  never reuses a ratchet key.
- One lock for all protocol state. Commands, received messages and timers take it in turn;
  network round trips (store queries) run outside it and report back under it.
- Evidence only. A message's state moves when the relay reached a peer (sent), a store node
  listed its hash (stored), or the recipient's SDS traffic named it (delivered); the trace
  records what proved each step.
- Received input is untrusted: anything that fails to decrypt, replays, or names a sender
  other than the one Olm proved is dropped, logged and reported as a `Rejected` event; the
  user never sees it.

Timers (outbox attempts, request re-sends, SDS syncs, store checks, giving up on missing
messages) all run from one scheduler task that sleeps until the earliest of them or until a
command wakes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from chat import events as ev
from chat.client_node import ClientNode, ClientNodeConfig, Received
from chat.config import DEFAULT_CLUSTER_ID, DEFAULT_SHARDS
from chat.contacts import (
    MUTUAL,
    ContactRequest,
    ContactRequestError,
    ContactRequests,
    RequestPolicy,
    RequestState,
    RequestTransition,
    flow_from_json,
    flow_to_json,
)
from chat.direct import (
    DirectError,
    DirectSessions,
    Envelope,
    Opened,
    contact_request_content_topic,
    conversation_content_topic,
    conversation_id,
    request_payload,
)
from chat.errors import ConfigError
from chat.history import ChatHistory
from chat.identity import (
    ContactLink,
    Identity,
    IdentityError,
    format_chat_key,
    sanitize_display_text,
    validate_display_name,
)
from chat.identity_store import ensure_identity, save_identity
from chat.proto import direct_pb2
from chat.reliability import outbox as ob
from chat.reliability.sds import (
    Acknowledged,
    Delivered,
    Lost,
    Missing,
    SdsChannel,
    SdsError,
    SdsFrame,
    SdsParams,
)
from chat.reliability.store_checks import (
    NS,
    CursorAdvanced,
    FetchQuery,
    NotRetrieved,
    PresenceQuery,
    Query,
    RangeQuery,
    StoreCheckParams,
    StoreChecks,
    Stored,
)
from chat.verification import CANCEL, MAC, REPLY, START, Verification, VerificationError
from chat.waku.discovery.mdns import MDNS_PORT
from chat.waku.host import generate_node_key
from chat.waku.message import WakuMessage
from chat.waku.peers import Service
from chat.waku.relay.faults import RelayFaults
from chat.waku.relay.router import NoPeersReached
from chat.waku.store.client import StoreClientError, new_request_id
from chat.waku.store.query import MAX_PAGE_SIZE
from chat.waku.store.wire import StoreQueryRequest
from storage.aio import AsyncStore
from storage.errors import StorageError
from storage.repositories.contacts import Contact
from storage.repositories.conversations import Conversation
from storage.repositories.messages import StoredMessage
from storage.repositories.reliability import SdsChannelState, SyncCursor
from storage.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_TEXT_LENGTH = 16 * 1024
"""Characters in one message; far below the 150 KiB Waku limit after SDS and Olm."""
RECEIVED_STATE = "received"
CONTACT_SHARD = 0
"""Contact requests and 1:1 conversations live on shard 0 of the cluster."""
IDLE_WAKEUP = 30.0
"""The scheduler looks around at least this often (health, cheap checks)."""
SYNC_RETRY = 5.0
STORE_TRIES = 3
"""Store nodes one query tries before it waits for its retry."""
SAVE_DELAY = 1.0
"""Receive-side state (SDS logs, Olm ratchets) is written at most this long after it moved."""
RECEIVED_KEPT_FOR = 31 * 86_400
"""Seconds a handled message's Waku hash is remembered across restarts, a day beyond the
longest catch-up (StoreCheckParams.max_catch_up): a store scan after a restart lists messages
handled before it, and a second decryption would fail (Olm message keys are used once), so
they must be recognised as handled, not refused as replays."""
RECEIVED_LOADED = 20_000
"""Handled hashes loaded at start (the newest); older ones are checked in the profile DB."""
CATCH_UP_LIMIT = 60.0
"""A catch-up the health monitor waits for longer than this counts as failed."""
GIVE_UP_MISSING_AFTER = 600.0
"""A message waiting this long for an earlier one is shown anyway; the gap is reported."""


@dataclass(frozen=True)
class MessengerConfig:
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    peers: tuple[str, ...] = ()
    store_peers: tuple[str, ...] = ()
    cluster_id: int = DEFAULT_CLUSTER_ID
    shards: tuple[int, ...] = DEFAULT_SHARDS
    node_key: KeyPair | None = None
    retry: ob.RetryPolicy = field(default_factory=ob.RetryPolicy)
    requests: RequestPolicy = field(default_factory=RequestPolicy)
    store_checks: StoreCheckParams = field(default_factory=StoreCheckParams)
    sds: SdsParams = field(default_factory=lambda: SdsParams(acknowledge_by_bloom=False))
    """Delivered rests on history entries only (see SdsParams.acknowledge_by_bloom)."""
    sync_delay: float = 1.0
    give_up_missing_after: float = GIVE_UP_MISSING_AFTER
    faults: RelayFaults | None = None
    mdns: bool | None = None
    """LAN discovery; None: on when no peer is configured."""
    mdns_interfaces: tuple[str, ...] | None = None
    mdns_port: int = MDNS_PORT
    clock: Callable[[], float] = time.time


@dataclass
class _Pending:
    """What an outbox entry needs to go on the wire again."""

    rowid: int
    chat_id: str
    peer_chat_key: str
    pubsub_topic: str
    content_topic: str
    frame: bytes


class Messenger:
    def __init__(
        self, store: Store, config: MessengerConfig | None = None, *, db: AsyncStore | None = None
    ) -> None:
        """`db`: the store's async runner, when a face already reads through one (its calls
        and ours must share one worker: they share one connection)."""
        self.config = config or MessengerConfig()
        self._clock = self.config.clock
        try:
            self.node = ClientNode(
                ClientNodeConfig(
                    listen_addrs=self.config.listen_addrs,
                    peers=self.config.peers,
                    store_peers=self.config.store_peers,
                    cluster_id=self.config.cluster_id,
                    shards=self.config.shards,
                    key_pair=self.config.node_key or generate_node_key(),
                    faults=self.config.faults,
                    mdns=self.config.mdns,
                    mdns_interfaces=self.config.mdns_interfaces,
                    mdns_port=self.config.mdns_port,
                )
            )
        except ConfigError as exc:
            raise ev.InvalidInput(str(exc)) from None
        self._sync_store = store
        self._db = db if db is not None else AsyncStore(store)
        self.history = ChatHistory(self._db)
        self._lock = trio.Lock()
        self._wakeup = trio.Event()
        self._subscribers: list[trio.MemorySendChannel[ev.Event]] = []
        self.events_dropped = 0
        self.pubsub_topic = self.node.pubsub_topic(CONTACT_SHARD)
        # Filled by _load():
        self.identity_state: Identity | None = None
        self.sessions: DirectSessions | None = None
        self.requests = ContactRequests(self.config.requests)
        self.links: dict[str, ContactLink] = {}
        self.verifications: dict[str, Verification] = {}
        self.verified: set[str] = set()
        self.link_texts: dict[str, str] = {}
        self.by_identity_key: dict[bytes, str] = {}
        self._outbox = ob.Outbox(self.config.retry)
        self.pending: dict[str, _Pending] = {}
        self.channels: dict[str, SdsChannel] = {}
        self.chat_by_topic: dict[str, str] = {}
        self.peer_of_chat: dict[str, str] = {}
        self.checks = StoreChecks(self.config.store_checks)
        self.hash_to_message: dict[bytes, str] = {}
        self.sync_due: dict[str, float] = {}
        self.last_catch_up: float | None = None
        self.store_ok: bool | None = None
        self.rejected = 0
        self._nursery: trio.Nursery | None = None
        self._catch_up_waiters: tuple[trio.Event, int] | None = None
        self._catch_ups_done = 0
        self._catch_up_failed = False
        self._dirty_sessions = False
        self._dirty_channels: set[str] = set()
        self._handled: list[bytes] = []
        """Hashes of messages handled since the last save (saved with the Olm sessions, so
        after a crash a message is either handled and remembered, or neither)."""
        self._flush_at: float | None = None

    # ==== lifecycle ===========================================================================
    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Messenger]:
        await self._load()
        async with self.node.run(), trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._scheduler)
            nursery.start_soon(self._watch_connections)
            nursery.start_soon(self._watch_health)
            nursery.start_soon(self._watch_outages)
            health = self.node.connectivity.health
            health.set_catch_up(self._catch_up)
            health.on_reset(self._after_reset)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    async with self._lock:
                        await self._flush()
                self._nursery = None
                for channel in self._subscribers:
                    channel.close()
                self._subscribers.clear()

    async def _load(self) -> None:
        now = self._clock()
        key = self._sync_store.session_pickle_key

        def load(
            store: Store,
        ) -> tuple[Identity, dict[str, Any] | None, list[Any], set[str], list[Any]]:
            identity = ensure_identity(store, now)
            sessions = store.olm_sessions.load()
            flows = store.contact_flows.all()
            verified = {c.chat_key for c in store.contacts.all() if c.verified}
            entries = [(e, store.messages.get(e.message)) for e in store.outbox.all()]
            return identity, sessions, flows, verified, entries

        identity, pickled, flows, self.verified, entries = await self._db.run(load)
        now_ms = int(now * 1000)
        handled = await self._db.run(
            lambda s: s.received_hashes.live(now=now_ms, limit=RECEIVED_LOADED)
        )
        for msg_hash in handled:
            self.checks.received(msg_hash, now)
        self.identity_state = identity
        self.sessions = (
            DirectSessions.from_pickle(identity, pickled, key)
            if pickled
            else DirectSessions(identity)
        )
        for stored in flows:
            flow = flow_from_json(stored.chat_key, stored.flow)
            self.requests.restore(flow)
            if stored.their_link:
                with contextlib.suppress(IdentityError):
                    self._remember_link(ContactLink.parse(stored.their_link), stored.their_link)
        conversations = await self._db.run(lambda s: s.conversations.recent(10_000))
        for conv in conversations:
            if conv.kind == "direct":
                peer = next((k for k in self.links if self._chat_id_for(k) == conv.id), None)
                if peer is not None:
                    self._register_chat(conv.id, peer, conv.content_topic)
        for row, message in entries:
            if message is None:
                continue
            try:
                entry = ob.entry_from_json(message.message_id, row.entry)
            except ob.OutboxError as exc:
                log.warning("%s", exc)
                continue
            self._outbox.restore(entry)
            self.pending[message.message_id] = _Pending(
                row.message,
                message.conversation_id,
                self.peer_of_chat.get(message.conversation_id, ""),
                row.pubsub_topic,
                row.content_topic,
                row.payload,
            )
        # Watch our contact-request partition and every chat, from their persisted cursors.
        await self._watch(self.pubsub_topic, contact_request_content_topic(identity.chat_key))
        for chat_id in list(self.peer_of_chat):
            await self._watch(self.pubsub_topic, conversation_content_topic(chat_id))
        self.checks.catch_up(now)

    async def _watch(self, pubsub_topic: str, content_topic: str) -> None:
        cursor = await self._db.run(lambda s: s.sync_cursors.load(pubsub_topic, content_topic))
        start = None if cursor is None else cursor.synced_until / 1000
        self.checks.watch(pubsub_topic, (content_topic,), start, self._clock())
        self._poke()

    def listen_addrs(self) -> list[str]:
        return self.node.full_multiaddrs()

    # ==== events ==============================================================================
    def subscribe(self, buffer: int = 1000) -> trio.MemoryReceiveChannel[ev.Event]:
        send, receive = trio.open_memory_channel[ev.Event](buffer)
        self._subscribers.append(send)
        return receive

    def _emit(self, event: ev.Event) -> None:
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                self.events_dropped += 1
                if self.events_dropped == 1 or self.events_dropped % 1000 == 0:
                    log.warning("a subscriber is behind; %d events dropped", self.events_dropped)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)

    def _poke(self) -> None:
        self._wakeup.set()

    # ==== identity ============================================================================
    @property
    def me(self) -> Identity:
        if self.identity_state is None:
            raise ev.NotPossible("the messenger is not running")
        return self.identity_state

    @property
    def _sessions(self) -> DirectSessions:
        if self.sessions is None:
            raise ev.NotPossible("the messenger is not running")
        return self.sessions

    def identity(self) -> ev.IdentityView:
        me = self.me
        return ev.IdentityView(me.chat_key_text, me.display_name, me.contact_link())

    async def set_display_name(self, name: str) -> ev.IdentityView:
        """Change our display name (sanitized like every name), keep it in the profile, and
        tell every contact: each gets our new link in a repeated acceptance, which they take
        as a link update (open requests carry the new link on their next re-send)."""
        try:
            name = validate_display_name(name)
        except IdentityError as exc:
            raise ev.InvalidInput(str(exc)) from None
        async with self._lock:
            me = self.me
            old_name, me.display_name = me.display_name, name
            if name == old_name:
                return self.identity()
            now_ms = int(self._clock() * 1000)
            try:
                await self._db.run(lambda s: save_identity(s, me, now_ms))
            except BaseException:
                me.display_name = old_name
                raise
            for flow in self.requests.all():
                if flow.state is MUTUAL and flow.chat_key in self.links:
                    try:
                        await self._answer(flow.chat_key, accepted=True, transition=None)
                    except DirectError as exc:  # the others are still told
                        log.warning("could not tell %s our new name: %s", flow.chat_key[:16], exc)
        return self.identity()

    # ==== contacts ============================================================================
    def _remember_link(self, link: ContactLink, text: str) -> None:
        self.links[link.chat_key_text] = link
        self.link_texts[link.chat_key_text] = text
        self.by_identity_key[link.identity_key] = link.chat_key_text

    def _chat_id_for(self, chat_key: str) -> str:
        return conversation_id(self.me.chat_key, self.links[chat_key].chat_key)

    def _contact_view(self, chat_key: str) -> ev.ContactView:
        flow = self.requests.get(chat_key)
        link = self.links.get(chat_key)
        chat_id = self._chat_id_for(chat_key) if flow.state is MUTUAL and link else None
        return ev.ContactView(
            chat_key=chat_key,
            display_name=link.display_name if link else "",
            state=flow.state.value if flow.state else "none",
            chat_id=chat_id,
            intro=flow.intro,
            verified=chat_key in self.verified,
            updated_at=flow.history[-1].at if flow.history else 0.0,
            next_send_at=flow.next_send_at,
            expires_at=flow.expires_at,
            sends=flow.sends,
        )

    async def contacts(self) -> list[ev.ContactView]:
        flows = sorted(
            self.requests.all(), key=lambda f: f.history[-1].at if f.history else 0, reverse=True
        )
        return [self._contact_view(f.chat_key) for f in flows if f.state is not None]

    def _contact(self, chat_key: str) -> ContactRequest:
        flow = self.requests.get(chat_key)
        if flow.state is None or chat_key not in self.links:
            raise ev.NotFound(f"no contact {chat_key[:16]}")
        return flow

    async def add_contact(self, link: str, intro: str = "") -> ev.ContactView:
        try:
            parsed = ContactLink.parse(link)
        except IdentityError as exc:
            raise ev.InvalidInput(str(exc)) from None
        if parsed.chat_key == self.me.chat_key:
            raise ev.InvalidInput("that is your own contact link")
        intro = sanitize_display_text(intro, multiline=True)[:1000]
        async with self._lock:
            chat_key = parsed.chat_key_text
            self._remember_link(parsed, "".join(link.split()))
            try:
                transition = self.requests.send(chat_key, intro, self._clock())
            except ContactRequestError as exc:
                raise ev.NotPossible(str(exc)) from None
            if transition.new is MUTUAL:  # they had asked us: asking back is accepting
                await self._answer(chat_key, accepted=True, transition=transition)
            else:
                await self._send_request(chat_key, transition)
            return self._contact_view(chat_key)

    async def accept_contact(self, chat_key: str) -> ev.ContactView:
        return await self._decide(chat_key, accepted=True)

    async def decline_contact(self, chat_key: str) -> ev.ContactView:
        return await self._decide(chat_key, accepted=False)

    async def _decide(self, chat_key: str, *, accepted: bool) -> ev.ContactView:
        async with self._lock:
            self._contact(chat_key)
            try:
                if accepted:
                    transition = self.requests.accept(chat_key, self._clock())
                else:
                    transition = self.requests.decline(chat_key, self._clock())
            except ContactRequestError as exc:
                raise ev.NotPossible(str(exc)) from None
            await self._answer(chat_key, accepted=accepted, transition=transition)
            return self._contact_view(chat_key)

    async def cancel_contact_request(self, chat_key: str) -> ev.ContactView:
        async with self._lock:
            self._contact(chat_key)
            try:
                transition = self.requests.cancel(chat_key, self._clock())
            except ContactRequestError as exc:
                raise ev.NotPossible(str(exc)) from None
            await self._save_flow(chat_key, transition)
            return self._contact_view(chat_key)

    async def _send_request(self, chat_key: str, transition: RequestTransition | None) -> None:
        """Seal our (current) request to them, persist, publish. Under the lock."""
        link = self.links[chat_key]
        flow = self.requests.get(chat_key)
        payload = request_payload(self.me.contact_link(), flow.intro, flow.request_id or "")
        sessions = self._sessions
        if sessions.has_session(link.identity_key):
            envelope = sessions.seal(link.identity_key, payload)
        else:
            envelope = sessions.seal_first(link, payload)
        await self._save_flow(chat_key, transition, sessions_too=True)
        self._publish_best_effort(contact_request_content_topic(link.chat_key), envelope)

    async def _answer(
        self, chat_key: str, *, accepted: bool, transition: RequestTransition | None
    ) -> None:
        """Tell them our decision inside the session their request opened. Under the lock."""
        link = self.links[chat_key]
        payload = direct_pb2.DirectPayload(
            answer=direct_pb2.ContactAnswerBody(accepted=accepted, link=self.me.contact_link())
        )
        sessions = self._sessions
        if sessions.has_session(link.identity_key):
            envelope = sessions.seal(link.identity_key, payload)
        else:
            envelope = sessions.seal_first(link, payload)
        if accepted:
            await self._ensure_chat(chat_key)
        await self._save_flow(chat_key, transition, sessions_too=True)
        self._publish_best_effort(contact_request_content_topic(link.chat_key), envelope)

    def _publish_best_effort(self, content_topic: str, envelope: Envelope) -> int:
        """Requests and answers are re-sent by their own flows; a failure is only logged."""
        message = self._waku_message(content_topic, envelope)
        try:
            return self.node.publish(self.pubsub_topic, message)
        except NoPeersReached:
            log.info("no relay peers for %s; the request flow will try again", content_topic)
        except ValueError as exc:
            log.warning("refused to publish on %s: %s", content_topic, exc)
        return 0

    def _waku_message(self, content_topic: str, envelope: Envelope) -> WakuMessage:
        return WakuMessage(
            payload=envelope.encode(),
            content_topic=content_topic,
            timestamp=int(self._clock() * NS),
        )

    async def _save_flow(
        self, chat_key: str, transition: RequestTransition | None, *, sessions_too: bool = False
    ) -> None:
        flow = self.requests.get(chat_key)
        link_text = self.link_texts.get(chat_key)
        now_ms = int(self._clock() * 1000)
        data = flow_to_json(flow)
        state = flow.state.value if flow.state else None
        pickled = (
            self._sessions.pickle(self._sync_store.session_pickle_key) if sessions_too else None
        )
        identity = self.me

        def save(store: Store) -> None:
            with store.db.transaction():
                store.contact_flows.save(
                    chat_key,
                    state=state,
                    flow=data,
                    their_link=link_text,
                    now=now_ms,
                )
                if pickled is not None:
                    _write_ratchet(store, pickled, now_ms, handled)
                    save_identity(store, identity, now_ms)

        handled = self._handled_taken() if pickled is not None else []
        await self._db.run(save)
        if transition is not None:
            self._emit(ev.ContactUpdated(self._contact_view(chat_key)))

    async def _ensure_chat(self, chat_key: str) -> str:
        chat_id = self._chat_id_for(chat_key)
        if chat_id in self.peer_of_chat:
            return chat_id
        link = self.links[chat_key]
        topic = conversation_content_topic(chat_id)
        now_ms = int(self._clock() * 1000)
        conv = Conversation(
            chat_id, "direct", link.display_name, self.pubsub_topic, topic, now_ms, now_ms
        )

        def add(store: Store) -> None:
            if store.conversations.get(chat_id) is None:
                store.conversations.add(conv)

        await self._db.run(add)
        self._register_chat(chat_id, chat_key, topic)
        await self._watch(self.pubsub_topic, topic)
        self._emit(ev.ChatUpdated(await self._chat_view(chat_id)))
        return chat_id

    def _register_chat(self, chat_id: str, chat_key: str, content_topic: str) -> None:
        self.peer_of_chat[chat_id] = chat_key
        self.chat_by_topic[content_topic] = chat_id

    # ==== emoji verification ==================================================================
    def _verification_view(self, chat_key: str) -> ev.VerificationView:
        v = self.verifications.get(chat_key)
        if v is None:
            state = "verified" if chat_key in self.verified else "none"
            return ev.VerificationView(chat_key, state, [])
        return ev.VerificationView(chat_key, v.state.value, v.emoji, v.their_mac is not None)

    def verification(self, chat_key: str) -> ev.VerificationView:
        return self._verification_view(chat_key)

    def _mutual_contact(self, chat_key: str) -> ContactLink:
        flow = self._contact(chat_key)
        if flow.state is not MUTUAL:
            raise ev.NotPossible("you can verify a contact once you are both contacts")
        return self.links[chat_key]

    async def start_verification(self, chat_key: str) -> ev.VerificationView:
        """Begin an emoji comparison with a contact (both must be online)."""
        async with self._lock:
            link = self._mutual_contact(chat_key)
            v = Verification(self.me.chat_key, link.chat_key)
            self.verifications[chat_key] = v
            await self._send_verification(chat_key, v, START, public_key=v.sas.public_key)
        return self._verification_updated(chat_key)

    async def confirm_verification(self, chat_key: str) -> ev.VerificationView:
        """The user says the emoji on both screens match."""
        async with self._lock:
            self._mutual_contact(chat_key)
            v = self._active_verification(chat_key)
            try:
                mac = v.confirm()
            except VerificationError as exc:
                raise ev.NotPossible(str(exc)) from None
            await self._send_verification(chat_key, v, MAC, mac=mac)
            await self._verification_result(chat_key, v)
        return self._verification_updated(chat_key)

    async def cancel_verification(self, chat_key: str) -> ev.VerificationView:
        """The emoji differ, or the user stops: tell the contact."""
        async with self._lock:
            self._mutual_contact(chat_key)
            v = self._active_verification(chat_key)
            with contextlib.suppress(VerificationError):
                v.cancel()
            await self._send_verification(chat_key, v, CANCEL)
        return self._verification_updated(chat_key)

    def _active_verification(self, chat_key: str) -> Verification:
        v = self.verifications.get(chat_key)
        if v is None:
            raise ev.NotPossible("no verification with this contact is under way")
        return v

    def _verification_updated(self, chat_key: str) -> ev.VerificationView:
        view = self._verification_view(chat_key)
        self._emit(ev.VerificationUpdated(view))
        return view

    async def _send_verification(
        self, chat_key: str, v: Verification, step: int, *, public_key: str = "", mac: str = ""
    ) -> None:
        link = self.links[chat_key]
        body = direct_pb2.VerificationBody(
            verification_id=v.verification_id, step=step, public_key=public_key, mac=mac
        )
        try:
            envelope = self._sessions.seal(
                link.identity_key, direct_pb2.DirectPayload(verification=body)
            )
        except DirectError as exc:
            raise ev.NotPossible(str(exc)) from None
        await self._save_sessions()
        self._publish_best_effort(conversation_content_topic(self._chat_id_for(chat_key)), envelope)

    async def _on_verification(self, opened: Opened, chat_id: str) -> None:
        self._save_later(sessions=True)
        peer = self.peer_of_chat[chat_id]
        link = self.links.get(peer)
        if link is None or opened.sender_identity_key != link.identity_key:
            self._reject("a verification step from someone who is not this chat's contact")
            return
        body = opened.payload.verification
        v = self.verifications.get(peer)
        try:
            if body.step == START:
                v = Verification(self.me.chat_key, link.chat_key, body.verification_id)
                self.verifications[peer] = v
                v.their_key(body.public_key)
                await self._send_verification(peer, v, REPLY, public_key=v.sas.public_key)
            elif v is None or v.verification_id != body.verification_id:
                log.info("verification step for an unknown verification from %s", peer[:16])
                return
            elif body.step == REPLY:
                v.their_key(body.public_key)
            elif body.step == MAC:
                v.their_confirmation(body.mac)
                await self._verification_result(peer, v)
            elif body.step == CANCEL:
                v.cancel()
        except (VerificationError, ev.NotPossible) as exc:
            log.info("verification with %s: %s", peer[:16], exc)
            return
        self._verification_updated(peer)

    async def _verification_result(self, chat_key: str, v: Verification) -> None:
        if v.state.value != "verified" or chat_key in self.verified:
            return
        self.verified.add(chat_key)
        link = self.links[chat_key]
        contact = Contact(
            chat_key,
            link.identity_key.hex(),
            link.display_name,
            verified=True,
            blocked=False,
            added_at=int(self._clock() * 1000),
        )
        await self._db.run(lambda s: s.contacts.upsert(contact))
        self._emit(ev.ContactUpdated(self._contact_view(chat_key)))

    # ==== chats and messages ==================================================================
    async def _chat_view(self, chat_id: str) -> ev.ChatView:
        return self._conv_view(await self.history.conversation(chat_id))

    def _conv_view(self, conv: Conversation) -> ev.ChatView:
        peer = self.peer_of_chat.get(conv.id)
        name = self.links[peer].display_name if peer in self.links else None
        return ev.chat_view_of(conv, name=name, peer=peer)

    async def chats(self) -> list[ev.ChatView]:
        return [self._conv_view(c) for c in await self.history.conversations()]

    async def mark_read(self, chat_id: str) -> ev.ChatView:
        await self._chat_view(chat_id)
        await self._db.run(lambda s: s.conversations.mark_read(chat_id))
        view = await self._chat_view(chat_id)
        self._emit(ev.ChatUpdated(view))
        return view

    def _message_view(self, stored: StoredMessage) -> ev.MessageView:
        entry = self._outbox._entries.get(stored.message_id) if stored.outgoing else None
        return ev.message_view_of(stored, entry)

    async def messages(
        self, chat_id: str, *, limit: int = 50, before: str | None = None
    ) -> list[ev.MessageView]:
        page = await self.history.page(chat_id, limit=limit, before=before)
        return [self._message_view(m) for m in page]

    async def _stored_message(self, message_id: str) -> StoredMessage:
        return await self.history.message(message_id)

    async def message(self, message_id: str) -> ev.MessageView:
        return self._message_view(await self._stored_message(message_id))

    async def trace(self, message_id: str) -> list[ev.TraceStep]:
        stored = await self._stored_message(message_id)
        history = await self._db.run(lambda s: s.messages.history(stored.id))
        return [ev.TraceStep(t.at / 1000, t.from_state, t.to_state, t.evidence) for t in history]

    async def send_text(
        self, chat_id: str, text: str, reply_to: str | None = None
    ) -> ev.MessageView:
        if not text.strip():
            raise ev.InvalidInput("an empty message cannot be sent")
        if len(text) > MAX_TEXT_LENGTH:
            raise ev.InvalidInput(f"a message has at most {MAX_TEXT_LENGTH} characters")
        async with self._lock:
            peer = self.peer_of_chat.get(chat_id)
            if peer is None:
                raise ev.NotFound(f"no chat {chat_id[:32]}")
            if self.requests.get(peer).state is not MUTUAL:
                raise ev.NotPossible("you are not contacts any more; send a contact request")
            now = self._clock()
            message_id = secrets.token_hex(16)
            body = direct_pb2.ChatMessage(
                id=message_id, text=text, reply_to=reply_to or "", sent_at_ms=int(now * 1000)
            )
            channel = await self._channel(chat_id)
            frame = channel.wrap(body.SerializeToString(), message_id, int(now * 1000))
            transition = self._outbox.enqueue(message_id, chat_id, now)
            entry = self._outbox.get(message_id)
            topic = conversation_content_topic(chat_id)
            frame_bytes = frame.encode()
            sds_state = self._sds_state(chat_id, now)

            def commit(store: Store) -> int:
                with store.db.transaction():
                    rowid = store.messages.add(
                        conversation_id=chat_id,
                        message_id=message_id,
                        sender=self.me.chat_key_text,
                        outgoing=True,
                        body=text,
                        sent_at=int(now * 1000),
                        state=transition.new.value,
                        now=int(now * 1000),
                        reply_to=reply_to,
                    )
                    store.outbox.enqueue(
                        rowid,
                        pubsub_topic=self.pubsub_topic,
                        content_topic=topic,
                        payload=frame_bytes,
                        now=int(now * 1000),
                        entry=ob.entry_to_json(entry),
                    )
                    store.sds_channels.save(sds_state)
                    store.conversations.touch(chat_id, now=int(now * 1000))
                return rowid

            try:
                rowid = await self._db.run(commit)
            except StorageError:
                self._outbox.discard(message_id)
                raise
            self.pending[message_id] = _Pending(
                rowid, chat_id, peer, self.pubsub_topic, topic, frame_bytes
            )
            view = await self.message(message_id)
        self._emit(ev.MessageAdded(view))
        self._emit(ev.ChatUpdated(await self._chat_view(chat_id)))
        self._poke()
        return view

    async def retry(self, message_id: str) -> ev.MessageView:
        async with self._lock:
            if message_id not in self._outbox:
                stored = await self._stored_message(message_id)
                if stored.state == ob.State.DELIVERED.value:
                    raise ev.NotPossible("a delivered message cannot be retried")
                raise ev.NotPossible("that message is not in the outbox")
            try:
                transition = self._outbox.retry(message_id, self._clock())
            except ob.OutboxError as exc:
                raise ev.NotPossible(str(exc)) from None
            await self._record(message_id, transition)
        self._poke()
        return await self.message(message_id)

    async def retry_all(self) -> int:
        count = 0
        for entry in self._outbox.undelivered():
            with contextlib.suppress(ev.MessengerError):
                await self.retry(entry.message_id)
                count += 1
        return count

    async def discard(self, message_id: str) -> None:
        async with self._lock:
            if message_id not in self._outbox:
                raise ev.NotFound(f"no message {message_id[:64]} in the outbox")
            entry = self._outbox.get(message_id)
            if entry.in_flight:
                raise ev.NotPossible("the message is being sent right now; try again")
            self._outbox.discard(message_id)
            pending = self.pending.pop(message_id)
            now_ms = int(self._clock() * 1000)

            def drop(store: Store) -> None:
                with store.db.transaction():
                    store.outbox.remove(pending.rowid)
                    store.messages.record_transition(
                        pending.rowid,
                        ob.State.FAILED.value,
                        at=now_ms,
                        evidence={"discarded_by": "user"},
                        reason="discarded",
                    )

            await self._db.run(drop)
        self._emit(ev.MessageUpdated(await self.message(message_id)))

    async def outbox(self) -> list[ev.OutboxItemView]:
        """Everything not yet delivered: messages (failed ones included) and open requests."""
        items: list[ev.OutboxItemView] = []
        for entry in self._outbox.undelivered():
            pending = self.pending.get(entry.message_id)
            stored = await self._db.run(_by_id(entry.message_id))
            summary = (stored.body if stored else "")[:80]
            items.append(
                ev.OutboxItemView(
                    id=entry.message_id,
                    kind="message",
                    chat_id=pending.chat_id if pending else entry.conversation_id,
                    summary=summary,
                    state=entry.state.value,
                    reason=entry.reason,
                    attempts=entry.attempts,
                    max_attempts=entry.max_attempts,
                    next_attempt_at=entry.next_attempt_at,
                    created_at=entry.created_at,
                )
            )
        for flow in self.requests.all():
            if flow.state is RequestState.REQUEST_SENT and flow.chat_key in self.links:
                items.append(
                    ev.OutboxItemView(
                        id=flow.chat_key,
                        kind="contact_request",
                        chat_id=None,
                        summary=f"contact request to {self.links[flow.chat_key].display_name}",
                        state=flow.state.value,
                        reason=None,
                        attempts=flow.sends,
                        max_attempts=0,
                        next_attempt_at=flow.next_send_at,
                        created_at=flow.history[0].at if flow.history else 0.0,
                    )
                )
        return items

    # ==== health ==============================================================================
    def health(self) -> ev.HealthView:
        """The health monitor's verdict (chat/waku/health.py), with relay peers per shard."""
        running = self._nursery is not None
        summary = self.node.connectivity.health.summary()
        status = summary.state.value if running else "offline"
        reachable = {s.value: ok for s, ok in summary.reachable().items()}
        store = reachable.get(Service.STORE.value, self.store_ok)
        return ev.HealthView(
            status=status,
            online=status == "online",
            peers=len(self.node.connected_peers()) if running else 0,
            peers_per_shard=self.node.relay_peers() if running else {},
            store_reachable=store,
            services=reachable,
            last_catch_up=summary.last_catch_up or self.last_catch_up,
            outbox=len(self._outbox.pending()),
        )

    async def _watch_health(self) -> None:
        async with self.node.connectivity.health.subscribe() as summaries:
            async for _ in summaries:
                self._emit(ev.HealthUpdated(self.health()))

    async def _watch_outages(self) -> None:
        """The end of every outage as the relay sees it: from no relay peer on any of our
        topics to some. Not the connection (on a slow link its relay streams come up seconds
        later) nor the health summary (it counts connected peers by their metadata)."""
        relay = self.node.relay
        topics = tuple(self.node.pubsub_topics)

        def some(router: Any) -> bool:
            return any(router.topic_peers.get(topic) for topic in topics)

        while True:
            await relay.driver.wait_until(lambda router: not some(router))
            await relay.driver.wait_until(some)
            self._relay_peers_returned(after_outage=True)

    def _relay_peers_returned(self, *, after_outage: bool) -> None:
        """Catch up, and send queued messages now rather than after their backoff. After an
        outage (no relay peer at all) also re-send the sent ones no store has confirmed:
        their publish may have gone into a connection that was dying (the recipient drops a
        duplicate). Not on every new connection: churn would spend their re-send budget."""
        again = (ob.State.QUEUED, ob.State.SENT) if after_outage else (ob.State.QUEUED,)
        self.checks.catch_up(self._clock())
        for entry in self._outbox.pending():
            if entry.state in again and not entry.in_flight:
                with contextlib.suppress(ob.OutboxError):
                    self._outbox.retry(entry.message_id, self._clock())
        self._poke()

    async def _catch_up(self, since: float | None) -> bool:
        """The health monitor asks (start, reconnect, wake): scan every watched topic from its
        cursor now; True once every scan has completed."""
        async with self._lock:
            self._catch_up_waiters = trio.Event(), self.checks.group_count
            self._catch_ups_done = 0
            self._catch_up_failed = False
            self.checks.catch_up(self._clock())
            done, _ = self._catch_up_waiters
        self._poke()
        with trio.move_on_after(CATCH_UP_LIMIT):
            await done.wait()
            return not self._catch_up_failed
        return False

    def _catch_up_progress(self, *, failed: bool = False) -> None:
        if self._catch_up_waiters is None:
            return
        done, groups = self._catch_up_waiters
        self._catch_up_failed |= failed
        self._catch_ups_done += 1
        if failed or self._catch_ups_done >= groups:
            done.set()
            self._catch_up_waiters = None

    async def _after_reset(self, reason: str) -> None:
        """After a sleep or a network change."""
        # Connections are gone now; queued messages go as soon as a relay peer is back
        # (_watch_connections), not now: trying while offline would only spend their budget.
        log.info("connections reset (%s): catching up once peers return", reason)
        async with self._lock:
            self.checks.catch_up(self._clock())
        self._poke()

    async def _watch_connections(self) -> None:
        """Tell faces when the network changes, and catch up after every new connection."""
        events = self.node.node.host.events.subscribe()
        last = self.health()
        async with events:
            async for _ in events:
                await trio.sleep(0.2)  # let relay streams settle before judging
                current = self.health()
                relay_peers = sum(current.peers_per_shard.values())
                if current.peers > last.peers and relay_peers:
                    self._relay_peers_returned(after_outage=False)  # see _watch_outages
                if current != last:
                    self._emit(ev.HealthUpdated(current))
                last = current

    # ==== SDS channels ========================================================================
    async def _channel(self, chat_id: str) -> SdsChannel:
        channel = self.channels.get(chat_id)
        if channel is not None:
            return channel
        stored = await self._db.run(lambda s: s.sds_channels.load(chat_id))
        own = self.me.chat_key_text
        if stored is None:
            channel = SdsChannel(chat_id, own, self.config.sds)
        else:
            try:
                channel = SdsChannel.from_state(
                    chat_id, own, json.loads(stored.state), self.config.sds
                )
            except (SdsError, ValueError, KeyError) as exc:
                log.error("SDS state of chat %s is unreadable (%s); starting afresh", chat_id, exc)
                channel = SdsChannel(chat_id, own, self.config.sds)
        self.channels[chat_id] = channel
        return channel

    def _sds_state(self, chat_id: str, now: float) -> SdsChannelState:
        channel = self.channels[chat_id]
        return SdsChannelState(
            chat_id,
            channel.lamport,
            json.dumps(channel.export_state(), separators=(",", ":")).encode(),
            int(now * 1000),
        )

    # ==== outbox: attempts and evidence =======================================================
    async def _record(
        self, message_id: str, transition: ob.Transition | None, *, sds_chat: str | None = None
    ) -> None:
        """Persist the entry's bookkeeping (and its transition), then tell the faces."""
        pending = self.pending.get(message_id)
        if pending is None:
            return
        entry = self._outbox.get(message_id)
        done = entry.state is ob.State.DELIVERED
        data = ob.entry_to_json(entry)
        next_ms = int((entry.next_attempt_at or 0) * 1000)
        sds_state = self._sds_state(sds_chat, self._clock()) if sds_chat else None

        def save(store: Store) -> None:
            with store.db.transaction():
                if transition is not None:
                    store.messages.record_transition(
                        pending.rowid,
                        transition.new.value,
                        at=int(transition.at * 1000),
                        evidence=transition.evidence,
                        reason=entry.reason,
                        waku_hash=_hash_of(transition.evidence),
                    )
                if done:
                    store.outbox.remove(pending.rowid)
                else:
                    store.outbox.save_entry(
                        pending.rowid, data, attempts=entry.attempts, next_attempt_at=next_ms
                    )
                if sds_state is not None:
                    store.sds_channels.save(sds_state)

        await self._db.run(save)
        if done:
            self.pending.pop(message_id, None)
            self._outbox.discard(message_id)
        if transition is not None or not done:
            self._emit(ev.MessageUpdated(await self.message(message_id)))

    async def _attempt(self, message_id: str) -> None:
        """One attempt to put an outbox message on the wire. Under the lock."""
        now = self._clock()
        entry = self._outbox.get(message_id)
        if entry.state in (ob.State.SENT, ob.State.STORED):
            failed = self._outbox.ack_overdue(message_id, now)
            if failed is not None:
                await self._record(message_id, failed)
                return
        pending = self.pending[message_id]
        link = self.links.get(pending.peer_chat_key)
        self._outbox.attempt_started(message_id)
        if link is None:
            t = self._outbox.rejected(message_id, now, "the recipient is not a contact any more")
            await self._record(message_id, t)
            return
        try:
            envelope = self._sessions.seal(
                link.identity_key, direct_pb2.DirectPayload(sds_frame=pending.frame)
            )
        except DirectError as exc:
            t = self._outbox.attempt_failed(message_id, now, str(exc))
            await self._record(message_id, t)
            return
        message = self._waku_message(pending.content_topic, envelope)
        msg_hash = message.hash(pending.pubsub_topic)
        # The ratchet moved: persist it (and the attempt count) before the bytes leave.
        pickled = self._sessions.pickle(self._sync_store.session_pickle_key)
        data = ob.entry_to_json(entry)
        now_ms = int(now * 1000)

        handled = self._handled_taken()

        def before_wire(store: Store) -> None:
            with store.db.transaction():
                _write_ratchet(store, pickled, now_ms, handled)
                store.outbox.save_entry(
                    pending.rowid, data, attempts=entry.attempts, next_attempt_at=0
                )

        await self._db.run(before_wire)
        try:
            reached = self.node.publish(pending.pubsub_topic, message)
        except NoPeersReached:
            t = self._outbox.attempt_failed(message_id, self._clock(), "no peers")
            await self._record(message_id, t)
            return
        except ValueError as exc:
            t = self._outbox.rejected(message_id, self._clock(), str(exc))
            await self._record(message_id, t)
            return
        t = self._outbox.published(
            message_id,
            self._clock(),
            peers_reached=reached,
            attempt=entry.attempts,
            waku_hash=msg_hash.hex(),
        )
        channel = await self._channel(pending.chat_id)
        channel.mark_sent(message_id, msg_hash)
        self.checks.track(msg_hash, self._clock())
        self.checks.received(msg_hash, self._clock())
        self.hash_to_message[msg_hash] = message_id
        await self._record(message_id, t, sds_chat=pending.chat_id)

    async def _evidence(self, message_id: str, kind: str, **evidence: Any) -> None:
        """Apply evidence ('acknowledged' or 'store_confirmed') to an outbox message, if it
        is still there. Under the lock."""
        if message_id not in self._outbox:
            return
        now = self._clock()
        try:
            if kind == "acknowledged":
                transition = self._outbox.acknowledged(message_id, now, **evidence)
            else:
                transition = self._outbox.store_confirmed(message_id, now, **evidence)
        except ob.InvalidTransition as exc:
            log.debug("evidence for %s not applicable: %s", message_id, exc)
            return
        await self._record(message_id, transition)

    # ==== receiving ===========================================================================
    async def _receive_loop(self) -> None:
        async for received in self.node.inbox:
            async with self._lock:
                await self._on_received(received)

    async def _on_received(self, received: Received) -> None:
        now = self._clock()
        topic = received.message.content_topic
        own_topic = contact_request_content_topic(self.me.chat_key)
        chat_id = self.chat_by_topic.get(topic)
        if topic != own_topic and chat_id is None:
            return  # someone else's conversation
        if await self._handled_before(received):
            return  # a copy (relay and store both, or a scan after a restart): not a replay
        self.checks.received(received.msg_hash, now)
        self._handled.append(received.msg_hash)
        self._save_later()
        try:
            envelope = Envelope.decode(received.message.payload)
        except DirectError as exc:
            self._reject(f"{exc} on {topic}")
            return
        if envelope.sender_identity_key == self.me.identity_key:
            return  # our own message, echoed by relay or listed by a store
        try:
            opened = self._sessions.open(envelope)
        except DirectError as exc:
            self._reject(str(exc))
            return
        body = opened.payload.WhichOneof("body")
        if body == "request" and topic == own_topic:
            await self._on_request(opened)
        elif body == "answer" and topic == own_topic:
            await self._on_answer(opened)
        elif body == "sds_frame" and chat_id is not None:
            await self._on_frame(opened, chat_id, received)
        elif body == "verification" and chat_id is not None:
            await self._on_verification(opened, chat_id)
        else:
            self._reject(f"a {body or 'empty'} payload on the wrong topic")
            self._save_later(sessions=True)

    async def _handled_before(self, received: Received) -> bool:
        if self.checks.has_received(received.msg_hash):
            return True
        if received.via != "store":  # relay dedups its own copies; the DB is for older ones
            return False
        now_ms = int(self._clock() * 1000)
        msg_hash = received.msg_hash
        return await self._db.run(lambda s: s.received_hashes.seen(msg_hash, now=now_ms))

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        log.warning("rejected an incoming message: %s", reason)
        self._emit(ev.Rejected(reason))

    async def _save_sessions(self) -> None:
        """Now: before anything sealed with the ratchet's new state leaves."""
        pickled = self._sessions.pickle(self._sync_store.session_pickle_key)
        now_ms = int(self._clock() * 1000)
        self._dirty_sessions = False
        handled = self._handled_taken()

        def save(store: Store) -> None:
            with store.db.transaction():
                _write_ratchet(store, pickled, now_ms, handled)

        await self._db.run(save)

    def _handled_taken(self) -> list[bytes]:
        """The handled hashes not saved yet, for the save that writes the Olm sessions."""
        handled, self._handled = self._handled, []
        return handled

    def _save_later(self, *, sessions: bool = False, chat_id: str | None = None) -> None:
        """Receive-side state is saved within SAVE_DELAY, not per message: writing every
        session and the whole SDS log for each message costs O(history) per message. A crash
        in between loses nothing that matters: a message decrypted again after a restart
        (fetched from store) still decrypts, and duplicates are recognised by message id."""
        self._dirty_sessions |= sessions
        if chat_id is not None:
            self._dirty_channels.add(chat_id)
        if self._flush_at is None:
            self._flush_at = self._clock() + SAVE_DELAY
            self._poke()

    async def _flush(self) -> None:
        self._flush_at = None
        states = [self._sds_state(c, self._clock()) for c in self._dirty_channels]
        self._dirty_channels.clear()
        pickled = (
            self._sessions.pickle(self._sync_store.session_pickle_key)
            if self._dirty_sessions
            else None
        )
        self._dirty_sessions = False
        handled = self._handled_taken()
        now_ms = int(self._clock() * 1000)

        def save(store: Store) -> None:
            with store.db.transaction():
                for state in states:
                    store.sds_channels.save(state)
                if pickled is not None:
                    _write_ratchet(store, pickled, now_ms, handled)
                elif handled:
                    _write_handled(store, now_ms, handled)

        if states or pickled is not None or handled:
            await self._db.run(save)

    async def _on_request(self, opened: Opened) -> None:
        try:
            verified = self._sessions.verify_request(opened)
        except DirectError as exc:
            self._reject(str(exc))
            self._save_later(sessions=True)
            return
        link = verified.link
        if link.chat_key == self.me.chat_key:
            self._reject("a contact request from our own chat key")
            return
        chat_key = link.chat_key_text
        self._remember_link(link, opened.payload.request.link)
        try:
            transition = self.requests.received(
                chat_key, verified.intro, self._clock(), request_id=verified.request_id
            )
        except ContactRequestError as exc:
            self._reject(f"contact request from {chat_key[:16]}: {exc}")
            self._save_later(sessions=True)
            return
        if transition.new is MUTUAL:
            # Crossed requests, or a re-send of a request we accepted whose answer was lost:
            # answer (again), so they reach mutual too.
            await self._answer(chat_key, accepted=True, transition=transition)
        else:
            await self._save_flow(chat_key, transition, sessions_too=True)

    async def _on_answer(self, opened: Opened) -> None:
        chat_key = self.by_identity_key.get(opened.sender_identity_key)
        if chat_key is None:
            self._reject("an answer from someone we never asked")
            self._save_later(sessions=True)
            return
        answer = opened.payload.answer
        old_name = self.links[chat_key].display_name if chat_key in self.links else ""
        with contextlib.suppress(IdentityError):
            link = ContactLink.parse(answer.link)
            if link.chat_key_text == chat_key and link.identity_key == opened.sender_identity_key:
                self._remember_link(link, answer.link)
        now = self._clock()
        try:
            if answer.accepted:
                transition = self.requests.accepted(chat_key, now)
            else:
                transition = self.requests.declined(chat_key, now)
        except ContactRequestError as exc:
            log.info("answer from %s ignored: %s", chat_key[:16], exc)
            self._save_later(sessions=True)
            return
        if transition.new is MUTUAL:
            chat_id = await self._ensure_chat(chat_key)
            if self.links[chat_key].display_name != old_name:  # they renamed themselves
                self._emit(ev.ChatUpdated(await self._chat_view(chat_id)))
        await self._save_flow(chat_key, transition, sessions_too=True)

    async def _on_frame(self, opened: Opened, chat_id: str, received: Received) -> None:
        now = self._clock()
        peer = self.peer_of_chat[chat_id]
        link = self.links.get(peer)
        if link is None or opened.sender_identity_key != link.identity_key:
            self._reject("a chat message from someone who is not this chat's contact")
            self._save_later(sessions=True)
            return
        try:
            frame = SdsFrame.decode(opened.payload.sds_frame)
        except SdsError as exc:
            self._reject(f"bad SDS frame: {exc}")
            self._save_later(sessions=True)
            return
        if frame.sender_id != peer or frame.channel_id != chat_id:
            self._reject("an SDS frame whose sender is not the Olm-authenticated sender")
            self._save_later(sessions=True)
            return
        channel = await self._channel(chat_id)
        try:
            sds_events = channel.receive(frame, int(now * 1000), received.msg_hash)
        except SdsError as exc:
            self._reject(str(exc))
            self._save_later(sessions=True)
            return
        added: list[ev.MessageView] = []
        for event in sds_events:
            if isinstance(event, Delivered) and event.frame.content:
                view = await self._store_incoming(chat_id, peer, event.frame, received, now)
                if view is not None:
                    added.append(view)
            elif isinstance(event, Acknowledged):
                await self._evidence(
                    event.message_id,
                    "acknowledged",
                    ack_by=event.by,
                    ack_from=peer,
                    ack_frame=frame.message_id,
                )
            elif isinstance(event, Missing):
                for entry in event.entries:
                    if len(entry.retrieval_hint) == 32:
                        self.checks.want(entry.retrieval_hint, now)
                self._poke()
            elif isinstance(event, Lost):
                self._emit(ev.MessagesLost(chat_id, len(event.entries)))
        if frame.content:
            self.sync_due.setdefault(chat_id, now + self.config.sync_delay)
            self._poke()
        self._save_later(sessions=True, chat_id=chat_id)
        for view in added:
            self._emit(ev.MessageAdded(view))
        if added:
            self._emit(ev.ChatUpdated(await self._chat_view(chat_id)))

    async def _store_incoming(
        self, chat_id: str, peer: str, frame: SdsFrame, received: Received, now: float
    ) -> ev.MessageView | None:
        try:
            body = direct_pb2.ChatMessage.FromString(frame.content)
        except Exception:  # protobuf's DecodeError, or worse: nothing to show
            self._reject("a chat message whose content is not a chat message")
            return None
        if body.id != frame.message_id:
            self._reject("a chat message whose id differs from its SDS id")
            return None
        text = sanitize_display_text(body.text, multiline=True)[:MAX_TEXT_LENGTH]
        now_ms = int(now * 1000)

        def add(store: Store) -> StoredMessage | None:
            if store.messages.by_message_id(chat_id, body.id) is not None:
                return None
            with store.db.transaction():
                rowid = store.messages.add(
                    conversation_id=chat_id,
                    message_id=body.id,
                    sender=peer,
                    outgoing=False,
                    body=text,
                    sent_at=int(body.sent_at_ms) or now_ms,
                    state=RECEIVED_STATE,
                    now=now_ms,
                    received_at=now_ms,
                    waku_hash=received.msg_hash or None,
                    evidence={"via": received.via, "waku_hash": received.msg_hash.hex()},
                    reply_to=body.reply_to or None,
                )
                store.conversations.touch(chat_id, now=now_ms, unread_delta=1)
            return store.messages.get(rowid)

        stored = await self._db.run(add)
        return None if stored is None else self._message_view(stored)

    # ==== the scheduler =======================================================================
    async def _scheduler(self) -> None:
        while True:
            self._wakeup = trio.Event()
            now = self._clock()
            async with self._lock:
                await self._run_due(now)
            wake_at = self._next_wakeup()
            delay = IDLE_WAKEUP if wake_at is None else max(0.0, wake_at - self._clock())
            with trio.move_on_after(min(delay, IDLE_WAKEUP)):
                await self._wakeup.wait()

    def _next_wakeup(self) -> float | None:
        times = [
            self._outbox.next_wakeup(),
            self.requests.next_wakeup(),
            self.checks.next_wakeup(),
            min(self.sync_due.values()) if self.sync_due else None,
            self._flush_at,
        ]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    async def _run_due(self, now: float) -> None:
        if self._flush_at is not None and self._flush_at <= now:
            await self._flush()
        for entry in self._outbox.due(now):
            if entry.message_id in self.pending and not entry.in_flight:
                await self._attempt(entry.message_id)
        resend, expired = self.requests.due(now)
        for transition_flow in resend:
            chat_key = transition_flow.chat_key
            if chat_key in self.links:
                await self._send_request(chat_key, self.requests.resent(chat_key, now))
        for transition in expired:
            flow = next(
                (f for f in self.requests.all() if f.history and f.history[-1] is transition),
                None,
            )
            if flow is not None:
                await self._save_flow(flow.chat_key, transition)
        for chat_id, due in list(self.sync_due.items()):
            if due <= now:
                await self._send_sync(chat_id, now)
        for chat_id, channel in self.channels.items():
            if channel.waiting():
                lost = channel.give_up_waiting(
                    int(now * 1000), int(self.config.give_up_missing_after * 1000)
                )
                if lost:
                    await self._deliver_released(chat_id, lost, now)
        if self.node.store_peers():
            for query in self.checks.due(now):
                self._start_query(query)

    async def _deliver_released(self, chat_id: str, sds_events: list[Any], now: float) -> None:
        peer = self.peer_of_chat[chat_id]
        for event in sds_events:
            if isinstance(event, Lost):
                self._emit(ev.MessagesLost(chat_id, len(event.entries)))
            elif isinstance(event, Delivered) and event.frame.content:
                received = Received(self.pubsub_topic, WakuMessage(b"", ""), b"", "sds")
                view = await self._store_incoming(chat_id, peer, event.frame, received, now)
                if view is not None:
                    self._emit(ev.MessageAdded(view))
        self._save_later(chat_id=chat_id)

    async def _send_sync(self, chat_id: str, now: float) -> None:
        peer = self.peer_of_chat.get(chat_id)
        link = self.links.get(peer or "")
        channel = await self._channel(chat_id)
        frame = channel.make_sync(secrets.token_hex(16), int(now * 1000))
        if frame is None or link is None:
            self.sync_due.pop(chat_id, None)
            return
        try:
            envelope = self._sessions.seal(
                link.identity_key, direct_pb2.DirectPayload(sds_frame=frame.encode())
            )
        except DirectError as exc:
            log.warning("cannot send a sync to %s: %s", chat_id, exc)
            self.sync_due.pop(chat_id, None)
            return
        await self._save_sessions()
        message = self._waku_message(conversation_content_topic(chat_id), envelope)
        try:
            self.node.publish(self.pubsub_topic, message)
        except NoPeersReached:
            self.sync_due[chat_id] = now + SYNC_RETRY
            return
        self.sync_due.pop(chat_id, None)
        self._save_later(chat_id=chat_id)

    # ==== store queries =======================================================================
    def _start_query(self, query: Query) -> None:
        if self._nursery is None:  # stopping: the query is asked again after a restart
            self.checks.query_failed(query, self._clock())
            return
        self._nursery.start_soon(self._run_query, query)

    async def _run_query(self, query: Query) -> None:
        """Ask the best store node; on failure the next one (failover), then give up for
        now (the core schedules the retry)."""
        for peer in self.node.store_peers()[:STORE_TRIES]:
            try:
                await self._ask(peer, query)
            except StoreClientError as exc:
                log.info("store query to %s failed: %s", peer, exc)
                self.node.record_store(peer, False)
                self._store_reached(False)
                continue
            self.node.record_store(peer, True)
            self._store_reached(True)
            self._poke()
            return
        async with self._lock:
            self.checks.query_failed(query, self._clock())
            if isinstance(query, RangeQuery):
                self._catch_up_progress(failed=True)
        self._poke()

    async def _ask(self, peer: ID, query: Query) -> None:
        if isinstance(query, PresenceQuery):
            present = await self.node.store.present(peer, query.hashes)
            async with self._lock:
                await self._on_presence(query, present, peer)
        elif isinstance(query, RangeQuery):
            hashes = await self._range_hashes(peer, query)
            async with self._lock:
                await self._on_range(query, hashes)
        else:
            found = await self._fetch(peer, query)
            async with self._lock:
                for event in self.checks.fetch_answer(query, found, self._clock()):
                    if isinstance(event, NotRetrieved):
                        log.info("store listed %s but never returned it", event.msg_hash.hex())

    def _store_reached(self, ok: bool) -> None:
        if self.store_ok != ok:
            self.store_ok = ok
            self._emit(ev.HealthUpdated(self.health()))

    async def _on_presence(self, query: PresenceQuery, present: set[bytes], peer: ID) -> None:
        now = self._clock()
        for event in self.checks.presence_answer(query, present, str(peer), now):
            if isinstance(event, Stored):
                message_id = self.hash_to_message.get(event.msg_hash)
                if message_id is None or message_id not in self._outbox:
                    continue
                state = self._outbox.get(message_id).state
                if state in (ob.State.QUEUED, ob.State.SENT, ob.State.FAILED):
                    await self._evidence(
                        message_id,
                        "store_confirmed",
                        store_node=event.store_peer,
                        waku_hash=event.msg_hash.hex(),
                    )

    async def _range_hashes(self, peer: ID, query: RangeQuery) -> list[bytes]:
        request = StoreQueryRequest(
            request_id=new_request_id(),
            include_data=False,
            pubsub_topic=query.pubsub_topic,
            content_topics=query.content_topics,
            time_start=query.start_ns,
            time_end=query.end_ns,
            pagination_forward=True,
            pagination_limit=MAX_PAGE_SIZE,
        )
        results = await self.node.store.query_all(peer, request)
        return [kv.message_hash for kv in results]

    async def _on_range(self, query: RangeQuery, hashes: list[bytes]) -> None:
        now = self._clock()
        for event in self.checks.range_answer(query, hashes, now):
            if isinstance(event, CursorAdvanced):
                cursor_ms = int(event.cursor * 1000)

                cursors = [
                    SyncCursor(event.pubsub_topic, topic, cursor_ms, None, int(now * 1000))
                    for topic in event.content_topics
                ]
                await self._db.run(_save_cursors(cursors))
                self.last_catch_up = now
                self._catch_up_progress()
            elif isinstance(event, NotRetrieved):
                log.info("store listed %s but never returned it", event.msg_hash.hex())

    async def _fetch(self, peer: ID, query: FetchQuery) -> set[bytes]:
        request = StoreQueryRequest(
            request_id=new_request_id(),
            include_data=True,
            message_hashes=query.hashes,
            pagination_forward=True,
            pagination_limit=MAX_PAGE_SIZE,
        )
        results = await self.node.store.query_all(peer, request)
        found: set[bytes] = set()
        for kv in results:
            if kv.message is None:
                continue
            pubsub_topic = kv.pubsub_topic or self.pubsub_topic
            if kv.message.hash(pubsub_topic) != kv.message_hash:
                log.warning("store returned a message whose hash does not match; ignored")
                continue
            found.add(kv.message_hash)
            async with self._lock:
                await self._on_received(
                    Received(pubsub_topic, kv.message, kv.message_hash, "store")
                )
        return found


def _by_id(message_id: str) -> Callable[[Store], StoredMessage | None]:
    return lambda store: store.messages.by_id(message_id)


def _save_cursors(cursors: list[SyncCursor]) -> Callable[[Store], None]:
    def save(store: Store) -> None:
        with store.db.transaction():
            for cursor in cursors:
                store.sync_cursors.save(cursor)

    return save


def _hash_of(evidence: dict[str, Any]) -> bytes | None:
    value = evidence.get("waku_hash")
    if isinstance(value, str) and len(value) == 64:
        return bytes.fromhex(value)
    return None


def _write_ratchet(
    store: Store, pickled: dict[str, Any], now_ms: int, handled: list[bytes]
) -> None:
    """The Olm sessions together with the hashes of the messages they decrypted since the
    last save: a crash must leave a message either remembered as handled or decryptable."""
    store.olm_sessions.save(pickled, now=now_ms)
    _write_handled(store, now_ms, handled)


def _write_handled(store: Store, now_ms: int, handled: list[bytes]) -> None:
    if handled:
        store.received_hashes.add(handled, expires_at=now_ms + RECEIVED_KEPT_FOR * 1000)
        store.received_hashes.expire(now=now_ms)


__all__ = ["Messenger", "MessengerConfig", "format_chat_key"]
