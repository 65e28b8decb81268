"""Helpers for the private-group scenarios on real nodes (tests/integration/messenger): contacts
made between any two of several messengers, a group whose invitations are accepted, what a
member reads and sees of the member list, and what a messenger refused."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from chat import events as ev
from chat.messenger import Messenger
from harness.waiting import wait_until


async def online(*messengers: Messenger) -> bool:
    return all(sum(m.health().peers_per_shard.values()) > 0 for m in messengers)


async def befriend(asking: Messenger, answering: Messenger) -> None:
    """`asking` sends a contact request, `answering` accepts; both mutual (by chat key, so it
    holds for people with several contacts)."""
    await wait_until(lambda: online(asking, answering))
    asking_key, answering_key = asking.identity().chat_key, answering.identity().chat_key
    await asking.add_contact(answering.identity().contact_link, "hi")

    async def has_request() -> bool:
        return any(c.chat_key == asking_key for c in await answering.contacts())

    await wait_until(has_request)
    await answering.accept_contact(asking_key)

    async def mutual() -> bool:
        return any(
            c.chat_key == answering_key and c.state == "mutual" for c in await asking.contacts()
        )

    await wait_until(mutual)


async def accept_invitation(member: Messenger, group_id: str) -> None:
    async def invited() -> bool:
        return any(
            i.group_id == group_id and i.state == "invited" and i.direction == "received"
            for i in await member.invites()
        )

    await wait_until(invited)
    (invite,) = [
        i for i in await member.invites() if i.group_id == group_id and i.state == "invited"
    ]
    await member.accept_invite(invite.id)


async def group_of(creator: Messenger, *members: Messenger, name: str = "Friends") -> str:
    """`creator` befriends each member, makes a group of them, each accepts; returns the
    group's id once every one of them sees every other joined."""
    for member in members:
        await befriend(creator, member)
    keys = [m.identity().chat_key for m in members]
    group = await creator.create_group(name, keys)
    for member in members:
        await accept_invitation(member, group.id)
    everyone = {m.identity().display_name: "joined" for m in (creator, *members)}
    await all_see(group.id, everyone, creator, *members)
    return group.id


async def members_of(messenger: Messenger, group_id: str) -> dict[str, str]:
    view = await messenger.group(group_id)
    return {m.display_name: m.state for m in view.members}


async def all_see(
    group_id: str, expected: dict[str, str], *people: Messenger, limit: float = 30.0
) -> None:
    async def agreed() -> bool:
        return all([await members_of(p, group_id) == expected for p in people])

    try:
        await wait_until(agreed, limit)
    except Exception:
        seen = [await members_of(p, group_id) for p in people]
        raise AssertionError(f"expected {expected}, saw {seen}") from None


async def texts(messenger: Messenger, chat_id: str, kind: str = "text") -> list[str]:
    """What others wrote in the chat (or its system lines), oldest first."""
    found = await messenger.messages(chat_id, limit=500)
    return [m.text for m in found if m.kind == kind and (kind == "system" or not m.outgoing)]


async def sent(messenger: Messenger, chat_id: str) -> list[ev.MessageView]:
    """Our own text messages in the chat, oldest first."""
    return [
        m for m in await messenger.messages(chat_id, limit=500) if m.outgoing and m.kind == "text"
    ]


@dataclass
class Refusals:
    """The `rejected` events of one messenger, collected from when it was made."""

    subscription: ev.Subscription
    reasons: list[str] = field(default_factory=list)

    def collect(self) -> list[str]:
        while True:
            try:
                event = self.subscription.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return self.reasons
            if isinstance(event, ev.Rejected):
                self.reasons.append(event.reason)

    def has(self, part: str) -> bool:
        return any(part in reason for reason in self.collect())


def refusals(messenger: Messenger) -> Refusals:
    return Refusals(messenger.subscribe(10_000))
