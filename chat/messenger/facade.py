"""The messenger: the one façade every face talks to. Commands in, typed events out.

It composes one module per concern (see the package's __init__) with a node and the
profile database, and keeps the rules they share:

- Persist before the wire. A command commits its effect (the outbox entry, the request flow,
  the ratcheted Olm session) before anything is published, so a crash loses nothing and
  never reuses a ratchet key (persist.py).
- One lock for all protocol state: this one. Commands, received messages and timers take it
  in turn; network round trips (store queries, light pushes) run outside it and report back
  under it. A clean stop waits for the step holding it, so no step is saved halfway.
- Evidence only. A message's state moves when the transport reached a peer (sent), a store
  node listed its hash (stored), or the recipients' SDS traffic named it (delivered); the
  trace records what proved each step (sending.py).
- Received input is untrusted: anything that fails to decrypt, replays, or names a sender
  other than the one the crypto proved is dropped, logged and reported as a `Rejected`
  event; the user never sees it (receive.py).

Timers (outbox attempts, request re-sends, SDS syncs, store checks, giving up on missing
messages, batched saves) all run from one scheduler task (scheduler.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable

import trio

from chat import events as ev
from chat.client_node import ClientNode, ClientNodeConfig
from chat.contacts import ContactRequests
from chat.direct import CONTACT_REQUEST_PARTITIONS, DirectSessions, contact_request_topic_of
from chat.errors import ConfigError
from chat.history import ChatHistory, search_views
from chat.identity import Identity, IdentityError, sanitize_display_text, validate_display_name
from chat.light_node import LightClientNode, LightNodeConfig
from chat.messenger.bandwidth import bandwidth_view
from chat.messenger.channels import SdsChannels
from chat.messenger.communities import CommunityChats
from chat.messenger.community_commands import CommunityCommands
from chat.messenger.community_joins import CommunityJoins
from chat.messenger.community_state import KIND as COMMUNITY
from chat.messenger.config import CONTACT_SHARD, MAX_TEXT_LENGTH, STOP_GRACE, MessengerConfig
from chat.messenger.contact_book import ContactBook
from chat.messenger.contacts_flow import ContactsFlow
from chat.messenger.context import EventFanOut, MessengerContext
from chat.messenger.conversation import Conversations, Transport
from chat.messenger.direct_chats import DirectChats
from chat.messenger.group_invites import GroupInvitesFlow
from chat.messenger.group_state import Groups
from chat.messenger.groups import KIND as GROUP
from chat.messenger.groups import GroupChats
from chat.messenger.health import HealthWatch, watch_topic
from chat.messenger.light_transport import LightTransport
from chat.messenger.node import MessengerNode
from chat.messenger.observed import TelemetryFigures
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.messenger.receive import Receiver
from chat.messenger.scheduler import Scheduler
from chat.messenger.sending import Sending
from chat.messenger.startup import read_profile
from chat.messenger.strangers import Strangers
from chat.messenger.syncs import Syncs
from chat.messenger.transport import BestEffort, CountedAs, RelayTransport
from chat.messenger.verification_flow import VerificationFlow
from chat.reliability.store_checks import StoreChecks
from chat.reliability.store_queries import StoreQueries
from chat.request_budget import StrangerBudget
from chat.text import find_lone_surrogate, join_surrogate_pairs
from chat.waku.host import generate_node_key
from storage.aio import AsyncStore
from storage.repositories.conversations import Conversation as StoredConversation
from storage.store import Store


def client_node(config: MessengerConfig) -> ClientNode | LightClientNode:
    """The real node for these settings (InvalidInput for a bad peer address)."""
    try:
        if config.light:
            return LightClientNode(
                LightNodeConfig(
                    listen_addrs=config.listen_addrs,
                    peers=config.peers,
                    store_peers=config.store_peers,
                    cluster_id=config.cluster_id,
                    shards=config.shards,
                    key_pair=config.node_key or generate_node_key(),
                )
            )
        return ClientNode(
            ClientNodeConfig(
                listen_addrs=config.listen_addrs,
                peers=config.peers,
                store_peers=config.store_peers,
                cluster_id=config.cluster_id,
                shards=config.shards,
                key_pair=config.node_key or generate_node_key(),
                faults=config.faults,
                mdns=config.mdns,
                mdns_interfaces=config.mdns_interfaces,
                mdns_port=config.mdns_port,
                clock_ns=lambda: int(config.clock() * 1_000_000_000),
            )
        )
    except ConfigError as exc:
        raise ev.InvalidInput(str(exc)) from None


class Messenger(CommunityCommands):
    def __init__(
        self,
        store: Store,
        config: MessengerConfig | None = None,
        *,
        db: AsyncStore | None = None,
        node: MessengerNode | None = None,
    ) -> None:
        """`db`: the store's async runner, when a face already reads through one (its calls
        and ours must share one worker: they share one connection). `node`: the network
        side; by default a ClientNode built from `config`."""
        self.config = config or MessengerConfig()
        self._clock = self.config.clock
        self.node: MessengerNode = node if node is not None else client_node(self.config)
        self._db = db if db is not None else AsyncStore(store)
        self.history = ChatHistory(self._db)
        self._lock = trio.Lock()
        self._events = EventFanOut()
        self._scheduler = Scheduler(self._lock, self._clock)
        ctx = self._ctx = MessengerContext(
            self.config,
            self._clock,
            self._db,
            store.session_pickle_key,
            self._events,
            self._scheduler.wake,
        )
        self.pubsub_topic = self.node.pubsub_topic(CONTACT_SHARD)
        self.checks = StoreChecks(self.config.store_checks)

        # The pipeline and its 1:1 parts.
        contacts = self._contacts = ContactBook()
        requests = ContactRequests(self.config.requests)
        olm = self._olm = OlmCrypto(ctx)
        budget = StrangerBudget(self.config.strangers, self._clock())
        strangers = self._strangers = Strangers(ctx, budget, contacts, requests, olm)
        kinds = self.node.bandwidth.kinds
        for partition in range(CONTACT_REQUEST_PARTITIONS):
            kinds.set_topic(contact_request_topic_of(partition), "contact_request")
        conversations = Conversations(kinds)
        channels = SdsChannels(ctx)
        writer = self._writer = StateWriter(ctx, olm, channels)
        transport: Transport = RelayTransport(self.node)
        confirm = None
        if isinstance(self.node, LightClientNode):
            light = LightTransport(self.node)
            transport, confirm = light, light.publish_confirmed
        sending = self._sending = Sending(
            ctx, conversations, channels, transport, self.checks, writer, self.history
        )
        sending.confirm = confirm
        sending.lock = self._lock
        sending.sign = self.node.signed
        syncs = Syncs(ctx, conversations, channels, CountedAs(transport, kinds, "sync"), writer)
        self._watch = functools.partial(watch_topic, ctx, self.checks)
        direct = self._direct = DirectChats(
            ctx,
            contacts,
            requests,
            olm,
            conversations,
            sending,
            self.history,
            self._watch,
            self.pubsub_topic,
        )
        group_state = Groups(store.group_pickle_key, self.config.group_keys)
        writer.add_state(group_state)
        groups = self._groups = GroupChats(
            ctx,
            contacts,
            requests,
            olm,
            conversations,
            sending,
            syncs,
            channels,
            self.history,
            writer,
            group_state,
            self._watch,
            self.pubsub_topic,
        )
        invites = self._invites = GroupInvitesFlow(
            ctx, contacts, olm, writer, transport, direct, groups, self.config.invites
        )
        groups.invites = invites
        receiver = self._receiver = Receiver(
            ctx,
            conversations,
            channels,
            self.checks,
            writer,
            sending,
            syncs,
            self._chat_view,
            strangers_queue=self.config.strangers.queue,
            bandwidth=self.node.bandwidth,
        )
        communities = self._communities = CommunityChats(
            ctx, self.node, conversations, sending, channels, self.history, transport,
            self._watch, self.config.communities, self.config.cluster_id,
        )  # fmt: skip
        community_joins = self._community_joins = CommunityJoins(
            ctx, self.node, olm, writer, transport, communities, self._watch,
            receiver.add_inbox, self.pubsub_topic,
        )  # fmt: skip
        communities.joins = community_joins
        community_joins.scan_now = self.checks.scan_now
        self._health = HealthWatch(
            ctx, self.node, self.checks, sending, receiver, self._lock, budget
        )
        best_effort = BestEffort(transport)
        self._contacts_flow = ContactsFlow(
            ctx, contacts, requests, olm, writer, best_effort, direct, strangers, self.pubsub_topic
        )
        self._verification = VerificationFlow(
            ctx, contacts, self._contacts_flow, direct, olm, writer, best_effort
        )
        self._store_queries = StoreQueries(
            self.checks,
            self.node,
            self._health,
            lock=self._lock,
            clock=self._clock,
            wake=self._scheduler.wake,
            default_pubsub_topic=self.pubsub_topic,
        )
        # Timed features, in the order they run on each pass of the scheduler.
        for feature in (
            writer,
            groups,
            sending,
            self._contacts_flow,
            invites,
            communities,
            community_joins,
            strangers,
            syncs,
            receiver,
            self._store_queries,
        ):
            self._scheduler.register(feature)

    # ==== lifecycle ===========================================================================
    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Messenger]:
        await self._load()
        async with self.node.run(), trio.open_nursery() as nursery:
            self._health.running = True
            self._store_queries.attach(nursery)
            self._sending.attach(nursery)  # light pushes run in it, without the lock
            nursery.start_soon(self._receiver.run, self.node.inbox, self._lock)
            nursery.start_soon(self._scheduler.run)
            nursery.start_soon(self._health.watch_connections)
            nursery.start_soon(self._health.watch_health)
            nursery.start_soon(self._health.watch_outages)
            nursery.start_soon(self._health.watch_dials)
            self.node.health.set_catch_up(self._health.catch_up)
            self.node.health.on_reset(self._health.after_reset)
            if isinstance(self.node, LightClientNode):
                self.node.follow_interest(self.checks.watched)
            try:
                yield self
            finally:
                with trio.CancelScope(shield=True):
                    # The step under the lock now (a received acceptance: the chat, then the
                    # flow, saved in turn) ends before the tasks are cancelled. Cut halfway it
                    # would leave the profile behind what memory, and the API, showed: mutual
                    # until the stop, request_sent after it.
                    held = False
                    with trio.move_on_after(STOP_GRACE):
                        await self._lock.acquire()
                        held = True
                    nursery.cancel_scope.cancel()
                    if not held:  # the grace ran out: that step is cut
                        await self._lock.acquire()
                    try:
                        await self._writer.flush()
                        await self._strangers.save_count()
                    finally:
                        self._lock.release()
                self._health.running = False
                self._store_queries.attach(None)
                self._sending.attach(None)
                self._events.close()

    async def _load(self) -> None:
        now = self._clock()
        saved = await read_profile(self._db, now)
        for msg_hash in saved.handled:
            self.checks.received(msg_hash, now)
        self._ctx.identity = saved.identity
        self._olm.load(saved.identity, saved.olm)
        self._contacts.verified = saved.verified
        await self._contacts_flow.restore(saved.flows, saved.stranger_requests_dropped)
        self._direct.restore(saved.conversations)
        self._groups.groups.load(
            saved.identity.chat_key_text, saved.group_logs, saved.group_sessions
        )
        self._groups.restore(saved.conversations)
        self._invites.restore(saved.group_invites)
        self._sending.restore(saved.outbox, saved.recipients)
        await self._communities.load()
        await self._community_joins.load()
        # Watch our contact-request partition and every chat, from their persisted cursors.
        request_topic = self._contacts_flow.request_topic
        self._receiver.add_inbox(request_topic, self._contacts_flow)
        await self._watch(self.pubsub_topic, request_topic)
        for conversation in [*self._direct.conversations(), *self._groups.conversations()]:
            await self._watch(conversation.pubsub_topic, conversation.content_topic)
        self.checks.catch_up(now)

    def listen_addrs(self) -> list[str]:
        return self.node.full_multiaddrs()

    # ==== events ==============================================================================
    def subscribe(self, buffer: int = 1000) -> ev.Subscription:
        """Every event from now on; close the subscription when done."""
        return self._events.subscribe(buffer)

    @property
    def event_subscribers(self) -> int:
        """Subscriptions open now."""
        return self._events.subscribers

    def observe(self, observer: Callable[[ev.Event], None]) -> None:
        """Call `observer` with every event as it is emitted, on the message path (telemetry's
        recorder: O(1), never waits). Unlike `subscribe`, nothing is buffered or dropped."""
        self._events.observers.append(observer)

    def conversation_secret(self, chat_id: str) -> tuple[str, bytes, int] | None:
        """For telemetry's blinded references (chat/telemetry/identifiers.py): the
        conversation's kind, a value its members share that its content topic does not
        reveal, and its member count; None for an unknown chat. A 1:1 chat: the pair secret
        both sides made in the encrypted contact request and answer (contacts_flow.py), which
        their public links do not give; with a contact on an older version, both chat keys
        (its id is their hash, so seeing the topic is not enough). A group: its signed
        'created' change, which only those given its log hold (its id is that change's
        hash)."""
        peer = self._direct.peer_of_chat.get(chat_id)
        if peer is not None:
            paired = self._contacts_flow.pair_secret(peer)
            if paired is not None:
                return "direct", paired, 2
            keys = sorted([self.me.chat_key_text, peer])
            return "direct", "\n".join(keys).encode(), 2
        group = self._groups.groups.get(chat_id)
        for conv in self._groups.conversations():
            if conv.id == chat_id and group is not None:
                members = len(conv.membership.members()) + 1
                return conv.kind, b"group\n" + group.log.root.signed, members
        return None

    def telemetry_figures(self) -> TelemetryFigures:
        """For telemetry's session and heartbeat: the mode, filter subscriptions held, and
        failed dials by cause (totals since start)."""
        node = self.node
        if isinstance(node, LightClientNode):
            core = node.filter.core
            held = sum(len(core.held_by(peer)) for peer in core.active_peers)
            failures = dict(node.connectivity.peers.dial_failures)
            return TelemetryFigures("light", held, failures)
        if isinstance(node, ClientNode):
            return TelemetryFigures("relay", 0, dict(node.connectivity.peers.dial_failures))
        return TelemetryFigures()

    @property
    def events_dropped(self) -> int:
        return self._events.dropped

    @property
    def rejected(self) -> int:
        """Received messages refused since start."""
        return self._ctx.rejected

    # ==== identity ============================================================================
    @property
    def me(self) -> Identity:
        return self._ctx.me

    @property
    def sessions(self) -> DirectSessions | None:
        """The profile's Olm sessions (None until the messenger runs)."""
        return self._olm.sessions

    def identity(self) -> ev.IdentityView:
        me = self.me
        return ev.IdentityView(me.chat_key_text, me.display_name, me.contact_link())

    async def set_display_name(self, name: str) -> ev.IdentityView:
        """Change our display name (sanitized like every name), keep it in the profile, and
        tell every contact (see ContactsFlow.rename)."""
        try:
            name = validate_display_name(join_surrogate_pairs(name))
        except IdentityError as exc:
            raise ev.InvalidInput(str(exc)) from None
        async with self._lock:
            await self._contacts_flow.rename(name)
        return self.identity()

    # ==== contacts ============================================================================
    async def contacts(self) -> list[ev.ContactView]:
        return self._contacts_flow.views()

    async def add_contact(self, link: str, intro: str = "") -> ev.ContactView:
        parsed, intro = self._contacts_flow.parse(link, intro)
        async with self._lock:
            return await self._contacts_flow.add(parsed, link, intro)

    async def accept_contact(self, chat_key: str) -> ev.ContactView:
        async with self._lock:
            return await self._contacts_flow.decide(chat_key, accepted=True)

    async def decline_contact(self, chat_key: str) -> ev.ContactView:
        async with self._lock:
            return await self._contacts_flow.decide(chat_key, accepted=False)

    async def cancel_contact_request(self, chat_key: str) -> ev.ContactView:
        async with self._lock:
            return await self._contacts_flow.cancel(chat_key)

    # ==== emoji verification ==================================================================
    def verification(self, chat_key: str) -> ev.VerificationView:
        """Where the emoji verification with a contact stands (NotFound for anyone else)."""
        self._contacts_flow.contact(chat_key)
        return self._verification.view(chat_key)

    async def start_verification(self, chat_key: str) -> ev.VerificationView:
        """Begin an emoji comparison with a contact (both must be online)."""
        async with self._lock:
            await self._verification.start(chat_key)
        return self._verification.updated(chat_key)

    async def confirm_verification(self, chat_key: str) -> ev.VerificationView:
        """The user says the emoji on both screens match."""
        async with self._lock:
            await self._verification.confirm(chat_key)
        return self._verification.updated(chat_key)

    async def cancel_verification(self, chat_key: str) -> ev.VerificationView:
        """The emoji differ, or the user stops: tell the contact."""
        async with self._lock:
            await self._verification.cancel(chat_key)
        return self._verification.updated(chat_key)

    # ==== chats and messages ==================================================================
    async def chats(self) -> list[ev.ChatView]:
        return [
            self._view_of(conv)
            for conv in await self.history.conversations()
            if conv.kind != COMMUNITY or self._communities.lists_chat(conv.id)
        ]

    async def _chat_view(self, chat_id: str) -> ev.ChatView:
        return self._view_of(await self.history.conversation(chat_id))

    def _view_of(self, conv: StoredConversation) -> ev.ChatView:
        if conv.kind == GROUP:
            return self._groups.chat_view_of(conv)
        if conv.kind == COMMUNITY:
            return ev.chat_view_of(conv)
        return self._direct.view(conv)

    async def mark_read(self, chat_id: str) -> ev.ChatView:
        await self._chat_view(chat_id)
        await self._db.run(lambda s: s.conversations.mark_read(chat_id))
        view = await self._chat_view(chat_id)
        self._events.emit(ev.ChatUpdated(view))
        return view

    async def messages(
        self,
        chat_id: str,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> list[ev.MessageView]:
        """A page of a chat, oldest first: the newest `limit` (before message `before`), or
        the oldest `limit` after message `after`."""
        page = await self.history.page(chat_id, limit=limit, before=before, after=after)
        return await self._sending.views(page)

    async def search(
        self, query: str, *, chat_id: str | None = None, limit: int = 20
    ) -> list[ev.SearchResultView]:
        """Messages with every word of `query` (`word*`: words starting with it), in one
        chat or all, best match first, each with the words around the match."""
        hits = await self.history.search(query, chat_id=chat_id, limit=limit)
        names = {
            chat: (await self._chat_view(chat)).name
            for chat in {hit.message.conversation_id for hit in hits}
        }
        return search_views(hits, names)

    async def message(self, message_id: str) -> ev.MessageView:
        return await self._sending.message(message_id)

    async def trace(self, message_id: str) -> list[ev.TraceStep]:
        stored = await self.history.message(message_id)
        history = await self._db.run(lambda s: s.messages.history(stored.id))
        return [ev.TraceStep(t.at / 1000, t.from_state, t.to_state, t.evidence) for t in history]

    async def send_text(
        self, chat_id: str, text: str, reply_to: str | None = None
    ) -> ev.MessageView:
        """Send a message; `reply_to` must name a message of this chat."""
        text = unicode_text(text, "a message")
        if not sanitize_display_text(text, multiline=True):
            raise ev.InvalidInput(
                "an empty message cannot be sent (invisible characters alone count as empty)"
            )
        if len(text) > MAX_TEXT_LENGTH:
            raise ev.InvalidInput(f"a message has at most {MAX_TEXT_LENGTH} characters")
        if reply_to is not None:
            reply_to = unicode_text(reply_to, "reply_to") or None
        async with self._lock:
            if self._groups.groups.get(chat_id[:64]) is not None:
                view = await self._groups.send_text(chat_id, text, reply_to)
            elif self._communities.channel_community(chat_id) is not None:
                view = await self._communities.send_text(chat_id, text, reply_to)
            else:
                view = await self._direct.send_text(chat_id, text, reply_to)
        self._events.emit(ev.MessageAdded(view))
        self._events.emit(ev.ChatUpdated(await self._chat_view(chat_id)))
        self._scheduler.wake()
        return view

    async def retry(self, message_id: str) -> ev.MessageView:
        async with self._lock:
            await self._sending.retry(message_id)
        self._scheduler.wake()
        return await self.message(message_id)

    async def retry_all(self) -> int:
        count = 0
        for message_id in self._sending.undelivered_ids():
            with contextlib.suppress(ev.MessengerError):
                await self.retry(message_id)
                count += 1
        return count

    async def discard(self, message_id: str) -> None:
        async with self._lock:
            await self._sending.discard(message_id)
        self._events.emit(ev.MessageUpdated(await self.message(message_id)))

    async def outbox(self) -> list[ev.OutboxItemView]:
        """Everything not yet delivered: messages (failed ones included) and open requests."""
        return (
            await self._sending.outbox_items()
            + self._contacts_flow.outbox_items()
            + self._invites.outbox_items()
        )

    # ==== private groups ======================================================================
    async def groups(self) -> list[ev.GroupView]:
        return self._groups.views()

    async def group(self, group_id: str) -> ev.GroupView:
        return self._groups.view(self._groups.group(group_id))

    async def create_group(self, name: str, members: list[str]) -> ev.GroupView:
        """A new group with us as its creator and admin; every member (a contact) is
        invited. Its id is also its chat id."""
        name = unicode_text(name, "a group name")
        members = [unicode_text(m, "a member's chat key") for m in members]
        async with self._lock:
            return await self._groups.create(name, members)

    async def rename_group(self, group_id: str, name: str) -> ev.GroupView:
        name = unicode_text(name, "a group name")
        async with self._lock:
            return await self._groups.rename(group_id, name)

    async def add_group_member(self, group_id: str, chat_key: str) -> ev.GroupView:
        """Invite a contact to the group (admins only)."""
        chat_key = unicode_text(chat_key, "a chat key")
        async with self._lock:
            return await self._groups.add_member(group_id, chat_key)

    async def remove_group_member(self, group_id: str, chat_key: str) -> ev.GroupView:
        """Remove a member, or withdraw an invitation (admins only): our next message goes
        in a new session they cannot read."""
        async with self._lock:
            return await self._groups.remove_member(group_id, chat_key)

    async def grant_group_admin(self, group_id: str, chat_key: str) -> ev.GroupView:
        async with self._lock:
            return await self._groups.grant_admin(group_id, chat_key)

    async def leave_group(self, group_id: str) -> ev.GroupView:
        async with self._lock:
            return await self._groups.leave(group_id)

    async def invites(self) -> list[ev.InviteView]:
        """Group invitations, received and sent, newest first."""
        return self._invites.views()

    async def accept_invite(self, invite_id: str) -> ev.InviteView:
        async with self._lock:
            return await self._invites.accept(invite_id)

    async def decline_invite(self, invite_id: str) -> ev.InviteView:
        async with self._lock:
            return await self._invites.decline(invite_id)

    # ==== health ==============================================================================
    def health(self) -> ev.HealthView:
        """The health monitor's verdict (chat/waku/health.py), with relay peers per shard."""
        return self._health.view()

    async def bandwidth(self) -> ev.BandwidthView:
        """Bytes in and out per protocol and per relay message kind, since the node started
        and over the last minute and hour (chat/waku/bandwidth.py). Async: the meter runs on
        trio's clock."""
        return bandwidth_view(self.node.bandwidth.snapshot(trio.current_time()))

    async def reconnect_now(self) -> ev.HealthView:
        """Dial every known peer that is not connected, now, instead of at its next
        scheduled dial (never a second dial to a peer being dialled). NotPossible when
        chinwag knows no peer to dial."""
        return await self._health.reconnect_now()


def unicode_text(text: str, what: str) -> str:
    """`text` with surrogate pairs joined; InvalidInput if a lone surrogate is left (it is
    not Unicode text: nothing could store or send it)."""
    lone = find_lone_surrogate(text)
    if lone is not None:
        raise ev.InvalidInput(f"{what} is not Unicode text: it has {lone.describe()}")
    return join_surrogate_pairs(text)
