"""A community's description: what it is, who is in it and where it lives, signed and
versioned (chat/proto/community.proto `Description` inside a `Signed`).

The community id is derived from the owner key alone, so a description, a link and a join
answer name the same community on every member. Whether a given signer may sign a given
version is the book's business (book.py): this module decodes, bounds and verifies the
signature, and builds and signs our own versions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from enum import Enum

from chat.communities.roles import Role
from chat.communities.signer import SignatureRefused, Signer, verify
from chat.identity import (
    MAX_LINK_LENGTH,
    ContactLink,
    IdentityError,
    format_chat_key,
    parse_chat_key,
    sanitize_display_text,
)
from chat.proto import community_pb2
from chat.waku.protowire import parse

FORMAT = 1
SIGNATURE_CONTEXT = b"chinwag-community-description-v1"
COMMUNITY_ID_CONTEXT = b"chinwag-community-v1"
CHANNEL_ID_CONTEXT = b"chinwag-community-channel-id-v1"
ID_LENGTH = 32
"""Community and channel ids: 32 lowercase hex characters (128 bits of a hash)."""
MAX_DESCRIPTION_BYTES = 128 * 1024
"""A signed description; longer is refused unread (a Waku message carries at most 150 KB)."""
MAX_MEMBERS = 1000
MAX_CHANNELS = 64
MAX_BANNED = 1000
MAX_NAME = 64
MAX_ABOUT = 1000
MAX_CLUSTER_ID = 65535
MAX_SHARD = 1023


class DescriptionError(ValueError):
    """A description we cannot accept; a sentence for the log."""


class JoinPolicy(Enum):
    OPEN = 1
    APPROVAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> JoinPolicy:
        try:
            return cls[label.strip().upper()]
        except KeyError:
            raise DescriptionError(
                f"{label[:20]!r} is not a join policy (open, approval)"
            ) from None


def community_id_of(owner_key: bytes) -> str:
    return hashlib.sha256(COMMUNITY_ID_CONTEXT + owner_key).hexdigest()[:ID_LENGTH]


def new_channel_id(community_id: str) -> str:
    nonce = secrets.token_bytes(16)
    return hashlib.sha256(CHANNEL_ID_CONTEXT + community_id.encode() + nonce).hexdigest()[
        :ID_LENGTH
    ]


def is_id(value: str) -> bool:
    return len(value) == ID_LENGTH and all(c in "0123456789abcdef" for c in value)


def clean_text(text: str, limit: int, what: str, *, multiline: bool = False) -> str:
    cleaned = sanitize_display_text(text[: limit * 4], multiline=multiline)
    if len(cleaned) > limit:
        raise DescriptionError(f"{what} has at most {limit} characters")
    return cleaned


def clean_name(name: str, what: str = "a community name") -> str:
    cleaned = clean_text(name, MAX_NAME, what)
    if not cleaned:
        raise DescriptionError(f"{what} cannot be empty")
    return cleaned


@dataclass(frozen=True, slots=True)
class Member:
    chat_key: str
    """Text form (chat.identity.format_chat_key)."""
    display_name: str
    role: Role
    contact_link: str = ""
    """Owner and admins: their contact link, verified to be theirs (requests go to them)."""


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Description:
    owner_key: bytes
    version: int
    at: float
    name: str
    about: str
    join_policy: JoinPolicy
    cluster_id: int
    shard: int
    protection_key: bytes
    """Compressed secp256k1 public key of the shard; empty: a shared, unprotected shard."""
    channels: tuple[Channel, ...] = ()
    members: tuple[Member, ...] = ()
    banned: frozenset[str] = frozenset()
    epoch: int = 0
    signer: bytes = b""
    """Who signed this version (the owner key or an admin's chat key); set by decoding."""
    signed: bytes = field(default=b"", compare=False)
    """The `Signed` bytes as they travel; set by decoding."""

    @property
    def id(self) -> str:
        return community_id_of(self.owner_key)

    @property
    def protected(self) -> bool:
        return bool(self.protection_key)

    def role_of(self, chat_key: str) -> Role | None:
        for member in self.members:
            if member.chat_key == chat_key:
                return member.role
        return None

    def member(self, chat_key: str) -> Member | None:
        for member in self.members:
            if member.chat_key == chat_key:
                return member
        return None

    def channel(self, channel_id: str) -> Channel | None:
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        return None

    def moderators(self) -> list[str]:
        """Who answers join requests: the owner and the admins (chat keys)."""
        return [m.chat_key for m in self.members if m.role in (Role.OWNER, Role.ADMIN)]

    @property
    def owner(self) -> str:
        """The owner's chat key (the member whose role is owner)."""
        for member in self.members:
            if member.role is Role.OWNER:
                return member.chat_key
        raise DescriptionError("a description without an owner")

    def next(self, at: float, **changes: object) -> Description:
        """The following version with `changes` (unsigned until signed)."""
        return replace(self, version=self.version + 1, at=at, signer=b"", signed=b"", **changes)  # type: ignore[arg-type]


def encode_description(description: Description) -> bytes:
    pb = community_pb2.Description(
        format=FORMAT,
        owner_key=description.owner_key,
        version=description.version,
        at_ms=int(description.at * 1000),
        name=description.name,
        about=description.about,
        join_policy=description.join_policy.value,
        cluster_id=description.cluster_id,
        shard=description.shard,
        protection_key=description.protection_key,
        epoch=description.epoch,
    )
    for channel in description.channels:
        pb.channels.add(id=channel.id, name=channel.name)
    for member in description.members:
        pb.members.add(
            chat_key=parse_chat_key(member.chat_key),
            display_name=member.display_name,
            role=member.role.value,
            contact_link=member.contact_link,
        )
    pb.banned.extend(parse_chat_key(key) for key in sorted(description.banned))
    return pb.SerializeToString()


def sign_description(signer: Signer, description: Description) -> Description:
    """`description` signed by `signer`, decoded back so it passes the same checks as anyone's."""
    body = encode_description(description)
    signed = community_pb2.Signed(
        body=body, signer=signer.chat_key, signature=signer.sign(SIGNATURE_CONTEXT + body)
    ).SerializeToString()
    return decode_description(signed)


def decode_description(signed: bytes) -> Description:
    """A signed description, bounded and its signature verified (not yet whether its signer
    may sign it: see book.py). Raises DescriptionError."""
    if len(signed) > MAX_DESCRIPTION_BYTES:
        raise DescriptionError(
            f"a description of {len(signed)} bytes (at most {MAX_DESCRIPTION_BYTES})"
        )
    outer = parse(community_pb2.Signed, signed, DescriptionError, "a signed description")
    try:
        verify(outer.signer, SIGNATURE_CONTEXT + outer.body, outer.signature)
    except SignatureRefused as exc:
        raise DescriptionError(f"a description with {exc}") from None
    pb = parse(community_pb2.Description, outer.body, DescriptionError, "a description")
    if pb.format != FORMAT:
        raise DescriptionError(f"a description of unknown format {pb.format}")
    if len(pb.owner_key) != 32:
        raise DescriptionError("a description without a valid owner key")
    if pb.cluster_id > MAX_CLUSTER_ID or pb.shard > MAX_SHARD:
        raise DescriptionError("a description naming an impossible shard")
    if pb.protection_key and len(pb.protection_key) != 33:
        raise DescriptionError("a description with a malformed protection key")
    if len(pb.members) > MAX_MEMBERS or len(pb.channels) > MAX_CHANNELS:
        raise DescriptionError("a description with too many members or channels")
    if len(pb.banned) > MAX_BANNED:
        raise DescriptionError("a description with too many banned keys")
    try:
        policy = JoinPolicy(pb.join_policy)
    except ValueError:
        raise DescriptionError(f"a description with unknown join policy {pb.join_policy}") from None
    description = Description(
        owner_key=pb.owner_key,
        version=pb.version,
        at=pb.at_ms / 1000,
        name=clean_name(pb.name),
        about=clean_text(pb.about, MAX_ABOUT, "the about text", multiline=True),
        join_policy=policy,
        cluster_id=pb.cluster_id,
        shard=pb.shard,
        protection_key=pb.protection_key,
        channels=_channels(pb),
        members=_members(pb),
        banned=frozenset(_key(key) for key in pb.banned),
        epoch=pb.epoch,
        signer=outer.signer,
        signed=signed,
    )
    if sum(member.role is Role.OWNER for member in description.members) != 1:
        raise DescriptionError("a description must name exactly one owner")
    if any(member.chat_key in description.banned for member in description.members):
        raise DescriptionError("a description with a banned member")
    return description


def _key(raw: bytes) -> str:
    try:
        return format_chat_key(raw)
    except IdentityError:
        raise DescriptionError("a description with a malformed chat key") from None


def _check_link(text: str, chat_key: str) -> None:
    if len(text) > MAX_LINK_LENGTH:
        raise DescriptionError("a description with an oversized contact link")
    try:
        link = ContactLink.parse(text)
    except IdentityError as exc:
        raise DescriptionError(f"a description with a bad contact link: {exc}") from None
    if link.chat_key_text != chat_key:
        raise DescriptionError("a description with a member's contact link that is not theirs")


def _channels(pb: community_pb2.Description) -> tuple[Channel, ...]:
    channels = []
    for channel in pb.channels:
        if not is_id(channel.id):
            raise DescriptionError("a description with a malformed channel id")
        channels.append(Channel(channel.id, clean_name(channel.name, "a channel name")))
    if len({channel.id for channel in channels}) != len(channels):
        raise DescriptionError("a description naming a channel twice")
    return tuple(channels)


def _members(pb: community_pb2.Description) -> tuple[Member, ...]:
    members = []
    for member in pb.members:
        try:
            role = Role(member.role)
        except ValueError:
            raise DescriptionError(f"a description with unknown role {member.role}") from None
        name = clean_text(member.display_name, MAX_NAME, "a display name") or "unnamed"
        chat_key = _key(member.chat_key)
        if member.contact_link:
            _check_link(member.contact_link, chat_key)
        members.append(Member(chat_key, name, role, member.contact_link))
    if len({member.chat_key for member in members}) != len(members):
        raise DescriptionError("a description naming a member twice")
    return tuple(members)


def first_description(
    owner_key: bytes,
    owner_chat_key: str,
    owner_name: str,
    owner_link: str,
    name: str,
    about: str,
    join_policy: JoinPolicy,
    cluster_id: int,
    shard: int,
    protection_key: bytes,
    channel_names: tuple[str, ...],
    now: float,
) -> Description:
    """Version 1 of a new community (unsigned): its owner as its only member."""
    community_id = community_id_of(owner_key)
    channels = tuple(
        Channel(new_channel_id(community_id), clean_name(channel, "a channel name"))
        for channel in channel_names
    )
    if len(channels) > MAX_CHANNELS:
        raise DescriptionError(f"a community has at most {MAX_CHANNELS} channels")
    if len({channel.name for channel in channels}) != len(channels):
        raise DescriptionError("two channels with the same name")
    return Description(
        owner_key=owner_key,
        version=1,
        at=now,
        name=clean_name(name),
        about=clean_text(about, MAX_ABOUT, "the about text", multiline=True),
        join_policy=join_policy,
        cluster_id=cluster_id,
        shard=shard,
        protection_key=protection_key,
        channels=channels,
        members=(Member(owner_chat_key, owner_name, Role.OWNER, owner_link),),
        epoch=1,
    )
