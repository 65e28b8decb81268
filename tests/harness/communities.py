"""Builders for community unit tests: people with real identities and a signed first
description (no network)."""

from __future__ import annotations

from dataclasses import dataclass

from chat.communities.description import (
    Description,
    JoinPolicy,
    Member,
    first_description,
    sign_description,
)
from chat.communities.moderation import add_member, set_role
from chat.communities.roles import Role
from chat.communities.signer import OwnerKey
from chat.identity import Identity
from chat.waku.protected import ShardKeyPair

NOW = 1_800_000_000.0


@dataclass
class Person:
    identity: Identity

    @property
    def key(self) -> str:
        return self.identity.chat_key_text

    @property
    def link(self) -> str:
        return self.identity.contact_link()

    def as_member(self) -> Member:
        return Member(self.key, self.identity.display_name, Role.MEMBER)


def person(name: str) -> Person:
    return Person(Identity.create(name, NOW))


@dataclass
class BuiltCommunity:
    owner: Person
    owner_key: OwnerKey
    protection: ShardKeyPair
    description: Description

    def sign(self, description: Description) -> Description:
        return sign_description(self.owner_key, description)


def new_community(
    owner: Person,
    *,
    policy: JoinPolicy = JoinPolicy.APPROVAL,
    channels: tuple[str, ...] = ("general", "random"),
) -> BuiltCommunity:
    owner_key = OwnerKey.generate()
    protection = ShardKeyPair.generate()
    first = first_description(
        owner_key.chat_key,
        owner.key,
        owner.identity.display_name,
        owner.link,
        "Test community",
        "about it",
        policy,
        16,
        200,
        protection.public_key.to_bytes(),
        channels,
        NOW,
    )
    return BuiltCommunity(owner, owner_key, protection, sign_description(owner_key, first))


def with_members(
    community: BuiltCommunity, members: list[Person], admins: tuple[Person, ...] = ()
) -> Description:
    """The community's description with `members` added and `admins` granted admin, each
    step signed by the owner key; stored back on `community`."""
    description = community.description
    for index, member in enumerate(members):
        added = add_member(description, community.owner.key, member.as_member(), NOW + index)
        description = community.sign(added.description)
    for admin in admins:
        granted = set_role(
            description,
            community.owner.key,
            admin.key,
            Role.ADMIN,
            NOW + 50,
            contact_link=admin.link,
        )
        description = community.sign(granted.description)
    community.description = description
    return description
