"""Communities: the third conversation kind on the pipeline, one conversation per channel.

A community (chat/communities/) lives on its own shard: the client relays it from creation
or acceptance on, and signs everything it publishes there with the shard's protection key
pair (chat/waku/protected.py; the relays on the shard drop what is not signed). On the
shard:
- the community's content topic carries its signed description (the newest valid version
  wins: chat/communities/book.py; forged, older and oversized ones are logged and ignored);
- each channel is a content topic of its own with its own SDS channel; its frames are
  sealed with the content key of the current epoch and signed inside by their sender
  (`ChannelCrypto`): "seen by n" is the SDS acknowledgements of the members.
Join requests, answers and keys travel on the community's requests topic on the network's
default shard (a requester holds no shard key): community_joins.py.

Moderation (kick, ban, roles, channels) makes the next description, signed with the owner
key (or an admin's chat key), saved, then published; kick and ban start a new epoch whose
key goes over Olm to every remaining member, and ban a new shard key pair too.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from chat import events as ev
from chat.communities import moderation
from chat.communities.channel import (
    channel_content_topic,
    community_content_topic,
    new_content_key,
)
from chat.communities.description import (
    Description,
    DescriptionError,
    JoinPolicy,
    Member,
    first_description,
    sign_description,
)
from chat.communities.moderation import ModerationError, Outcome
from chat.communities.redo import LostChanges, lost_changes
from chat.communities.roles import PermissionRefused, Role
from chat.communities.shards import ShardChoiceError, choose_shard
from chat.communities.signer import OwnerKey
from chat.history import ChatHistory
from chat.identity import format_chat_key
from chat.messenger.channels import SdsChannels
from chat.messenger.community_state import (
    KIND,
    ChannelCrypto,
    ChannelMembership,
    Communities,
    Community,
    load_communities,
    save_community,
)
from chat.messenger.config import MAX_MESSAGE_ID_LENGTH, CommunityPolicy
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import (
    Conversation,
    Conversations,
    PublishFailed,
    Transport,
    Unsealed,
    waku_message,
)
from chat.messenger.node import MessengerNode
from chat.messenger.sending import Sending
from chat.proto import direct_pb2
from chat.waku.message import WakuMessage
from chat.waku.protected import ShardKeyPair
from chat.waku.topics import format_pubsub_topic
from storage.repositories.conversations import Conversation as StoredConversation
from storage.store import Store

if TYPE_CHECKING:
    from chat.messenger.community_joins import CommunityJoins

log = logging.getLogger(__name__)

REPUBLISH_AFTER = 15 * 60.0
"""Seconds between a moderator's publications of the description (presence, and a copy
for store nodes whose retention dropped the last one)."""
RETRY_PUBLISH = 2.0
"""Seconds before a description no relay peer took goes again."""

WatchTopic = Callable[[str, str], Awaitable[None]]


class CommunityChats:
    def __init__(
        self,
        ctx: MessengerContext,
        node: MessengerNode,
        conversations: Conversations,
        sending: Sending,
        channels: SdsChannels,
        history: ChatHistory,
        transport: Transport,
        watch: WatchTopic,
        policy: CommunityPolicy,
        cluster_id: int,
    ) -> None:
        self._ctx = ctx
        self._node = node
        self._conversations = conversations
        self._sending = sending
        self._channels = channels
        self._history = history
        self._transport = transport
        self._watch = watch
        self.policy = policy
        self.cluster_id = cluster_id
        self.communities = Communities()
        self._rng = random.Random()
        self._publish_at: dict[str, float] = {}
        """Moderated communities: when their description goes out again."""
        self.joins: CommunityJoins | None = None
        """Set by the façade: requests and keys go through it."""

    # ---- loading and joining the shard -----------------------------------------------------
    async def load(self) -> None:
        own = self._ctx.me.chat_key_text
        for community in await self._ctx.db.run(lambda s: load_communities(s, own)):
            self.communities.add(community)
            await self.serve(community)
            if community.role in (Role.OWNER, Role.ADMIN):
                self._publish_at[community.id] = self._ctx.clock()

    async def serve(self, community: Community) -> None:
        """Relay the community's shard (signing with its key pair when we hold it), watch its
        description topic and every channel we are a member of."""
        self._node.join_shard(
            community.pubsub_topic,
            community.protection,
            community.protection_public() if community.protection is None else None,
        )
        await self._watch(community.pubsub_topic, community_content_topic(community.id))
        if community.member:
            await self._open_channels(community)

    async def _open_channels(self, community: Community) -> None:
        now_ms = self._ctx.now_ms()
        for channel in community.description.channels:
            if self._conversations.get(channel.id) is not None:
                continue
            topic = channel_content_topic(channel.id)
            title = f"{community.description.name} #{channel.name}"
            conv = StoredConversation(
                channel.id, KIND, title, community.pubsub_topic, topic, now_ms, now_ms
            )

            def add(store: Store, conv: StoredConversation = conv) -> None:
                if store.conversations.get(conv.id) is None:
                    store.conversations.add(conv)

            await self._ctx.db.run(add)
            self._conversations.add(
                Conversation(
                    id=channel.id,
                    kind=KIND,
                    pubsub_topic=community.pubsub_topic,
                    content_topic=topic,
                    crypto=ChannelCrypto(community, channel.id, self._ctx.me),
                    membership=ChannelMembership(community),
                    on_control=self._on_control,
                )
            )
            await self._watch(community.pubsub_topic, topic)
            self._ctx.emit(ev.ChatUpdated(await self.chat_view(channel.id)))

    async def _on_control(self, conversation: Conversation, unsealed: Unsealed) -> None:
        self._ctx.reject("a community channel message that is not an SDS frame")

    def conversations(self) -> list[Conversation]:
        return self._conversations.of_kind(KIND)

    # ---- creating ------------------------------------------------------------------------
    async def create(
        self,
        name: str,
        about: str,
        join_policy: str,
        channels: list[str] | None,
        shard: int | None,
        shared_shard: bool,
    ) -> ev.CommunityView:
        try:
            policy = JoinPolicy.from_label(join_policy)
            plan = choose_shard(
                self.cluster_id,
                self.communities.shards_taken(self.cluster_id),
                self._rng,
                community_range=self.policy.community_range,
                named=shard,
                shared=shared_shard,
                shared_shard=self.policy.shared_shard,
            )
            owner_key = OwnerKey.generate()
            protection = ShardKeyPair.generate() if plan.protected else None
            me = self._ctx.me
            first = first_description(
                owner_key.chat_key,
                me.chat_key_text,
                me.display_name,
                me.contact_link(),
                name,
                about,
                policy,
                plan.cluster_id,
                plan.shard,
                protection.public_key.to_bytes() if protection else b"",
                tuple(channels if channels is not None else ["general"]),
                self._ctx.clock(),
            )
            description = sign_description(owner_key, first)
        except (DescriptionError, ShardChoiceError) as exc:
            raise ev.InvalidInput(str(exc)) from None
        community = Community(
            description, me.chat_key_text, protection=protection, owner_key=owner_key
        )
        community.keys.add(description.epoch, new_content_key())
        community.owner_last_seen = self._ctx.clock()
        await self._save(community)
        self.communities.add(community)
        await self.serve(community)
        if self.joins is not None:
            await self.joins.watch(community)
        self.publish_description(community)
        view = self.view(community)
        self._ctx.emit(ev.CommunityUpdated(view))
        return view

    async def _save(self, community: Community) -> None:
        now_ms = self._ctx.now_ms()

        def save(store: Store) -> None:
            with store.db.transaction():
                save_community(store, community, now_ms)

        await self._ctx.db.run(save)

    def publish_description(self, community: Community) -> bool:
        """The newest description on the community's topic (the store keeps it for fetches).
        Moderators publish it again every `REPUBLISH_AFTER` (it is the owner's presence:
        "owner last seen"), and every `RETRY_PUBLISH` while no peer takes it (a new shard
        has no relay peers for a moment)."""
        message = waku_message(
            community_content_topic(community.id), community.description.signed, self._ctx.clock()
        )
        published = self._publish(community.pubsub_topic, message)
        delay = REPUBLISH_AFTER if published else RETRY_PUBLISH
        self._publish_at[community.id] = self._ctx.clock() + delay
        self._ctx.wake_scheduler()
        return published

    def next_wakeup(self) -> float | None:
        return min(self._publish_at.values()) if self._publish_at else None

    async def run_due(self, now: float) -> None:
        for community_id, at in list(self._publish_at.items()):
            community = self.communities.get(community_id)
            if community is None or community.role not in (Role.OWNER, Role.ADMIN):
                del self._publish_at[community_id]
            elif at <= now:
                self.publish_description(community)

    def _publish(self, pubsub_topic: str, message: WakuMessage) -> bool:
        try:
            self._transport.publish(pubsub_topic, message)
        except PublishFailed as exc:
            log.info("community message on %s not published: %s", pubsub_topic, exc.reason)
            return False
        return True

    # ---- descriptions from the network -------------------------------------------------------
    async def offer_description(self, signed: bytes, expected_id: str, via: str) -> bool:
        """A description as it arrived: the book decides; a newer one we are in moves our
        state (channels, keys, shard key). True when it was accepted."""
        offered = self.communities.book.offer(signed, expected_id)
        if offered.accepted is None:
            # An older version is what a store scan replays and what honest moderators'
            # messages race with (a concurrent one that lost the tie too): the book logged
            # it; anything else is refused.
            benign = offered.reason.startswith(("a copy", "an older", "a concurrent"))
            if not benign:
                self._ctx.reject(f"a community description in {via}: {offered.reason}")
            return False
        description = offered.accepted
        community = self.communities.get(description.id)
        if community is not None and self.signed_by_owner(description.signer, description):
            seen = min(description.at, self._ctx.clock())  # when they signed it
            community.owner_last_seen = max(community.owner_last_seen or 0, seen)
        lost = self._lost_to(community, description) if community is not None else None
        if community is not None:
            await self.adopt(community, description)
        if self.joins is not None:
            await self.joins.description_arrived(description)
        if community is not None and lost:
            await self._redo(community, lost)
        return True

    def _lost_to(self, community: Community, kept: Description) -> LostChanges | None:
        """A rival of the same number replaces the version we signed: what of ours it lacks."""
        ours = community.description
        if kept.version != ours.version or ours.signer != community.signer(self._ctx.me).chat_key:
            return None
        previous = self.communities.book.previous(kept.id)
        if previous is None or previous.version != ours.version - 1:
            return None
        log.info("community %s: our version %d lost the tie", kept.id[:8], ours.version)
        return lost_changes(previous, ours, kept)

    async def _redo(self, community: Community, lost: LostChanges) -> None:
        """Our changes that lost the tie, made again on top of the kept version."""
        me = self._ctx.me.chat_key_text

        def kick(key: str) -> Callable[[], Outcome]:
            return lambda: moderation.kick(community.description, me, key, self._ctx.clock())

        def ban(key: str) -> Callable[[], Outcome]:
            return lambda: moderation.ban(community.description, me, key, self._ctx.clock())

        def add(member: Member) -> Callable[[], Outcome]:
            return lambda: moderation.add_member(
                community.description, me, member, self._ctx.clock()
            )

        steps = [
            *(kick(key) for key in lost.removed),
            *(ban(key) for key in lost.banned),
            *(add(member) for member in lost.added),
        ]
        for step in steps:
            try:
                await self.apply(community, step)
            except ev.MessengerError as exc:
                log.info("community %s: a lost change not made again: %s", community.id[:8], exc)
        if lost.added and self.joins is not None:
            for member in lost.added:
                await self.joins.send_keys_to(community, member.chat_key)

    @staticmethod
    def signed_by_owner(signer: bytes, description: Description) -> bool:
        """Whether `signer` is the owner (their owner key or their chat key): "owner last
        seen" moves with everything they sign."""
        if signer == description.owner_key:
            return True
        owner = description.member(description.owner)
        return owner is not None and format_chat_key(signer) == owner.chat_key

    async def adopt(self, community: Community, description: Description) -> None:
        """A newer description of a community we hold: saved, and what it changes applied
        (new channels opened, the shard's key followed for validation)."""
        old = community.description
        community.description = description
        self.communities.book.restore(description)
        await self._save(community)
        if description.protection_key != old.protection_key and (
            community.protection is None
            or community.protection.public_key.to_bytes() != description.protection_key
        ):
            # The new secret comes with the new epoch's keys; until then we only validate.
            community.protection = None
            self._node.join_shard(community.pubsub_topic, None, community.protection_public())
        if community.member:
            await self._open_channels(community)
        if description.name != old.name:
            await self._retitle(community)
        self._ctx.emit(ev.CommunityUpdated(self.view(community)))

    # ---- moderation (under the lock) ---------------------------------------------------------
    def community(self, community_id: str) -> Community:
        community = self.communities.get(community_id[:64])
        if community is None:
            raise ev.NotFound(f"no community {community_id[:32]}")
        return community

    async def apply(self, community: Community, step: Callable[[], Outcome]) -> ev.CommunityView:
        """A moderation step: checked, signed, saved, published; a new epoch's keys to every
        remaining member."""
        try:
            outcome = step()
            signed = sign_description(community.signer(self._ctx.me), outcome.description)
        except PermissionRefused as exc:
            raise ev.NotAllowed(str(exc)) from None
        except (ModerationError, DescriptionError) as exc:
            raise ev.NotPossible(str(exc)) from None
        if self.communities.book.offer(signed.signed).accepted is None:
            raise ev.NotPossible("that change would not be accepted by the members")
        renamed = signed.name != community.description.name
        community.description = signed
        if outcome.new_epoch:
            community.keys.add(signed.epoch, new_content_key())
        if outcome.new_protection is not None:
            community.protection = outcome.new_protection
        await self._save(community)
        # Published while our relay still signs with the old shard key: relays and members
        # that check the old key take it, and learn the new key from it.
        self.publish_description(community)
        if self.joins is not None:
            self.joins.publish_description(community)
        if outcome.new_protection is not None:
            self._node.join_shard(community.pubsub_topic, outcome.new_protection)
        if outcome.new_epoch and self.joins is not None:
            await self.joins.send_keys_to_members(community)
        await self._open_channels(community)
        if renamed:
            await self._retitle(community)
        view = self.view(community)
        self._ctx.emit(ev.CommunityUpdated(view))
        return view

    async def _retitle(self, community: Community) -> None:
        """A renamed community: its channels' chats carry the new name."""
        for channel in community.description.channels:
            title = f"{community.description.name} #{channel.name}"
            if self._conversations.get(channel.id) is None:
                continue

            def rename(store: Store, chat_id: str = channel.id, title: str = title) -> None:
                store.conversations.set_title(chat_id, title)

            await self._ctx.db.run(rename)
            self._ctx.emit(ev.ChatUpdated(await self.chat_view(channel.id)))

    async def add_channel(self, community_id: str, name: str) -> ev.CommunityView:
        community = self.community(community_id)
        me = self._ctx.me.chat_key_text
        now = self._ctx.clock()
        return await self.apply(
            community, lambda: moderation.add_channel(community.description, me, name, now)
        )

    async def remove_channel(self, community_id: str, channel_id: str) -> ev.CommunityView:
        """The channel leaves the description: members stop showing and sending in it (its
        history stays on their devices, hidden); its id is never used again."""
        community = self.community(community_id)
        me, now = self._ctx.me.chat_key_text, self._ctx.clock()
        return await self.apply(
            community,
            lambda: moderation.remove_channel(community.description, me, channel_id[:64], now),
        )

    async def edit(
        self, community_id: str, name: str | None, about: str | None
    ) -> ev.CommunityView:
        """A new name or about text (owner and admins), in the next signed description."""
        community = self.community(community_id)
        me, now = self._ctx.me.chat_key_text, self._ctx.clock()
        return await self.apply(
            community,
            lambda: moderation.edit(community.description, me, now, name=name, about=about),
        )

    async def kick(self, community_id: str, chat_key: str) -> ev.CommunityView:
        community = self.community(community_id)
        me, now = self._ctx.me.chat_key_text, self._ctx.clock()
        return await self.apply(
            community, lambda: moderation.kick(community.description, me, chat_key[:64], now)
        )

    async def ban(self, community_id: str, chat_key: str) -> ev.CommunityView:
        community = self.community(community_id)
        me, now = self._ctx.me.chat_key_text, self._ctx.clock()
        return await self.apply(
            community, lambda: moderation.ban(community.description, me, chat_key[:64], now)
        )

    async def set_role(self, community_id: str, chat_key: str, role: str) -> ev.CommunityView:
        community = self.community(community_id)
        try:
            new_role = Role.from_label(role)
        except PermissionRefused as exc:
            raise ev.InvalidInput(str(exc)) from None
        me, now = self._ctx.me.chat_key_text, self._ctx.clock()
        link = community.link_of(chat_key[:64])
        return await self.apply(
            community,
            lambda: moderation.set_role(
                community.description, me, chat_key[:64], new_role, now, contact_link=link
            ),
        )

    async def record_departure(self, community: Community, chat_key: str) -> None:
        """A member told us (a moderator) they leave: the next description without them."""
        now = self._ctx.clock()
        if community.description.role_of(chat_key) is None:
            return
        try:
            await self.apply(
                community, lambda: moderation.leave(community.description, chat_key, now)
            )
        except ev.MessengerError as exc:
            log.info("departure of %s not recorded: %s", chat_key[:16], exc)

    async def leave(self, community_id: str) -> ev.CommunityView:
        """We tell the moderators (the first who gets it removes us, and the others get a
        new epoch), then stop serving and reading the community here. The owner cannot
        leave."""
        community = self.community(community_id)
        if community.role is Role.OWNER:
            raise ev.NotPossible("the owner cannot leave their community")
        if self.joins is not None:
            await self.joins.tell_moderators_we_leave(community)
        community.keys = type(community.keys)()
        self.communities.remove(community.id)
        cid = community.id

        def forget(store: Store) -> None:
            store.communities.remove(cid)

        await self._ctx.db.run(forget)
        view = self.view(community, my_role="none")
        self._ctx.emit(ev.CommunityUpdated(view))
        return view

    # ---- channel messages (under the lock) -------------------------------------------------
    def channel_community(self, chat_id: str) -> Community | None:
        for community in self.communities.all():
            if community.description.channel(chat_id[:64]) is not None:
                return community
        return None

    def lists_chat(self, chat_id: str) -> bool:
        """Whether a channel's chat belongs in the chat list: its community still has the
        channel and still lists us. A channel we left, were removed or banned from, or that
        was removed is hidden (its history stays in the profile: it shows again if we are
        let back in), as Status and Slack drop such channels from their sidebars."""
        community = self.channel_community(chat_id)
        return community is not None and community.role is not None

    async def send_text(self, chat_id: str, text: str, reply_to: str | None) -> ev.MessageView:
        conversation = self._conversations.get(chat_id[:64])
        community = self.channel_community(chat_id)
        if conversation is None or community is None:
            raise ev.NotFound(f"no channel {chat_id[:32]}")
        if not community.member:
            raise ev.NotPossible("you are not a member of this community")
        if reply_to is not None and not await self._has_message(chat_id, reply_to):
            raise ev.InvalidInput("reply_to names no message of this chat")
        now = self._ctx.clock()
        message_id = secrets.token_hex(16)
        body = direct_pb2.ChatMessage(
            id=message_id, text=text, reply_to=reply_to or "", sent_at_ms=int(now * 1000)
        )
        return await self._sending.submit(
            conversation, message_id, body.SerializeToString(), text=text,
            reply_to=reply_to, now=now,
        )  # fmt: skip

    async def _has_message(self, chat_id: str, message_id: str) -> bool:
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            return False
        found = await self._ctx.db.run(lambda s: s.messages.by_message_id(chat_id, message_id))
        return found is not None

    # ---- views -------------------------------------------------------------------------------
    def view(self, community: Community, *, my_role: str | None = None) -> ev.CommunityView:
        return community_view(
            community.description,
            my_role or (community.role.label if community.role else "none"),
            community.owner_last_seen,
        )

    def views(self) -> list[ev.CommunityView]:
        return [self.view(c) for c in self.communities.all()]

    async def chat_view(self, chat_id: str) -> ev.ChatView:
        return ev.chat_view_of(await self._history.conversation(chat_id))


def community_view(
    description: Description, my_role: str, owner_last_seen: float | None
) -> ev.CommunityView:
    return ev.CommunityView(
        id=description.id,
        name=description.name,
        about=description.about,
        join_policy=description.join_policy.label,
        shard=format_pubsub_topic(description.cluster_id, description.shard),
        protection_key=description.protection_key.hex(),
        channels=[ev.CommunityChannelView(c.id, c.name) for c in description.channels],
        members=[
            ev.CommunityMemberView(m.chat_key, m.display_name, m.role.label)
            for m in description.members
        ],
        my_role=my_role,
        owner_last_seen=owner_last_seen,
        version=description.version,
        epoch=description.epoch,
    )
