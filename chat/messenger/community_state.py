"""The communities the messenger holds: each one's newest description, content keys per
epoch, the shard's protection key pair, the owner key (when it is ours) and what we know of
its members' contact links; their loading and saving in the profile DB; and the pipeline's
parts for a community's channels (`ChannelCrypto`, `ChannelMembership`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat.communities.book import DescriptionBook
from chat.communities.channel import ChannelRefused, EpochKeys, open_frame, seal
from chat.communities.description import Description, DescriptionError, decode_description
from chat.communities.roles import Role
from chat.communities.signer import OwnerKey, Signer
from chat.identity import Identity, IdentityError, format_chat_key, parse_chat_key
from chat.messenger.conversation import OpenRefused, SealFailed, Unsealed
from chat.waku.message import WakuMessage
from chat.waku.protected import ShardKeyPair, ShardPublicKey
from chat.waku.topics import format_pubsub_topic
from storage.repositories.communities import Community as StoredCommunity
from storage.repositories.communities import CommunityKey
from storage.store import Store

KIND = "community"
"""The stored conversation kind of a community's channels (shown as 'channel')."""


@dataclass
class Community:
    description: Description
    own: str
    """Our chat key."""
    keys: EpochKeys = field(default_factory=EpochKeys)
    protection: ShardKeyPair | None = None
    owner_key: OwnerKey | None = None
    links: dict[str, str] = field(default_factory=dict)
    """Members' contact links we know (from their join requests), by chat key."""
    owner_last_seen: float | None = None

    @property
    def id(self) -> str:
        return self.description.id

    @property
    def pubsub_topic(self) -> str:
        return format_pubsub_topic(self.description.cluster_id, self.description.shard)

    @property
    def role(self) -> Role | None:
        return self.description.role_of(self.own)

    @property
    def member(self) -> bool:
        return self.role is not None and self.keys.current is not None

    def signer(self, identity: Identity) -> Signer:
        """Who signs our descriptions and answers: the owner key if we hold it."""
        return self.owner_key if self.owner_key is not None else identity

    def protection_public(self) -> ShardPublicKey | None:
        if not self.description.protection_key:
            return None
        return ShardPublicKey.from_bytes(self.description.protection_key)

    def link_of(self, chat_key: str) -> str:
        member = self.description.member(chat_key)
        if member is not None and member.contact_link:
            return member.contact_link
        return self.links.get(chat_key, "")


class ChannelCrypto:
    """A channel's crypto on the pipeline: the community's content key of the newest epoch
    we hold, our chat key's signature inside (chat/communities/channel.py)."""

    name = "community member"

    def __init__(self, community: Community, channel_id: str, identity: Identity) -> None:
        self._community = community
        self._channel_id = channel_id
        self._identity = identity

    def seal(self, frame: bytes) -> bytes:
        community = self._community
        current = community.keys.current
        if community.role is None:
            raise SealFailed("we are no longer a member of this community", permanent=True)
        if community.description.channel(self._channel_id) is None:
            raise SealFailed("the community no longer has this channel", permanent=True)
        if current is None:
            raise SealFailed("we hold no content key of this community yet", permanent=False)
        if community.description.protection_key and community.protection is None:
            # A ban's new description comes before the new epoch's keys and shard key pair:
            # the shard's relays would refuse what we published now. It waits for them.
            raise SealFailed("waiting for the community's new shard key", permanent=False)
        epoch, key = current
        if epoch < community.description.epoch:
            # A kick's new description comes before the new epoch's key: sealing under the
            # old key now would let the member just removed read this message. It waits.
            raise SealFailed("waiting for the community's new content key", permanent=False)
        return seal(self._identity, community.id, self._channel_id, epoch, key, frame)

    def open(self, message: WakuMessage) -> Unsealed | None:
        community = self._community
        try:
            opened = open_frame(
                message.payload, self._channel_id, community.keys, community.description
            )
        except ChannelRefused as exc:
            raise OpenRefused(f"{exc} in a community channel") from None
        if opened.sender == community.own:
            return None
        return Unsealed(parse_chat_key(opened.sender), opened.body)


class ChannelMembership:
    """Members are the description's: whom a message waits for ("seen by n" counts them)."""

    def __init__(self, community: Community) -> None:
        self._community = community

    def member_of(self, sender_key: bytes) -> str | None:
        try:
            chat_key = format_chat_key(sender_key)
        except IdentityError:
            return None
        return chat_key if self._community.description.role_of(chat_key) else None

    def members(self) -> frozenset[str]:
        community = self._community
        return frozenset(m.chat_key for m in community.description.members) - {community.own}

    def acknowledged(self, member: str, message_id: str) -> None:
        """Receipts are counted by the pipeline; the content key needs no confirmation."""


class Communities:
    """Every community we hold, and the book of newest descriptions (joined or fetched)."""

    def __init__(self) -> None:
        self.book = DescriptionBook()
        self._joined: dict[str, Community] = {}

    def get(self, community_id: str) -> Community | None:
        return self._joined.get(community_id)

    def all(self) -> list[Community]:
        return list(self._joined.values())

    def add(self, community: Community) -> None:
        self._joined[community.id] = community
        self.book.restore(community.description)

    def remove(self, community_id: str) -> None:
        self._joined.pop(community_id, None)

    def shards_taken(self, cluster_id: int) -> set[int]:
        return {d.shard for d in self.book.all() if d.cluster_id == cluster_id and d.protection_key}


# ---- persistence -------------------------------------------------------------------------
def save_community(store: Store, community: Community, now_ms: int) -> None:
    """The description, our relation, the keys we hold; in the caller's transaction."""
    description = community.description
    repo = store.communities
    held = {(k.kind, k.epoch) for k in repo.keys(community.id)} if repo.get(community.id) else set()
    repo.upsert(
        StoredCommunity(
            id=community.id,
            name=description.name,
            owner_key=description.owner_key.hex(),
            description=description.signed,
            shard=description.shard,
            role="owner" if community.owner_key is not None else "member",
            joined_at=now_ms,
        )
    )
    for epoch, key in community.keys.items():
        if ("content", epoch) not in held:
            repo.add_key(community.id, CommunityKey("content", epoch, key, now_ms))
    if community.protection is not None:
        shard_epoch = _shard_epoch(description)
        if ("shard", shard_epoch) not in held:
            secret = community.protection.secret_bytes()
            repo.add_key(community.id, CommunityKey("shard", shard_epoch, secret, now_ms))
    if community.owner_key is not None:
        repo.set_owner_seed(community.id, community.owner_key.seed(), now=now_ms)


def _shard_epoch(description: Description) -> int:
    """Shard keys are kept by the description version that introduced them (its public key
    names which one is current)."""
    return description.version


def load_communities(store: Store, own: str) -> list[Community]:
    """What `save_community` wrote; a row that no longer decodes is skipped (logged by the
    caller when it finds fewer)."""
    found: list[Community] = []
    for row in store.communities.all():
        try:
            description = decode_description(row.description)
        except DescriptionError:
            continue
        community = Community(description, own)
        wanted = description.protection_key
        for key in store.communities.keys(row.id):
            if key.kind == "content":
                community.keys.add(key.epoch, key.key)
            elif key.kind == "shard":
                pair = ShardKeyPair.from_secret_bytes(key.key)
                if pair.public_key.to_bytes() == wanted:
                    community.protection = pair
        seed = store.communities.owner_seed(row.id)
        if seed is not None:
            community.owner_key = OwnerKey.from_seed(seed)
        found.append(community)
    return found
